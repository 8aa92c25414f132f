"""The From: and Sender: of a message, checked against the account's
allowed_senders at the end of DATA ([organization] check_header_from, on by
default, and the per-account override): a spoofed header gets Exchange's
550 5.7.60 and nothing is queued or relayed."""
import os
import re

import harness
from harness import REPLY_SEND_AS_DENIED

PASSWORD = "Header-Passw0rd!1618"
SCANNER = "scanner@contoso.com"
COPIER = "copier@contoso.com"
LEGACY = "legacy@contoso.com"
CHECKED = "checked@contoso.com"
BOUND_IP = "127.0.0.2"
RCPT = "alice@example.org"


def account(identity, **values):
    return dict({"identity": identity, "password": PASSWORD, "smtp_client_authentication_disabled": False},
                **values)


def message(subject, *header_lines):
    """A CRLF message with the given From:/Sender: lines (str) and a unique Message-ID; bytes."""
    lines = list(header_lines) + [
        "To: <%s>" % RCPT,
        "Subject: %s" % subject,
        "Message-ID: <%s.%s@scanner.contoso.test>" % (os.urandom(6).hex(), subject.replace(" ", "-")),
        "",
        "Scan of %s" % subject,
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


class HeaderFromCase(harness.IntegrationCase):
    def start_with_policy(self, **policy):
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([])
        harness.write_policy(relay, harness.policy_toml(**policy))
        self.start_relay(relay)
        self.accepted = []  # subjects answered 250, in order
        return relay

    def session(self, identity):
        return self.relay.authenticated_dialogue(identity, PASSWORD)

    def bound_session(self, source_ip):
        d = harness.Dialogue(harness.connect_from(source_ip, self.relay.submission_port),
                             self.relay.client_tls_context())
        d.expect("220 *")
        d.send("EHLO printer.contoso.test")
        d.expect("250 *")
        return d

    def submit(self, d, sender, subject, *header_lines):
        """MAIL, RCPT, DATA and the message; returns the last line of the reply to the data."""
        d.send("MAIL FROM:<%s>" % sender)
        d.expect("250 *")
        d.send("RCPT TO:<%s>" % RCPT)
        d.expect("250 *")
        d.send("DATA")
        d.expect("354 *")
        d.send_raw(harness.dot_stuff(message(subject, *header_lines)))
        reply = d.read_reply()[-1]
        if reply.startswith("250 "):
            self.accepted.append(subject)
        return reply

    def assert_refused(self, d, sender, subject, *header_lines):
        self.assertEqual(self.submit(d, sender, subject, *header_lines), REPLY_SEND_AS_DENIED,
                         "\n".join(d.transcript))

    def assert_accepted(self, d, sender, subject, *header_lines):
        self.assertRegex(self.submit(d, sender, subject, *header_lines), r"^250 2\.0\.0 Ok: queued as \S+$",
                         "\n".join(d.transcript))

    def assert_logged_refusal(self, identity, client, address):
        line = "header from refused: account=%s client=%s from=<%s>" % (identity, client, address)
        self.assertIn(line.encode(), self.relay.log())

    def assert_only_accepted_relayed(self):
        """Every message answered 250 reaches the upstream, and nothing else:
        the queue is empty once they are there, so no refused message waits
        in it either."""
        self.upstream.wait_messages(len(self.accepted))
        harness.wait_for(lambda: not self.relay.queued_ids(), what="an empty queue")
        subjects = sorted(harness.header_value(eml, "Subject") for eml, _ in self.upstream.messages())
        self.assertEqual(subjects, sorted(self.accepted))
        # What a refused message wrote is gone: the spool's tmp/ holds only
        # its recycled files, kept empty for the next messages.
        for name in self.relay.spool_tmp_files():
            self.assertRegex(name, r"^recycled\.\d+$", "a refused message's spool file was left behind")
            self.assertEqual(os.path.getsize(os.path.join(self.relay.spool_dir, "tmp", name)), 0, name)
        self.assertEqual(len(re.findall(rb"accepted id=", self.relay.log())), len(self.accepted))


class DefaultOnTest(HeaderFromCase):
    """The policy file says nothing about check_header_from: it is on."""

    def setUp(self):
        super().setUp()
        # max_messages_per_minute 2: the refused messages must give back
        # what they held of it, or the second allowed one would get 421.
        self.start_with_policy(
            org={"smtp_client_authentication_disabled": True},
            mailboxes=[account(SCANNER, max_messages_per_minute=2),
                       account(COPIER, allowed_senders=[COPIER, "*@scans.contoso.com"])],
            bindings=[{"network": BOUND_IP + "/32", "identity": SCANNER}])

    def test_spoofed_from_is_refused_and_nothing_is_relayed(self):
        d = self.session(SCANNER)
        # The case of the issue: the envelope is the account's, the From: is not.
        self.assert_refused(d, SCANNER, "ceo spoof", 'From: "The CEO" <ceo@contoso.com>')
        self.assert_logged_refusal(SCANNER, "127.0.0.1", "ceo@contoso.com")
        # Sender: is checked too when present.
        self.assert_refused(d, SCANNER, "sender spoof", "From: Scanner <scanner@contoso.com>",
                            "Sender: ceo@contoso.com (The CEO)")
        # Every address of a list or a group, one not allowed is enough.
        self.assert_refused(d, SCANNER, "group", "From: Team: scanner@contoso.com,", " boss@contoso.com;")
        self.assert_refused(d, SCANNER, "list", "From: scanner@contoso.com, =?utf-8?Q?Chef?= <ceo@contoso.com>")
        # A From: that cannot be read is not let through.
        self.assert_refused(d, SCANNER, "unreadable", "From: The CEO")
        self.assertIn(b"header from refused: account=scanner@contoso.com client=127.0.0.1 from=<> "
                      b"reason=\"the From: header cannot be read", self.relay.log())
        # The session goes on; the account's own address (any case, a display
        # name, folded) is fine, and so is a message without From:.
        self.assert_accepted(d, SCANNER, "allowed", "From: \"Floor 2\r\n Scanner\" <Scanner@Contoso.com>")
        d.send("QUIT")
        d.close()
        self.assert_only_accepted_relayed()

    def test_a_bound_session_is_checked_as_its_account(self):
        d = self.bound_session(BOUND_IP)
        self.assert_refused(d, SCANNER, "bound spoof", "From: ceo@contoso.com")
        self.assert_logged_refusal(SCANNER, BOUND_IP, "ceo@contoso.com")
        self.assert_accepted(d, SCANNER, "bound allowed", "From: <scanner@contoso.com>")
        self.assert_accepted(d, SCANNER, "bound without from", "Subject-Extra: none")
        d.close()
        self.assert_only_accepted_relayed()

    def test_wildcard_allowed_senders(self):
        d = self.session(COPIER)
        self.assert_accepted(d, COPIER, "floor 2", "From: Floor 2 <floor2@scans.contoso.com>")
        self.assert_accepted(d, "floor3@scans.contoso.com", "floor 3", "From: floor3@SCANS.contoso.com",
                             "Sender: copier@contoso.com")
        self.assert_refused(d, COPIER, "other domain", "From: floor2@contoso.com")
        self.assert_logged_refusal(COPIER, "127.0.0.1", "floor2@contoso.com")
        d.close()
        self.assert_only_accepted_relayed()


class OverrideTest(HeaderFromCase):
    def test_per_account_false_and_organization_false(self):
        self.start_with_policy(
            org={"smtp_client_authentication_disabled": True, "check_header_from": False},
            mailboxes=[account(SCANNER),
                       account(LEGACY, check_header_from=False),
                       account(CHECKED, check_header_from=True)])
        # The organization says false and the account is unset: not checked.
        d = self.session(SCANNER)
        self.assert_accepted(d, SCANNER, "org off", 'From: "The CEO" <ceo@contoso.com>')
        d.close()
        # The account's own false.
        d = self.session(LEGACY)
        self.assert_accepted(d, LEGACY, "account off", "From: ceo@contoso.com")
        d.close()
        # The account's own true wins over the organization's false.
        d = self.session(CHECKED)
        self.assert_refused(d, CHECKED, "account on", "From: ceo@contoso.com")
        self.assert_logged_refusal(CHECKED, "127.0.0.1", "ceo@contoso.com")
        d.close()
        self.assert_only_accepted_relayed()

    def test_cli_turns_it_off_for_an_account(self):
        self.start_with_policy(mailboxes=[account(SCANNER), account(LEGACY)])
        code, out, err = harness.run_cli(["set-relayaccount", "-Identity", LEGACY, "-CheckHeaderFrom", "$false"],
                                         config=self.relay.config_path)
        self.assertEqual(code, 0, err)
        code, out, err = harness.run_cli(["get-relayaccount", "-Identity", LEGACY], config=self.relay.config_path)
        self.assertRegex(out, r"(?m)^CheckHeaderFrom\s+: False$")
        # The running relay takes the edit (a reload is logged), then lets the account's spoof through.
        harness.wait_for(lambda: b"policy reloaded" in self.relay.log(), what="the policy reload")
        d = self.session(LEGACY)
        self.assert_accepted(d, LEGACY, "after cli", "From: ceo@contoso.com")
        d.close()
        d = self.session(SCANNER)
        self.assert_refused(d, SCANNER, "still on", "From: ceo@contoso.com")
        d.close()
        self.assert_only_accepted_relayed()
