"""The fakes on their own, without subrelay: if these fail, the relay tests
say nothing about the relay."""
import base64
import json
import smtplib
import ssl
import subprocess

import harness
from harness import CLIENT_ID, CLIENT_SECRET, UPSTREAM_MAILBOX


def curl_token(token, secret=CLIENT_SECRET, extra=()):
    curl = harness.require_tool("curl")
    result = subprocess.run(
        [curl, "-sS", "--cacert", token.pki.ca_cert, "-w", "\n%{http_code}", token.url,
         "--data-urlencode", "grant_type=client_credentials",
         "--data-urlencode", "client_id=" + CLIENT_ID,
         "--data-urlencode", "client_secret=" + secret,
         "--data-urlencode", "scope=https://outlook.office365.com/.default"] + list(extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if result.returncode != 0:
        raise AssertionError("curl failed: %s" % result.stderr.decode(errors="replace"))
    body, status = result.stdout.decode().rsplit("\n", 1)
    return int(status), json.loads(body)


class FixtureTest(harness.IntegrationCase):
    def test_token_endpoint_issues_and_refuses(self):
        token = self.start_token()
        status, body = curl_token(token)
        self.assertEqual(status, 200)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3599)
        self.assertGreater(len(body["access_token"]), 1000)
        self.assertEqual(token.tokens(), [body["access_token"]])

        status, body = curl_token(token, secret="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(body["error"], "invalid_client")
        self.assertTrue(body["error_description"].startswith("AADSTS7000215: "))

        # GET is refused; a wrong scope is refused.
        status, _ = curl_token(token, extra=["-G"])
        self.assertEqual(status, 405)
        self.assertEqual(token.counters(), {"requests": 3, "issued": 1, "refused": 2, "unavailable": 0})

    def _smtp(self, upstream):
        s = smtplib.SMTP("127.0.0.1", upstream.port, timeout=15)
        s.ehlo("relay.example.test")
        self.assertNotIn("auth", s.esmtp_features, "AUTH must not be offered before STARTTLS")
        s.starttls(context=ssl.create_default_context(cafile=self.pki.ca_cert))
        s.ehlo("relay.example.test")
        return s

    def test_upstream_xoauth2(self):
        token = self.start_token()
        upstream = self.start_upstream()
        _, body = curl_token(token)
        access_token = body["access_token"]

        s = self._smtp(upstream)
        self.assertEqual(s.esmtp_features["auth"].split(), ["LOGIN", "XOAUTH2"])
        code, msg = s.mail("scanner@contoso.com")
        self.assertEqual((code, msg.decode()), (530, "5.7.57 Client not authenticated to send mail."))
        # wrong mailbox
        code, msg = s.docmd("AUTH", "XOAUTH2")
        self.assertEqual(code, 334)
        code, msg = s.docmd(base64.b64encode(
            ("user=other@contoso.com\x01auth=Bearer %s\x01\x01" % access_token).encode()).decode())
        self.assertEqual((code, msg.decode()), (535, "5.7.3 Authentication unsuccessful"))
        # token not issued
        code, msg = s.docmd("AUTH", "XOAUTH2")
        code, msg = s.docmd(base64.b64encode(
            ("user=%s\x01auth=Bearer %s\x01\x01" % (UPSTREAM_MAILBOX, access_token[:-1])).encode()).decode())
        self.assertEqual(code, 535)
        # right
        s.auth("XOAUTH2", lambda challenge=None: "user=%s\x01auth=Bearer %s\x01\x01"
               % (UPSTREAM_MAILBOX, access_token), initial_response_ok=False)
        message = harness.make_message("scanner@contoso.com", "a@example.org", "fixture")
        s.sendmail("scanner@contoso.com", ["a@example.org", "b@example.org"], message)
        s.quit()

        (eml, meta), = upstream.wait_messages(1)
        self.assertEqual(eml, message)
        self.assertEqual(meta["mail_from"], "scanner@contoso.com")
        self.assertEqual(meta["rcpt_tos"], ["a@example.org", "b@example.org"])
        self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX)
        self.assertEqual(meta["token"], access_token)
        self.assertFalse(meta["initial_response"])
        counters = upstream.counters()
        self.assertEqual(counters["connections"], 1)
        self.assertEqual(counters["auth_xoauth2_ok"], 1)
        self.assertEqual(counters["auth_failures"], 2)
        self.assertEqual(counters["messages"], 1)

    def test_upstream_faults(self):
        token = self.start_token()
        upstream = self.start_upstream(reject_rcpt=["nobody@example.org"], tempfail_data=1)
        _, body = curl_token(token)
        s = self._smtp(upstream)
        s.auth("XOAUTH2", lambda challenge=None: "user=%s\x01auth=Bearer %s\x01\x01"
               % (UPSTREAM_MAILBOX, body["access_token"]), initial_response_ok=False)
        s.mail("scanner@contoso.com")
        code, _ = s.rcpt("nobody@example.org")
        self.assertEqual(code, 550)
        code, _ = s.rcpt("a@example.org")
        self.assertEqual(code, 250)
        code, _ = s.data(b"Subject: x\r\n\r\nx\r\n")
        self.assertEqual(code, 451)
        s.quit()
        self.assertEqual(upstream.messages(), [])
        self.assertEqual(upstream.counters()["data_tempfailed"], 1)
