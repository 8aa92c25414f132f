"""Real clients submit through subrelay; the message must reach the fake
Exchange upstream unchanged except for one prepended Received: header,
with its envelope, over XOAUTH2 with a token the token endpoint issued."""
import os
import re
import subprocess

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD, UPSTREAM_MAILBOX

RCPTS = ["alice@example.org", "bob@example.net"]


class ClientsTest(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.relay = self.full_stack([harness.scanner_account()])

    def write_file(self, name, data):
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_tool(self, argv):
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=60)
        out = result.stdout.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, "%s exited %d:\n%s" % (argv[0], result.returncode, out))
        return out

    def assert_delivered(self, message, rcpts=RCPTS, sender=SCANNER_ID):
        (eml, meta), = self.upstream.wait_messages(1)
        self.assert_relayed(eml, message, sender, rcpts, meta)
        self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX, "XOAUTH2 user= must be the upstream mailbox")
        self.assertIn(meta["token"], self.token.tokens(), "upstream got a token the endpoint never issued")
        self.assertFalse(meta["initial_response"],
                         "XOAUTH2 must be sent after the 334, not as an initial response")
        counters = self.upstream.counters()
        self.assertEqual(counters["auth_failures"], 0, self.upstream.auth_log())
        self.assertGreaterEqual(counters["auth_xoauth2_ok"], 1)
        return eml, meta

    def test_swaks_auth_plain_starttls(self):
        swaks = harness.require_tool("swaks")
        message = harness.make_message(SCANNER_ID, RCPTS[0], "swaks plain starttls")
        # swaks appends CRLF before the terminating dot itself.
        path = self.write_file("msg.eml", message[:-2])
        out = self.run_tool([swaks, "--server", "127.0.0.1:%d" % self.relay.submission_port,
                             "--ehlo", "scanner.contoso.test", "--tls", "--auth", "PLAIN",
                             "--auth-user", SCANNER_ID, "--auth-password", SCANNER_PASSWORD,
                             "--from", SCANNER_ID, "--to", ",".join(RCPTS), "--data", "@" + path])
        self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued as \S+")
        self.assert_delivered(message)

    def test_swaks_auth_login_implicit_tls(self):
        swaks = harness.require_tool("swaks")
        message = harness.make_message(SCANNER_ID, RCPTS[0], "swaks login tls-on-connect")
        path = self.write_file("msg.eml", message[:-2])
        out = self.run_tool([swaks, "--server", "127.0.0.1:%d" % self.relay.submissions_port,
                             "--ehlo", "scanner.contoso.test", "--tls-on-connect", "--auth", "LOGIN",
                             "--auth-user", SCANNER_ID, "--auth-password", SCANNER_PASSWORD,
                             "--from", SCANNER_ID, "--to", ",".join(RCPTS), "--data", "@" + path])
        self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued as \S+")
        self.assert_delivered(message)

    def curl(self, url, message, extra=()):
        curl = harness.require_tool("curl")
        path = self.write_file("msg.eml", message)
        argv = [curl, "-sS", "-v", url, "--cacert", self.pki.ca_cert,
                "--user", "%s:%s" % (SCANNER_ID, SCANNER_PASSWORD),
                "--mail-from", SCANNER_ID, "--upload-file", path] + list(extra)
        for r in RCPTS:
            argv += ["--mail-rcpt", r]
        return self.run_tool(argv)

    def test_curl_smtp_ssl_reqd(self):
        message = harness.make_message(SCANNER_ID, RCPTS[0], "curl smtp starttls")
        out = self.curl("smtp://127.0.0.1:%d/scanner.contoso.test" % self.relay.submission_port,
                        message, ["--ssl-reqd"])
        self.assertRegex(out, r"< 250 2\.0\.0 Ok: queued as \S+")
        self.assertIn("STARTTLS", out)
        self.assert_delivered(message)

    def test_curl_smtps_auth_login(self):
        message = harness.make_message(SCANNER_ID, RCPTS[0], "curl smtps login")
        out = self.curl("smtps://127.0.0.1:%d/scanner.contoso.test" % self.relay.submissions_port,
                        message, ["--login-options", "AUTH=LOGIN"])
        self.assertRegex(out, r"> AUTH LOGIN")
        self.assertRegex(out, r"< 250 2\.0\.0 Ok: queued as \S+")
        self.assert_delivered(message)

    def test_smtplib_starttls_login(self):
        message = harness.make_message(SCANNER_ID, RCPTS[0], "smtplib starttls")
        harness.smtplib_send(self.relay, message, RCPTS)
        self.assert_delivered(message)

    def test_smtplib_implicit_tls_login_mechanism(self):
        import smtplib
        message = harness.make_message(SCANNER_ID, RCPTS[0], "smtplib smtps login")
        s = smtplib.SMTP_SSL("127.0.0.1", self.relay.submissions_port, timeout=30,
                             context=self.relay.client_tls_context())
        s.ehlo("scanner.contoso.test")
        self.assertIn("auth", s.esmtp_features)
        self.assertEqual(set(s.esmtp_features["auth"].upper().split()), {"PLAIN", "LOGIN"})
        s.user, s.password = SCANNER_ID, SCANNER_PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        self.assertEqual(code, 235)
        s.sendmail(SCANNER_ID, RCPTS, message)
        s.quit()
        self.assert_delivered(message)

    def test_queue_id_in_reply_and_received_header(self):
        d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("250 *")
        d.send("RCPT TO:<%s>" % RCPTS[0])
        d.expect("250 *")
        d.send("DATA")
        d.expect("354 *")
        message = harness.make_message(SCANNER_ID, RCPTS[0], "queue id")
        d.send_raw(harness.dot_stuff(message))
        reply = d.expect("250 2.0.0 Ok: queued as *")[-1]
        queue_id = reply.rsplit(" ", 1)[1]
        d.send("QUIT")
        d.expect("221 *")
        d.close()
        eml, _ = self.assert_delivered(message, rcpts=RCPTS[:1])
        (received,), _ = harness.split_leading_received(eml)
        self.assertIn(queue_id.encode(), received, "the Received: header should carry the queue id")
        self.assertRegex(received.decode(), r"(?s)^Received: from scanner\.contoso\.test .*by "
                         + re.escape(harness.RELAY_HOSTNAME))


