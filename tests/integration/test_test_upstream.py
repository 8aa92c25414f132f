"""`subrelay test-upstream`: every step of one upstream mailbox's path
(token, connect, TLS, EHLO, AUTH XOAUTH2), each marked [ ok ] or [FAIL]
with a hint, stopping before MAIL. Runs against the fake identity platform
and the fake Exchange upstream; the relay itself is not started."""
import os
import re
import socket
import ssl
import subprocess
import threading

import harness
from harness import CLIENT_SECRET, REPLY_DISABLED_MAILBOX, UPSTREAM_MAILBOX

SECOND_MAILBOX = "second@contoso.com"
OTHER_MAILBOX = "other@contoso.com"


class DisabledMailboxUpstream:
    """A minimal STARTTLS upstream that answers every AUTH XOAUTH2 as Exchange
    Online does for a mailbox whose SMTP AUTH is switched off. Records the
    command verbs it received (never the XOAUTH2 string)."""

    def __init__(self, pki):
        leaf = pki.leaf("upstream")
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(leaf.cert, leaf.key)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.verbs = []
        self.connections = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=10)
        self.listener.close()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.connections += 1
            try:
                self._session(conn)
            except (OSError, ssl.SSLError, EOFError):
                pass
            finally:
                conn.close()

    def _session(self, conn):
        conn.settimeout(15)
        sock = conn
        buffer = b""

        def send(text):
            sock.sendall(text.encode() + b"\r\n")

        def line():
            nonlocal buffer
            while b"\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError()
                buffer += chunk
            text, buffer = buffer.split(b"\r\n", 1)
            return text.decode("utf-8", "replace")

        send("220 FAKE.outlook.office365.test Microsoft ESMTP MAIL Service ready")
        tls = False
        while True:
            command = line()
            verb = command.split(" ", 1)[0].upper()
            self.verbs.append(verb if verb != "AUTH" else command.upper()[:12])
            if verb == "EHLO":
                offer = "250-AUTH LOGIN XOAUTH2" if tls else "250-STARTTLS"
                send("250-FAKE.outlook.office365.test Hello\r\n250-SIZE 157286400\r\n%s\r\n250 SMTPUTF8" % offer)
            elif verb == "STARTTLS" and not tls:
                send("220 2.0.0 SMTP server ready")
                sock = self.context.wrap_socket(conn, server_side=True)
                buffer = b""
                tls = True
            elif verb == "AUTH" and tls:
                send("334 ")
                line()   # the XOAUTH2 string: not kept
                send(REPLY_DISABLED_MAILBOX)
            elif verb == "QUIT":
                send("221 2.0.0 Service closing transmission channel")
                return
            else:
                send("530 5.7.57 Client not authenticated to send mail.")


class TestUpstreamCase(harness.IntegrationCase):
    def write_other_ca(self):
        """A CA that did not sign the upstream's certificate."""
        openssl = harness.require_tool("openssl")
        cert = os.path.join(self.relay_dir(), "other-ca.pem")
        key = os.path.join(self.workdir, "other-ca.key")
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                        "-subj", "/CN=an unrelated test CA"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return "other-ca.pem"

    def relay_dir(self):
        path = os.path.join(self.workdir, "relay")
        os.makedirs(path, exist_ok=True)
        return path

    def config(self, **relay_kwargs):
        """A relay config against this test's fakes (the relay is not started)."""
        if relay_kwargs.get("kind", "smtp") == "smtp":
            if "upstream_port" not in relay_kwargs:
                relay_kwargs["upstream_port"] = self.upstream.port
            if "token_url" not in relay_kwargs:
                relay_kwargs["token_url"] = self.token.url
        self.relay = harness.Relay(self.relay_dir(), self.pki, [harness.scanner_account()], **relay_kwargs)
        return self.relay.config_path

    def probe(self, config, *args):
        """(exit code, stdout, stderr) of `subrelay test-upstream --config CONFIG ARGS`."""
        code, out, err = harness.run_cli(["test-upstream"] + list(args), config=config, timeout=90)
        self.last_output = out + err
        return code, out, err

    def assert_no_secrets(self, text):
        self.assertNotIn(CLIENT_SECRET, text)
        for token in self.token.tokens():
            self.assertNotIn(token, text, "an access token was printed")
            self.assertNotIn(token[:24], text, "part of an access token was printed")

    def assert_steps(self, out, passed, failed=None):
        """The steps marked [ ok ] in order, then the one [FAIL] (or none)."""
        marks = re.findall(r"(?m)^\[( ok |FAIL)\] (\S+)", out)
        expected = [(" ok ", s) for s in passed] + ([("FAIL", failed)] if failed else [])
        self.assertEqual(marks, expected, out)

    def assert_no_mail(self, upstream):
        counters = upstream.counters()
        self.assertEqual(counters.get("messages"), 0, counters)
        self.assertEqual(counters.get("mail_without_auth"), 0, counters)
        self.assertEqual(upstream.messages(), [])


ALL_STEPS = ["config", "credentials", "token", "connect", "tls", "ehlo", "auth", "quit"]


