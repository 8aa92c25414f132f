"""The full policy in a running relay: every refusal reply through a real
client (swaks, STARTTLS + AUTH), network bindings, live reload of CLI and
hand edits, and CLI edits racing each other and SIGHUP."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import harness
from harness import (REPLY_BAD_CREDENTIALS, REPLY_DISABLED_MAILBOX, REPLY_DISABLED_TENANT, REPLY_NOT_AUTHENTICATED,
                     REPLY_SEND_AS_DENIED)

REPLY_SECURITY_DEFAULTS = ("535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
                           "security defaults policy. Contact your administrator.")
REPLY_BASIC_AUTH_DISABLED = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
REPLY_RATE = "421 4.4.2 Message submission rate for this client has exceeded the configured limit"
REPLY_TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
REPLY_DAILY_PREFIX = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException;"

BLOCK = "Block Basic Auth"
ALLOW = "Allow Basic Auth"
PASSWORD = "Device-Passw0rd!2718"


def account(identity, **values):
    values = dict(values)
    values.setdefault("password", PASSWORD)
    return dict({"identity": identity}, **values)


def queued(out):
    return re.findall(r"(?m)^<[-~]  250 2\.0\.0 Ok: queued as \S+", out)


class PolicyRelay(harness.IntegrationCase):
    """A full stack whose policy file the test writes."""

    def start_with_policy(self, **policy):
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([])
        harness.write_policy(relay, harness.policy_toml(**policy))
        self.start_relay(relay)
        return relay

    def swaks(self, identity=None, password=PASSWORD, sender=None, rcpts=("alice@example.org",), tls=True,
              port=None, local_interface=None, subject="policy"):
        """Runs swaks; returns (exit code, transcript)."""
        swaks = harness.require_tool("swaks")
        sender = sender or identity
        message = harness.make_message(sender, rcpts[0], subject)
        path = os.path.join(self.workdir, "msg-%s.eml" % os.urandom(4).hex())
        with open(path, "wb") as f:
            f.write(message[:-2])  # swaks adds the CRLF before the dot
        argv = [swaks, "--server", "127.0.0.1:%d" % (port or self.relay.submission_port),
                "--ehlo", "scanner.contoso.test", "--from", sender, "--to", ",".join(rcpts),
                "--data", "@" + path, "--timeout", "20"]
        if tls:
            argv += ["--tls"]
        if identity is not None:
            argv += ["--auth", "PLAIN", "--auth-user", identity, "--auth-password", password]
        if local_interface:
            argv += ["--local-interface", local_interface]
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=60)
        return result.returncode, result.stdout.decode("utf-8", "replace")

    def assert_server_said(self, out, reply):
        pattern = r"(?m)^<[-~*]{1,2} +%s\s*$" % re.escape(reply)
        self.assertRegex(out, pattern, "swaks transcript does not show the reply %r" % reply)

    def assert_upstream_rcpts(self, expected, settle=0.5):
        """The fake upstream got exactly these messages (lists of recipients), in order."""
        if expected:
            self.upstream.wait_messages(len(expected))
        time.sleep(settle)  # anything more that was accepted would be delivered by now
        self.assertEqual([meta["rcpt_tos"] for _, meta in self.upstream.messages()], expected)


# ---------------------------------------------------------------- refusals through swaks

class AuthRefusalTest(PolicyRelay):
    def test_mailbox_and_tenant_and_mailbox_policy(self):
        self.start_with_policy(
            org={"smtp_client_authentication_disabled": True},
            authentication_policies=[{"name": BLOCK, "allow_basic_auth_smtp": False},
                                     {"name": ALLOW, "allow_basic_auth_smtp": True}],
            mailboxes=[account("enabled@contoso.com", smtp_client_authentication_disabled=False),
                       account("disabled@contoso.com", smtp_client_authentication_disabled=True),
                       account("unset@contoso.com"),
                       account("blocked@contoso.com", smtp_client_authentication_disabled=False,
                               authentication_policy=BLOCK),
                       account("allowed@contoso.com", smtp_client_authentication_disabled=False,
                               authentication_policy=ALLOW)])
        for identity, reply in (("disabled@contoso.com", REPLY_DISABLED_MAILBOX),
                                ("unset@contoso.com", REPLY_DISABLED_TENANT),
                                ("blocked@contoso.com", REPLY_BASIC_AUTH_DISABLED)):
            with self.subTest(identity=identity):
                code, out = self.swaks(identity)
                self.assertNotEqual(code, 0, out)
                self.assert_server_said(out, reply)
                self.assertEqual(queued(out), [], out)
        # The right password is still needed to learn anything.
        code, out = self.swaks("disabled@contoso.com", password="wrong")
        self.assert_server_said(out, REPLY_BAD_CREDENTIALS)
        for identity in ("enabled@contoso.com", "allowed@contoso.com"):
            code, out = self.swaks(identity)
            self.assertEqual(code, 0, out)
            self.assertEqual(len(queued(out)), 1, out)
        self.assert_upstream_rcpts([["alice@example.org"], ["alice@example.org"]])

    def test_organization_default_authentication_policy(self):
        self.start_with_policy(
            org={"smtp_client_authentication_disabled": False, "default_authentication_policy": BLOCK},
            authentication_policies=[{"name": BLOCK, "allow_basic_auth_smtp": False},
                                     {"name": ALLOW, "allow_basic_auth_smtp": True}],
            mailboxes=[account("enabled@contoso.com", smtp_client_authentication_disabled=False),
                       account("own-policy@contoso.com", authentication_policy=ALLOW)])
        code, out = self.swaks("enabled@contoso.com")
        self.assert_server_said(out, REPLY_BASIC_AUTH_DISABLED)
        self.assertEqual(queued(out), [])
        # An account's own policy wins over the organization default.
        code, out = self.swaks("own-policy@contoso.com")
        self.assertEqual(code, 0, out)
        self.assertEqual(len(queued(out)), 1, out)
        self.assert_upstream_rcpts([["alice@example.org"]])

    def test_security_defaults(self):
        self.start_with_policy(
            org={"smtp_client_authentication_disabled": False, "security_defaults": True},
            authentication_policies=[{"name": ALLOW, "allow_basic_auth_smtp": True}],
            mailboxes=[account("enabled@contoso.com", smtp_client_authentication_disabled=False,
                               authentication_policy=ALLOW)])
        code, out = self.swaks("enabled@contoso.com")
        self.assertNotEqual(code, 0, out)
        self.assert_server_said(out, REPLY_SECURITY_DEFAULTS)
        self.assert_upstream_rcpts([], settle=0.2)


class SubmissionRuleTest(PolicyRelay):
    def start(self, **mailbox_values):
        return self.start_with_policy(
            org={"smtp_client_authentication_disabled": True},
            mailboxes=[account("dev@contoso.com", smtp_client_authentication_disabled=False, **mailbox_values)])

    def test_sender_wildcard_and_refusal(self):
        self.start(allowed_senders=["dev@contoso.com", "*@contoso.com"])
        code, out = self.swaks("dev@contoso.com", sender="someone.else@contoso.com")
        self.assertEqual(code, 0, out)
        self.assertEqual(len(queued(out)), 1, "a *@contoso.com sender must be allowed:\n" + out)
        code, out = self.swaks("dev@contoso.com", sender="ceo@fabrikam.com")
        self.assertNotEqual(code, 0, out)
        self.assert_server_said(out, REPLY_SEND_AS_DENIED)
        self.assertEqual(queued(out), [])
        (_, meta), = self.upstream.wait_messages(1)
        self.assertEqual(meta["mail_from"], "someone.else@contoso.com")
        self.assert_upstream_rcpts([["alice@example.org"]])

    def test_recipient_domain(self):
        self.start(allowed_recipient_domains=["contoso.com"])
        code, out = self.swaks("dev@contoso.com", rcpts=("alice@example.org",))
        self.assertNotEqual(code, 0, out)
        m = re.search(r"(?m)^<[-~*]{1,2} +(550 5\.7\.1 .*)$", out)
        self.assertIsNotNone(m, "no 550 5.7.1 reply in:\n" + out)
        self.assertIn("example.org", m.group(1), "the reply should name the refused domain")
        code, out = self.swaks("dev@contoso.com", rcpts=("bob@CONTOSO.com", "alice@example.org"))
        self.assertRegex(out, r"(?m)^<[-~*]{1,2} +550 5\.7\.1 .*example\.org")
        self.assertEqual(len(queued(out)), 1, "the allowed recipient's message should be accepted:\n" + out)
        self.assert_upstream_rcpts([["bob@CONTOSO.com"]])

    def test_recipients_per_message(self):
        self.start(max_recipients_per_message=2)
        rcpts = ("a@example.org", "b@example.org", "c@example.org")
        code, out = self.swaks("dev@contoso.com", rcpts=rcpts)
        self.assert_server_said(out, REPLY_TOO_MANY_RCPTS)
        self.assertEqual(len(queued(out)), 1, out)
        self.assert_upstream_rcpts([["a@example.org", "b@example.org"]])

    def test_message_rate(self):
        self.start(max_messages_per_minute=2)
        for i in range(2):
            code, out = self.swaks("dev@contoso.com", subject="rate %d" % i)
            self.assertEqual(code, 0, out)
        code, out = self.swaks("dev@contoso.com", subject="rate 2")
        self.assertNotEqual(code, 0, out)
        self.assert_server_said(out, REPLY_RATE)
        self.assertEqual(queued(out), [])
        # At MAIL, then the server closes the connection.
        d = self.relay.authenticated_dialogue("dev@contoso.com", PASSWORD)
        d.send("MAIL FROM:<dev@contoso.com>")
        self.assertEqual(d.read_reply()[-1], REPLY_RATE)
        self.assertTrue(d.closed_by_peer(), "the server should close the connection after 421")
        d.close()
        self.assert_upstream_rcpts([["alice@example.org"], ["alice@example.org"]])

    def test_message_rate_counters_survive_a_reload(self):
        relay = self.start(max_messages_per_minute=2)
        for i in range(2):
            code, out = self.swaks("dev@contoso.com", subject="before reload %d" % i)
            self.assertEqual(code, 0, out)
        # An unrelated edit makes the relay load a new policy...
        code, out, err = harness.run_cli(["new-relayaccount", "-Identity", "other@contoso.com", "--generate-password"],
                                         config=relay.config_path)
        self.assertEqual(code, 0, out + err)
        harness.wait_for(lambda: b"policy reloaded" in relay.log(), timeout=10, interval=0.2,
                         what="the relay to reload the policy")
        # ...and the two messages of this minute still count.
        code, out = self.swaks("dev@contoso.com", subject="after reload")
        self.assertNotEqual(code, 0, out)
        self.assert_server_said(out, REPLY_RATE)
        self.assertEqual(queued(out), [])

    def test_recipients_per_day(self):
        self.start(max_recipients_per_day=3)
        code, out = self.swaks("dev@contoso.com", rcpts=("a@example.org", "b@example.org"))
        self.assertEqual(code, 0, out)
        self.upstream.wait_messages(1)
        code, out = self.swaks("dev@contoso.com", rcpts=("c@example.org", "d@example.org"))
        self.assertRegex(out, r"(?m)^<[-~*]{1,2} +%s" % re.escape(REPLY_DAILY_PREFIX))
        self.assertEqual(len(queued(out)), 1, out)
        code, out = self.swaks("dev@contoso.com", rcpts=("e@example.org",))
        self.assertNotEqual(code, 0, out)
        self.assertRegex(out, r"(?m)^<[-~*]{1,2} +%s" % re.escape(REPLY_DAILY_PREFIX))
        self.assert_upstream_rcpts([["a@example.org", "b@example.org"], ["c@example.org"]])


# ---------------------------------------------------------------- bindings

class BindingTest(PolicyRelay):
    def setUp(self):
        super().setUp()
        self.start_with_policy(
            org={"smtp_client_authentication_disabled": True},
            mailboxes=[account("bound@contoso.com", smtp_client_authentication_disabled=False, password=None),
                       account("off@contoso.com", smtp_client_authentication_disabled=True),
                       account("unset@contoso.com"),
                       account("tls-only@contoso.com", smtp_client_authentication_disabled=False)],
            bindings=[{"network": "127.0.0.2/32", "identity": "bound@contoso.com", "listeners": ["submission"]},
                      {"network": "127.0.0.3", "identity": "off@contoso.com"},
                      {"network": "127.0.0.5/32", "identity": "unset@contoso.com"},
                      {"network": "127.0.0.4", "identity": "tls-only@contoso.com", "listeners": ["submissions"]}])

    def dialogue_from(self, source_ip, implicit_tls=False):
        port = self.relay.submissions_port if implicit_tls else self.relay.submission_port
        d = harness.Dialogue(harness.connect_from(source_ip, port), self.relay.client_tls_context())
        if implicit_tls:
            d.wrap_tls()
        d.expect("220 *")
        d.send("EHLO printer.contoso.test")
        d.expect("250 *")
        return d

    def submit(self, d, sender, rcpt="alice@example.org"):
        return harness.submit_on(d, sender, rcpt, subject="bound")

    def test_bound_address_submits_without_auth(self):
        d = self.dialogue_from("127.0.0.2")
        self.assertRegex(self.submit(d, "bound@contoso.com"), r"^250 2\.0\.0 ")
        d.close()
        (_, meta), = self.upstream.wait_messages(1)
        self.assertEqual(meta["mail_from"], "bound@contoso.com")
        # Same dialogue from an unbound address.
        d = self.dialogue_from("127.0.0.1")
        self.assertEqual(self.submit(d, "bound@contoso.com"), REPLY_NOT_AUTHENTICATED)
        d.close()
        # All the account's rules apply to a bound client: its sender list too.
        d = self.dialogue_from("127.0.0.2")
        self.assertEqual(self.submit(d, "ceo@contoso.com"), REPLY_SEND_AS_DENIED)
        d.close()
        self.assert_upstream_rcpts([["alice@example.org"]])

    def test_swaks_from_bound_address(self):
        code, out = self.swaks(None, sender="bound@contoso.com", local_interface="127.0.0.2")
        self.assertEqual(code, 0, out)
        self.assertEqual(len(queued(out)), 1, out)
        code, out = self.swaks(None, sender="bound@contoso.com", local_interface="127.0.0.1")
        self.assert_server_said(out, REPLY_NOT_AUTHENTICATED)
        self.assert_upstream_rcpts([["alice@example.org"]])

    def test_bound_but_disabled_account(self):
        # Exchange's 5.7.139 text, with the code of a refused MAIL (535 answers AUTH only).
        d = self.dialogue_from("127.0.0.3")
        self.assertEqual(self.submit(d, "off@contoso.com"), "550" + REPLY_DISABLED_MAILBOX[3:])
        d.close()
        d = self.dialogue_from("127.0.0.5")
        self.assertEqual(self.submit(d, "unset@contoso.com"), "550" + REPLY_DISABLED_TENANT[3:])
        d.close()
        self.assert_upstream_rcpts([], settle=0.2)

    def test_binding_limited_to_a_listener(self):
        d = self.dialogue_from("127.0.0.4")
        self.assertEqual(self.submit(d, "tls-only@contoso.com"), REPLY_NOT_AUTHENTICATED)
        d.close()
        d = self.dialogue_from("127.0.0.4", implicit_tls=True)
        self.assertRegex(self.submit(d, "tls-only@contoso.com"), r"^250 2\.0\.0 ")
        d.close()
        # 127.0.0.2 is bound on "submission" only.
        d = self.dialogue_from("127.0.0.2", implicit_tls=True)
        self.assertEqual(self.submit(d, "bound@contoso.com"), REPLY_NOT_AUTHENTICATED)
        d.close()
        self.assert_upstream_rcpts([["alice@example.org"]])


# ---------------------------------------------------------------- live reload

class LiveReloadTest(PolicyRelay):
    def start(self):
        return self.start_with_policy(
            org={"smtp_client_authentication_disabled": True},
            mailboxes=[account("dev@contoso.com", smtp_client_authentication_disabled=False)])

    def cli(self, *args, stdin=b""):
        code, out, err = harness.run_cli(list(args), config=self.relay.config_path, stdin=stdin)
        self.assertEqual(code, 0, "subrelay %s exited %d:\n%s%s" % (" ".join(args), code, out, err))
        return out

    def wait_auth(self, identity, password, reply_pattern, timeout=10):
        last = []

        def check():
            last[:] = [harness.auth_reply(self.relay, identity, password)]
            return re.match(reply_pattern, last[0])
        try:
            harness.wait_for(check, timeout=timeout, interval=0.2, what="AUTH reply %r" % reply_pattern)
        except AssertionError as e:
            raise AssertionError("%s; last reply %r" % (e, last)) from None

    def test_cli_edit_changes_auth(self):
        self.start()
        self.assertRegex(harness.auth_reply(self.relay, "dev@contoso.com", PASSWORD), r"^235 2\.7\.0 ")
        self.cli("set-casmailbox", "-Identity", "dev@contoso.com", "-SmtpClientAuthenticationDisabled", "$true")
        self.wait_auth("dev@contoso.com", PASSWORD, re.escape(REPLY_DISABLED_MAILBOX) + "$")
        self.cli("set-casmailbox", "--identity", "dev@contoso.com", "--smtp-client-authentication-disabled", "null")
        self.wait_auth("dev@contoso.com", PASSWORD, re.escape(REPLY_DISABLED_TENANT) + "$")
        self.cli("set-transportconfig", "-SmtpClientAuthenticationDisabled", "$false")
        self.wait_auth("dev@contoso.com", PASSWORD, r"235 2\.7\.0 ")

    def test_generated_password_works_end_to_end(self):
        self.start()
        out = self.cli("new-relayaccount", "-Identity", "gen@contoso.com", "--generate-password")
        password = harness.generated_password(out)
        self.cli("set-casmailbox", "-Identity", "gen@contoso.com", "-SmtpClientAuthenticationDisabled", "$false")
        self.wait_auth("gen@contoso.com", password, r"235 2\.7\.0 ")
        code, out = self.swaks("gen@contoso.com", password=password)
        self.assertEqual(code, 0, out)
        self.assertEqual(len(queued(out)), 1, out)
        (_, meta), = self.upstream.wait_messages(1)
        self.assertEqual(meta["mail_from"], "gen@contoso.com")
        self.assertNotIn(password.encode(), self.relay.log(), "the password must never be logged")

    def test_invalid_hand_edit_keeps_old_policy(self):
        relay = self.start()
        with open(relay.policy_path) as f:
            good = f.read()
        # Would disable the account if it were taken half-read.
        bad = good.replace("smtp_client_authentication_disabled = false",
                           'smtp_client_authentication_disabled = "yes please"')
        self.assertNotEqual(bad, good)
        harness.write_policy(relay, bad)
        pattern = rb"(?m)^.*" + re.escape(os.path.basename(relay.policy_path).encode()) + \
            rb": mailbox\[\d+\]\.smtp_client_authentication_disabled: \S"
        harness.wait_for(lambda: re.search(pattern, relay.log()), timeout=10,
                         what="the policy error `FILE: key: what` in the relay log")
        self.assertRegex(harness.auth_reply(relay, "dev@contoso.com", PASSWORD), r"^235 2\.7\.0 ",
                         "the previous policy must stay in force")
        # SIGHUP with the file still broken: still the old policy, still running.
        relay.process.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        self.assertRegex(harness.auth_reply(relay, "dev@contoso.com", PASSWORD), r"^235 2\.7\.0 ")
        # A valid edit afterwards is picked up again.
        harness.write_policy(relay, good.replace("smtp_client_authentication_disabled = false",
                                                 "smtp_client_authentication_disabled = true"))
        self.wait_auth("dev@contoso.com", PASSWORD, re.escape(REPLY_DISABLED_MAILBOX) + "$")


    def audit_entries(self):
        path = os.path.join(self.relay.spool_dir, "audit.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_hand_edits_are_recorded_as_the_files_and_cli_edits_once(self):
        relay = self.start()
        # An admin verb's change: recorded once, by the verb, not again by the reload.
        self.cli("set-casmailbox", "-Identity", "dev@contoso.com", "-SmtpClientAuthenticationDisabled", "$true")
        self.wait_auth("dev@contoso.com", PASSWORD, re.escape(REPLY_DISABLED_MAILBOX) + "$")
        harness.wait_for(lambda: b"policy reloaded" in relay.log(), timeout=10, what="the reload")
        # A hand edit: recorded by the relay when it reads the file, as "file".
        with open(relay.policy_path) as f:
            text = f.read()
        at = text.index('identity = "dev@contoso.com"')   # the account's table, not the organization's
        harness.write_policy(relay, text[:at] + text[at:].replace("smtp_client_authentication_disabled = true",
                                                                  "smtp_client_authentication_disabled = false", 1))
        self.wait_auth("dev@contoso.com", PASSWORD, r"235 2\.7\.0 ")
        harness.wait_for(lambda: len(self.audit_entries()) >= 2, timeout=10, what="the hand edit in audit.log")
        entries = self.audit_entries()
        self.assertEqual([(e["who"] == "file", e["what"]) for e in entries], [
            (False, "Set-CASMailbox -Identity dev@contoso.com -SmtpClientAuthenticationDisabled $true"),
            (True, "Set-CASMailbox -Identity dev@contoso.com -SmtpClientAuthenticationDisabled $false"),
        ])
        self.assertIs(entries[1]["before"]["SmtpClientAuthenticationDisabled"], True)
        self.assertIs(entries[1]["after"]["SmtpClientAuthenticationDisabled"], False)
        self.assertIn(b"policy edited by hand (%s): Set-CASMailbox -Identity dev@contoso.com"
                      % relay.policy_path.encode(), relay.log())
        code, out, err = harness.run_cli(["search-adminauditlog", "--json"], config=relay.config_path)
        self.assertEqual(code, 0, err)
        self.assertEqual([e["who"] for e in json.loads(out)][1], "file")


# ---------------------------------------------------------------- concurrency

class ConcurrentEditTest(PolicyRelay):
    def test_parallel_cli_edits_under_sighup(self):
        existing = ["dev%02d@contoso.com" % i for i in range(12)]
        created = ["new%02d@contoso.com" % i for i in range(22)]
        relay = self.start_with_policy(
            org={"smtp_client_authentication_disabled": True},
            mailboxes=[account(i, smtp_client_authentication_disabled=False) for i in existing + ["keep@contoso.com"]])
        log_before = len(relay.log())

        # 34 edits at once: new accounts in both spellings, and toggles.
        commands = []
        for i, identity in enumerate(created):
            args = (["-Identity", identity, "-PasswordStdin"] if i % 2 else ["--identity", identity, "--password-stdin"])
            commands.append((["new-relayaccount", "--config", relay.config_path] + args, PASSWORD + "\n"))
        values = ["$true", "$null", "true"]
        expected = {"keep@contoso.com": False}
        for i, identity in enumerate(existing):
            commands.append((["set-casmailbox", "--config", relay.config_path, "-Identity", identity,
                              "-SmtpClientAuthenticationDisabled", values[i % 3]], ""))
            expected[identity] = [True, None, True][i % 3]
        expected.update({identity: None for identity in created})

        stop = threading.Event()
        hups = [0]

        def hup():
            while not stop.is_set():
                relay.process.proc.send_signal(signal.SIGHUP)
                hups[0] += 1
                time.sleep(0.02)
        hupper = threading.Thread(target=hup)
        hupper.start()
        failures = []
        try:
            running = [(argv, subprocess.Popen([harness.binary()] + argv, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE), stdin)
                       for argv, stdin in commands]
            for argv, p, stdin in running:
                out, err = p.communicate(stdin.encode(), timeout=120)
                if p.returncode != 0:
                    failures.append("%s -> %d: %s" % (" ".join(argv), p.returncode, err.decode(errors="replace")))
            time.sleep(0.3)
        finally:
            stop.set()
            hupper.join()
        self.assertEqual(failures, [], "CLI edits failed while running in parallel")
        self.assertGreater(hups[0], 5)

        # Every edit is in the file, and the file is valid.
        code, out, err = harness.run_cli(["get-casmailbox", "--json"], config=relay.config_path)
        self.assertEqual(code, 0, err)
        got = {e["Identity"]: e["SmtpClientAuthenticationDisabled"] for e in json.loads(out)}
        self.assertEqual(got, expected, "an edit was lost")
        code, out, err = harness.run_cli(["check-config"], config=relay.config_path)
        self.assertEqual((code, out.strip()), (0, "ok"), out + err)

        # The relay ends on the final policy: a created account is known (the
        # organization decides: Tenant reply, not the unknown-account reply).
        harness.wait_for(lambda: harness.auth_reply(relay, created[-1], PASSWORD) == REPLY_DISABLED_TENANT,
                         timeout=10, interval=0.2, what="the relay to load the final policy")
        self.assertEqual(harness.auth_reply(relay, existing[0], PASSWORD), REPLY_DISABLED_MAILBOX)
        self.assertEqual(harness.auth_reply(relay, existing[1], PASSWORD), REPLY_DISABLED_TENANT)
        self.assertRegex(harness.auth_reply(relay, "keep@contoso.com", PASSWORD), r"^235 2\.7\.0 ")

        log = relay.log()[log_before:].decode("utf-8", "replace")
        problems = [l for l in log.splitlines() if "is invalid" in l or "is missing" in l or
                    re.search(re.escape(relay.policy_path) + r": \S", l)]
        self.assertEqual(problems, [], "the relay saw a half-written or missing policy file")
        self.assertTrue(relay.process.running())
        # Each edit recorded once, by its verb; none taken for a hand edit by the reloads.
        with open(os.path.join(relay.spool_dir, "audit.log")) as f:
            entries = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(sorted(e["object"] for e in entries), sorted(created + existing))
        self.assertEqual([e["what"] for e in entries if e["who"] == "file"], [])
