"""The replies Exchange Online gives, given by subrelay for its own policy."""
import base64

import harness
from harness import (Account, REPLY_BAD_CREDENTIALS, REPLY_DISABLED_MAILBOX, REPLY_DISABLED_TENANT,
                     REPLY_NOT_AUTHENTICATED, REPLY_SEND_AS_DENIED, SCANNER_ID, SCANNER_PASSWORD)

DISABLED = Account("disabled@contoso.com", "Disabled-Passw0rd!1", disabled=True)
UNSET = Account("unset@contoso.com", "Unset-Passw0rd!2")


def b64(s):
    return base64.b64encode(s.encode()).decode()


class PolicySession(harness.IntegrationCase):
    """Helpers only (no tests): a relay with three accounts."""
    org_disabled = True

    def setUp(self):
        super().setUp()
        self.relay = self.full_stack([harness.scanner_account(), DISABLED, UNSET],
                                     org_disabled=self.org_disabled)

    def tls_session(self):
        return self.relay.tls_dialogue()

    def auth_plain(self, identity, password):
        d = self.tls_session()
        d.send("AUTH PLAIN " + harness.plain_credentials(identity, password))
        return d, d.read_reply()[-1]

    def auth_login(self, identity, password):
        d = self.tls_session()
        d.send("AUTH LOGIN")
        d.expect("334 *")
        d.send(b64(identity))
        d.expect("334 *")
        d.send(b64(password))
        return d, d.read_reply()[-1]

    def send_sentinel_and_check_nothing_else(self):
        """Delivers one good message and checks it is the only one upstream."""
        message = harness.make_message(SCANNER_ID, "sentinel@example.org", "sentinel")
        harness.smtplib_send(self.relay, message, ["sentinel@example.org"])
        self.upstream.wait_messages(1)
        msgs = self.upstream.messages()
        self.assertEqual([m["rcpt_tos"] for _, m in msgs], [["sentinel@example.org"]],
                         "only the sentinel message may have been relayed")


class RefusalTest(PolicySession):
    org_disabled = True

    def test_wrong_password(self):
        for auth in (self.auth_plain, self.auth_login):
            with self.subTest(auth=auth.__name__):
                d, reply = auth(SCANNER_ID, "not-the-password")
                self.assertEqual(reply, REPLY_BAD_CREDENTIALS)
                d.send("MAIL FROM:<%s>" % SCANNER_ID)
                self.assertEqual(d.read_reply()[-1], REPLY_NOT_AUTHENTICATED)
                d.close()

    def test_unknown_account_same_reply(self):
        for auth in (self.auth_plain, self.auth_login):
            with self.subTest(auth=auth.__name__):
                d, reply = auth("nobody@contoso.com", SCANNER_PASSWORD)
                self.assertEqual(reply, REPLY_BAD_CREDENTIALS)
                d.close()

    def test_mailbox_disabled(self):
        d, reply = self.auth_plain(DISABLED.identity, DISABLED.password)
        self.assertEqual(reply, REPLY_DISABLED_MAILBOX)
        d.send("MAIL FROM:<%s>" % DISABLED.identity)
        self.assertEqual(d.read_reply()[-1], REPLY_NOT_AUTHENTICATED)
        d.close()

    def test_mailbox_unset_org_disabled(self):
        d, reply = self.auth_login(UNSET.identity, UNSET.password)
        self.assertEqual(reply, REPLY_DISABLED_TENANT)
        d.close()

    def test_mailbox_enabled_overrides_org(self):
        d, reply = self.auth_plain(SCANNER_ID, SCANNER_PASSWORD)
        self.assertRegex(reply, r"^235 2\.7\.0 ")
        d.close()

    def test_mail_before_auth(self):
        d = self.tls_session()
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        self.assertEqual(d.read_reply()[-1], REPLY_NOT_AUTHENTICATED)
        d.send("RCPT TO:<a@example.org>")
        self.assertEqual(d.read_reply()[-1][0], "5", "RCPT without a transaction must be refused")
        d.send("DATA")
        self.assertEqual(d.read_reply()[-1][0], "5", "DATA without a transaction must be refused")
        d.close()
        self.send_sentinel_and_check_nothing_else()

    def test_sender_not_allowed(self):
        d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        # The refusal may come at MAIL, at RCPT or after the data: find it.
        d.send("MAIL FROM:<ceo@contoso.com>")
        reply = d.read_reply()[-1]
        if reply.startswith("250"):
            d.send("RCPT TO:<a@example.org>")
            reply = d.read_reply()[-1]
            if reply.startswith("250"):
                d.send("DATA")
                d.expect("354 *")
                d.send_raw(harness.dot_stuff(harness.make_message("ceo@contoso.com", "a@example.org", "send as")))
                reply = d.read_reply()[-1]
        self.assertEqual(reply, REPLY_SEND_AS_DENIED)
        # The session goes on: an allowed sender works afterwards.
        d.send("RSET")
        d.expect("250 *")
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("250 *")
        d.send("QUIT")
        d.expect("221 *")
        d.close()
        self.send_sentinel_and_check_nothing_else()

    def test_auth_needs_tls(self):
        d = self.relay.dialogue()
        d.expect("220 %s ESMTP subrelay" % harness.RELAY_HOSTNAME)
        d.send("EHLO scanner.contoso.test")
        lines = d.expect("250 *")
        keywords = [l[4:].split()[0].upper() for l in lines[1:] if len(l) > 4]
        self.assertIn("STARTTLS", keywords)
        self.assertNotIn("AUTH", keywords, "AUTH must not be offered before STARTTLS: %r" % lines)
        d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
        reply = d.read_reply()[-1]
        self.assertTrue(reply.startswith("5"), "AUTH on a clear connection must be refused: %r" % reply)
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        self.assertTrue(d.read_reply()[-1].startswith("5"))
        d.close()

    def test_auth_offered_after_tls(self):
        d = self.tls_session()
        d.send("EHLO scanner.contoso.test")
        lines = d.expect("250 *")
        self.assertIn(d.tls_version(), ("TLSv1.2", "TLSv1.3"))
        auth = [l[4:].upper().split() for l in lines if l[4:].upper().startswith("AUTH ")]
        self.assertEqual(len(auth), 1, lines)
        self.assertEqual(set(auth[0][1:]), {"PLAIN", "LOGIN"})
        starttls = [l for l in lines if l[4:].upper() == "STARTTLS"]
        self.assertEqual(starttls, [], "STARTTLS must not be offered again inside TLS")
        d.close()


class OrgEnabledTest(PolicySession):
    org_disabled = False

    def test_mailbox_unset_org_enabled_accepted(self):
        d, reply = self.auth_plain(UNSET.identity, UNSET.password)
        self.assertRegex(reply, r"^235 2\.7\.0 ")
        d.close()
        message = harness.make_message(UNSET.identity, "a@example.org", "org enabled")
        harness.smtplib_send(self.relay, message, ["a@example.org"], sender=UNSET.identity,
                             identity=UNSET.identity, password=UNSET.password)
        (eml, meta), = self.upstream.wait_messages(1)
        self.assert_relayed(eml, message, UNSET.identity, ["a@example.org"], meta)

    def test_mailbox_disabled_wins_over_enabled_org(self):
        d, reply = self.auth_plain(DISABLED.identity, DISABLED.password)
        self.assertEqual(reply, REPLY_DISABLED_MAILBOX)
        d.close()