class TestUpstreamPassesTest(TestUpstreamCase):
    def test_every_step_passes_and_no_mail_is_sent(self):
        self.start_token()
        upstream = self.start_upstream()
        code, out, err = self.probe(self.config())
        self.assertEqual(code, 0, out + err)
        self.assert_steps(out, ALL_STEPS)
        self.assertIn("TLSv1.", out)
        self.assertRegex(out, r"(?m)^\s+certificate\s+CN=localhost\b")
        self.assertRegex(out, r"(?m)^\s+issuer\s+.*CN=subrelay test CA")
        self.assertRegex(out, r"(?m)^\s+expires\s+\d{4}-\d\d-\d\d ")
        self.assertRegex(out, r"(?m)^\s+verified\s+ok")
        self.assertRegex(out, r"(?m)^\[ ok \] ehlo .*\bAUTH\b")
        self.assertRegex(out, r"(?m)^\[ ok \] auth .*AUTH XOAUTH2 as %s" % re.escape(UPSTREAM_MAILBOX))
        self.assertRegex(out, r"(?m)^\[ ok \] token .*expires in \d+ min")
        self.assertIn("stopped before MAIL: no message was sent", out)
        self.assertIn(self.token.url, out, "the token URL is shown")
        self.assertIn("127.0.0.1:%d" % upstream.port, out)
        self.assert_no_secrets(out + err)
        # One token, one authenticated session, then QUIT: no MAIL, no message.
        self.assertEqual(self.token.counters()["issued"], 1)
        counters = upstream.counters()
        self.assertEqual(counters["auth_xoauth2_ok"], 1, upstream.auth_log())
        self.assertEqual(counters["auth_failures"], 0, upstream.auth_log())
        self.assertIn("OK XOAUTH2 mailbox=%s" % UPSTREAM_MAILBOX, upstream.auth_log())
        self.assert_no_mail(upstream)
        harness.wait_for(lambda: upstream.counters().get("current_connections") == 0,
                         what="the session to end")

    def test_mailbox_option_authenticates_as_that_mailbox(self):
        self.start_token()
        upstream = self.start_upstream(mailboxes=(UPSTREAM_MAILBOX, OTHER_MAILBOX))
        code, out, err = self.probe(self.config(), "--mailbox", OTHER_MAILBOX)
        self.assertEqual(code, 0, out + err)
        self.assert_steps(out, ALL_STEPS)
        self.assertIn("OK XOAUTH2 mailbox=%s" % OTHER_MAILBOX, upstream.auth_log())
        self.assertNotIn("mailbox=%s" % UPSTREAM_MAILBOX, upstream.auth_log())
        self.assert_no_mail(upstream)

    def second_profile(self, upstream_port):
        return {"oauth.profiles.second": {
            "token_url": self.token.url, "client_id": harness.CLIENT_ID,
            "client_secret_file": "client-secret", "scope": "https://outlook.office365.com/.default",
            "ca_file": "ca.pem", "mailboxes": [SECOND_MAILBOX],
            "smtp_host": "127.0.0.1", "smtp_port": upstream_port, "smtp_tls": "starttls",
        }}

    def test_profile_option_tests_its_first_mailbox(self):
        self.start_token()
        upstream = self.start_upstream(mailboxes=(UPSTREAM_MAILBOX, SECOND_MAILBOX))
        config = self.config(extra_sections=self.second_profile(upstream.port))
        code, out, err = self.probe(config, "--profile", "second")
        self.assertEqual(code, 0, out + err)
        self.assert_steps(out, ALL_STEPS)
        self.assertRegex(out, r"(?m)^\s+profile\s+second\b")
        self.assertRegex(out, r"(?m)^\s+mailbox\s+%s$" % re.escape(SECOND_MAILBOX))
        self.assertIn("OK XOAUTH2 mailbox=%s" % SECOND_MAILBOX, upstream.auth_log())
        self.assert_no_mail(upstream)

    def test_profile_not_listing_the_mailbox_warns(self):
        self.start_token()
        upstream = self.start_upstream(mailboxes=(UPSTREAM_MAILBOX, SECOND_MAILBOX))
        config = self.config(extra_sections=self.second_profile(upstream.port))
        code, out, err = self.probe(config, "--profile", "second", "--mailbox", UPSTREAM_MAILBOX)
        self.assertEqual(code, 0, out + err)
        self.assertRegex(out, r"(?m)^\[warn\] profile .*does not list %s" % re.escape(UPSTREAM_MAILBOX))
        self.assert_steps(out, ALL_STEPS)
        self.assertIn("OK XOAUTH2 mailbox=%s" % UPSTREAM_MAILBOX, upstream.auth_log())

    def test_connector_without_auth_skips_token_and_auth(self):
        upstream = self.start_upstream(no_auth=True)
        config = self.config(token_url="https://127.0.0.1:1/unused", omit_sections=("oauth",),
                             extra_sections={"upstream": {"auth": "none"}})
        code, out, err = self.probe(config)
        self.assertEqual(code, 0, out + err)
        self.assert_steps(out, ["config", "credentials", "connect", "tls", "ehlo", "quit"])
        self.assertRegex(out, r"(?m)^\[skip\] token ")
        self.assertRegex(out, r"(?m)^\[skip\] auth ")
        self.assertEqual(upstream.counters()["auth_attempts"], 0)
        self.assert_no_mail(upstream)


