"""No secret may reach subrelay's log, even at the most verbose level."""
import base64

import harness
from harness import CLIENT_SECRET, SCANNER_ID, SCANNER_PASSWORD, UPSTREAM_MAILBOX

WRONG_PASSWORD = "Wr0ng-But-Secret-Passw0rd"


def b64(data):
    return base64.b64encode(data).decode()


class SecretsTest(harness.IntegrationCase):
    def test_log_has_no_secrets(self):
        relay = self.full_stack([harness.scanner_account()], log_level="trace")
        message = harness.make_message(SCANNER_ID, "a@example.org", "secrets")
        harness.smtplib_send(relay, message, ["a@example.org"])
        harness.smtplib_send(relay, message, ["a@example.org"], implicit_tls=True)
        d = relay.dialogue(implicit_tls=True)
        d.expect("220 *")
        d.send("EHLO scanner.contoso.test")
        d.expect("250 *")
        d.send("AUTH LOGIN")
        d.expect("334 *")
        d.send(b64(SCANNER_ID.encode()))
        d.expect("334 *")
        d.send(b64(WRONG_PASSWORD.encode()))
        d.expect("535 *")
        d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, WRONG_PASSWORD))
        d.expect("535 *")
        d.close()
        self.upstream.wait_messages(2)
        self.assertEqual(relay.stop(), 0)

        log = relay.log()
        self.assertGreater(len(log), 0, "expected some log output at level trace")
        tokens = self.token.tokens()
        self.assertEqual(len(tokens), 1)
        forbidden = {
            "device password": SCANNER_PASSWORD,
            "wrong password": WRONG_PASSWORD,
            "device password, base64": b64(SCANNER_PASSWORD.encode()),
            "wrong password, base64": b64(WRONG_PASSWORD.encode()),
            "AUTH PLAIN blob": harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD),
            "client secret": CLIENT_SECRET,
            "client secret, form-encoded": CLIENT_SECRET.replace("~", "%7E"),
            "device password hash": harness.hash_password(SCANNER_PASSWORD),
        }
        for i, token in enumerate(tokens):
            forbidden["token %d" % i] = token
            forbidden["token %d head" % i] = token[:40]
            forbidden["token %d tail" % i] = token[-40:]
            blob = b64(("user=%s\x01auth=Bearer %s\x01\x01" % (UPSTREAM_MAILBOX, token)).encode())
            forbidden["XOAUTH2 blob %d" % i] = blob[200:260]
        text = log.decode("utf-8", "replace")
        for what, secret in forbidden.items():
            with self.subTest(secret=what):
                self.assertNotIn(secret, text, "%s found in the relay's log" % what)