class TokenReuseTest(harness.IntegrationCase):
    def test_many_messages_one_token(self):
        relay = self.full_stack([harness.scanner_account()])
        sent = []
        for conn in range(5):
            for i in range(2):
                message = harness.make_message(SCANNER_ID, "r%d@example.org" % conn, "bulk %d-%d" % (conn, i))
                harness.smtplib_send(relay, message, ["r%d@example.org" % conn])
                sent.append(message)
        delivered = self.upstream.wait_messages(10)
        # All ten arrived, each once, with its own bytes.
        self.assertEqual(len(delivered), 10)
        bodies = sorted(harness.split_leading_received(eml)[1] for eml, _ in delivered)
        self.assertEqual(bodies, sorted(sent))
        counters = self.token.counters()
        self.assertEqual(counters["requests"], 1, "the token must be fetched once for many messages")
        self.assertEqual(counters["issued"], 1)
        (token,) = self.token.tokens()
        self.assertTrue(all(meta["token"] == token for _, meta in delivered))
        up = self.upstream.counters()
        self.assertEqual(up["auth_failures"], 0, self.upstream.auth_log())
        self.assertEqual(up["auth_xoauth2_ok"], up["connections"], "one AUTH per upstream connection")
        self.assertLessEqual(up["max_concurrent_connections"], 3, "max_connections_per_mailbox = 3")

    def test_temporary_failure_is_retried_once_delivered(self):
        relay = self.full_stack([harness.scanner_account()], upstream_kwargs={"tempfail_data": 1})
        message = harness.make_message(SCANNER_ID, "a@example.org", "tempfail")
        harness.smtplib_send(relay, message, ["a@example.org"])
        (eml, meta), = self.upstream.wait_messages(1)
        self.assert_relayed(eml, message, SCANNER_ID, ["a@example.org"], meta)
        self.assertEqual(self.upstream.counters()["data_tempfailed"], 1)
        # Give the relay time for more (wrong) attempts: retry_max_seconds = 2.
        harness.time.sleep(3)
        self.assertEqual(len(self.upstream.messages()), 1, "delivered more than once")