class TestUpstreamFailsTest(TestUpstreamCase):
    def test_expired_client_secret_fails_at_token_before_connecting(self):
        self.start_token(errors=["7000222"])
        upstream = self.start_upstream()
        code, out, err = self.probe(self.config())
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, ["config", "credentials"], "token")
        self.assertIn("7000222", out)
        self.assertRegex(out, r"(?m)^\s+hint\s+the client secret has expired")
        self.assert_no_secrets(out + err)
        self.assertEqual(upstream.counters()["connections"], 0, "no connection to the upstream may be made")

    def test_mailbox_unknown_to_the_upstream_fails_at_auth(self):
        self.start_token()
        upstream = self.start_upstream(mailboxes=(OTHER_MAILBOX,))
        code, out, err = self.probe(self.config())
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, ["config", "credentials", "token", "connect", "tls", "ehlo"], "auth")
        self.assertRegex(out, r"(?m)^\[FAIL\] auth .*AUTH XOAUTH2 as %s refused: 535 5\.7\.3"
                         % re.escape(UPSTREAM_MAILBOX))
        self.assertRegex(out, r"(?m)^\s+hint\s+.*Add-MailboxPermission -Identity %s" % re.escape(UPSTREAM_MAILBOX))
        self.assertIn("not an allowed mailbox", upstream.auth_log())
        self.assert_no_secrets(out + err)
        self.assert_no_mail(upstream)

    def test_smtp_auth_disabled_for_the_mailbox_names_set_casmailbox(self):
        self.start_token()
        fake = DisabledMailboxUpstream(self.pki)
        self.addCleanup(fake.stop)
        code, out, err = self.probe(self.config(upstream_port=fake.port))
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, ["config", "credentials", "token", "connect", "tls", "ehlo"], "auth")
        self.assertIn("SmtpClientAuthentication is disabled for the Mailbox", out)
        self.assertRegex(out, r"(?m)^\s+hint\s+.*Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled "
                              r"\$false" % re.escape(UPSTREAM_MAILBOX))
        self.assert_no_secrets(out + err)
        self.assertNotIn("MAIL", fake.verbs)
        self.assertIn("AUTH XOAUTH2", fake.verbs)

    def test_upstream_down_fails_at_connect(self):
        self.start_token()
        upstream = self.make_upstream()     # never started: nothing listens on its port
        code, out, err = self.probe(self.config())
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, ["config", "credentials", "token"], "connect")
        self.assertRegex(out, r"(?m)^\[FAIL\] connect .*127\.0\.0\.1:%d" % upstream.port)
        self.assertRegex(out, r"(?m)^\s+hint\s+.*port %d" % upstream.port)

    def test_untrusted_certificate_fails_at_tls(self):
        self.start_token()
        upstream = self.start_upstream()
        ca = self.write_other_ca()
        code, out, err = self.probe(self.config(extra_sections={"upstream": {"ca_file": ca}}))
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, ["config", "credentials", "token", "connect"], "tls")
        self.assertIn("certificate verify failed", out)
        self.assertRegex(out, r"(?m)^\s+certificate\s+CN=localhost\b")
        self.assertRegex(out, r"(?m)^\s+hint\s+.*upstream\.ca_file")
        counters = upstream.counters()
        self.assertEqual(counters["auth_attempts"], 0, counters)
        self.assert_no_mail(upstream)

    def test_directory_upstream_has_nothing_to_test(self):
        code, out, err = self.probe(self.config(kind="directory"))
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, [], "config")
        self.assertIn("no upstream to test", out)

    def test_unknown_profile_is_a_failed_config_step(self):
        self.start_token()
        self.make_upstream()
        code, out, err = self.probe(self.config(), "--profile", "nosuch")
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, [], "config")
        self.assertIn("no OAuth profile named 'nosuch'", out)
        self.assertRegex(out, r"(?m)^\s+hint\s+the profiles are: default")

    def test_broken_config_lists_its_problems(self):
        path = os.path.join(self.workdir, "broken.toml")
        with open(path, "w") as f:
            f.write("[upstream]\nkind = \"smtp\"\ncolour = \"blue\"\n")
        code, out, err = self.probe(path)
        self.assertEqual(code, 1, out + err)
        self.assert_steps(out, [], "config")
        self.assertIn(path + ": upstream.colour: ", out)

    def test_usage_errors_exit_2(self):
        code, out, err = harness.run_cli(["test-upstream", "--frobnicate"])
        self.assertEqual(code, 2, out + err)
        self.assertIn("usage: subrelay test-upstream", err)
        code, out, err = harness.run_cli(["test-upstream", "--help"])
        self.assertEqual(code, 0, out + err)
        self.assertIn("usage: subrelay test-upstream", out)
