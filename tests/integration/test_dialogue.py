"""Raw SMTP dialogues: pipelining, and SMTP smuggling attempts."""
import re

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD


class DialogueTest(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.relay = self.full_stack([harness.scanner_account()])

    def test_pipelining(self):
        d = self.relay.tls_dialogue()
        lines = d.ehlo_lines
        self.assertIn("PIPELINING", [l[4:].upper() for l in lines], lines)
        d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
        d.expect("235 *")

        first = harness.make_message(SCANNER_ID, "a@example.org", "pipelined one")
        second = harness.make_message(SCANNER_ID, "c@example.org", "pipelined two")
        d.send_raw(b"MAIL FROM:<%s>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
                   % SCANNER_ID.encode())
        d.expect("250 *")
        d.expect("250 *")
        d.expect("250 *")
        d.expect("354 *")
        # The end of data and the next transaction in one write.
        d.send_raw(harness.dot_stuff(first) + b"MAIL FROM:<%s>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
                   % SCANNER_ID.encode())
        d.expect("250 2.0.0 Ok: queued as *")
        d.expect("250 *")
        d.expect("250 *")
        d.expect("354 *")
        d.send_raw(harness.dot_stuff(second) + b"QUIT\r\n")
        d.expect("250 2.0.0 Ok: queued as *")
        d.expect("221 *")
        d.close()

        delivered = self.upstream.wait_messages(2)
        by_body = {harness.split_leading_received(eml)[1]: (eml, meta) for eml, meta in delivered}
        self.assertEqual(set(by_body), {first, second})
        eml, meta = by_body[first]
        self.assert_relayed(eml, first, SCANNER_ID, ["a@example.org", "b@example.org"], meta)
        eml, meta = by_body[second]
        self.assert_relayed(eml, second, SCANNER_ID, ["c@example.org"], meta)

    SMUGGLING_ENDINGS = [b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\n", b"\r\n.\r"]

    def test_smuggling_is_content(self):
        smuggled_cmds = (b"MAIL FROM:<%s>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
                         b"Subject: smuggled\r\n\r\nsmuggled body\r\n" % SCANNER_ID.encode())
        relayed = 0
        for n, ending in enumerate(self.SMUGGLING_ENDINGS):
            with self.subTest(ending=ending):
                d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
                d.send("MAIL FROM:<%s>" % SCANNER_ID)
                d.expect("250 *")
                d.send("RCPT TO:<legit%d@example.org>" % n)
                d.expect("250 *")
                d.send("DATA")
                d.expect("354 *")
                head = b"From: <%s>\r\nSubject: smuggling %d\r\n\r\nhello" % (SCANNER_ID.encode(), n)
                # Everything up to the real <CRLF>.<CRLF> is one message; then QUIT.
                d.send_raw(head + ending + smuggled_cmds + b".\r\nQUIT\r\n")
                if re.search(rb"(?<!\r)\n", ending):
                    # A bare LF: the message is read to its real end and refused whole.
                    d.expect("550 5.6.0 *")
                else:
                    d.expect("250 2.0.0 Ok: queued as *")
                    relayed += 1
                # If the smuggled commands had been executed, their replies
                # (250, 250, 354, 250) would come before the 221.
                d.expect("221 *")
                d.close()

        self.assertEqual(relayed, 2)
        delivered = self.upstream.wait_messages(relayed)
        harness.time.sleep(2)  # a smuggled second message would be relayed by now
        delivered = self.upstream.messages()
        self.assertEqual(len(delivered), relayed, [m for _, m in delivered])
        for eml, meta in delivered:
            self.assertRegex(meta["rcpt_tos"][0], r"^legit\d@example\.org$")
            self.assertEqual(len(meta["rcpt_tos"]), 1)
            self.assertIn(b"RCPT TO:<victim@example.org>", eml)
            self.assertIn(b"smuggled body", eml)
            # Sent upstream as CRLF only: no bare CR or LF for a lenient
            # upstream to mistake for an end of data.
            self.assertIsNone(re.search(rb"\r(?!\n)|(?<!\r)\n", eml),
                              "bare CR or LF relayed upstream: %r" % eml)

    def test_overlong_line_and_unknown_command_keep_session(self):
        d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        d.send("XYZZY")
        self.assertRegex(d.read_reply()[-1], r"^5\d\d ")
        d.send("NOOP")
        d.expect("250 *")
        d.send("QUIT")
        d.expect("221 *")
        d.close()
