"""Old devices as they behave on the wire: bare LF line ends, old TLS, AUTH
without TLS, HELO instead of EHLO, envelopes without angle brackets, the null
sender, bare user names, bursts. Each test is one row of the README's
"Devices" table and emulates the device with raw bytes, smtplib or openssl
s_client."""
import re
import smtplib
import subprocess

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD

RCPT = "colleague@example.org"
BARE_LF_REPLY = "500 5.5.2 Bare LF received, use CRLF"

# What Python's smtplib.sendmail sends for a bytes message with LF line
# ends: the LFs as they are, and a dot stuffed after each LF.
LF_MESSAGE = (b"From: <scanner@contoso.com>\nTo: <colleague@example.org>\nSubject: dots\n\n"
              b".hidden\n..double\nend\n")


class DeviceCase(harness.IntegrationCase):
    device_networks = ()
    server = {}
    accounts = None

    def setUp(self):
        super().setUp()
        extra = {"server": dict(self.server)} if self.server else None
        self.relay = self.full_stack(self.accounts or [harness.scanner_account()],
                                     device_networks=self.device_networks, extra_sections=extra)

    def plain_dialogue(self, source="127.0.0.1"):
        sock = harness.connect_from(source, self.relay.submission_port)
        d = harness.Dialogue(sock, self.relay.client_tls_context())
        d.expect("220 *")
        return d

    def smtplib_session(self):
        """smtplib over STARTTLS, logged in as the scanner."""
        s = smtplib.SMTP("127.0.0.1", self.relay.submission_port, timeout=30)
        s.ehlo("scanner.contoso.test")
        s.starttls(context=self.relay.client_tls_context())
        s.ehlo("scanner.contoso.test")
        s.login(SCANNER_ID, SCANNER_PASSWORD)
        return s

    def implicit_tls_dialogue(self):
        d = self.relay.dialogue(implicit_tls=True)
        d.expect("220 *")
        return d

    def send_message(self, d, body, sender="<%s>" % SCANNER_ID, rcpt="<%s>" % RCPT, mail="MAIL FROM:"):
        """MAIL, RCPT, DATA and a CRLF message on an authenticated dialogue; returns the final reply."""
        d.send(mail + sender)
        d.expect("250 *")
        d.send("RCPT TO:" + rcpt)
        d.expect("250 *")
        d.send("DATA")
        d.expect("354 *")
        d.send_raw(harness.dot_stuff(body))
        return d.expect("250 2.0.0 Ok: queued as *")

    def delivered_body(self, count=1):
        """The last delivered message without its Received: header, and its envelope."""
        delivered = self.upstream.wait_messages(count)
        eml, meta = delivered[-1]
        return harness.split_leading_received(eml)[1], meta

    def s_client(self, port, extra=()):
        openssl = harness.require_tool("openssl")
        argv = [openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", self.pki.ca_cert,
                "-verify_hostname", "localhost", "-crlf", "-ign_eof"] + list(extra)
        result = subprocess.run(argv, input=b"EHLO printer.contoso.test\nQUIT\n", stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=30)
        return result.stdout.decode("utf-8", "replace").replace("\r\n", "\n")

    def negotiated(self, out):
        """The protocol s_client negotiated, or None when the handshake failed."""
        if not re.search(r"^New, \S+, Cipher is (?!\(NONE\))", out, re.M):
            return None
        m = re.search(r"^\s+Protocol\s*:\s*(\S+)", out, re.M)
        return m.group(1) if m else None


class BareLfRefusedTest(DeviceCase):
    def test_lf_message_is_refused_not_changed(self):
        """smtplib.sendmail with bytes: LF line ends, dots stuffed after LF.
        Relayed, '.hidden' used to arrive as '..hidden'; now it is refused
        whole after its real end, and the session goes on."""
        s = self.smtplib_session()
        try:
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                s.sendmail(SCANNER_ID, [RCPT], LF_MESSAGE)
            self.assertEqual(refused.exception.smtp_code, 550)
            self.assertEqual(refused.exception.smtp_error, b"5.6.0 Bare LF received, use CRLF")
            clean = harness.make_message(SCANNER_ID, RCPT, "after the refusal")
            self.assertEqual(s.sendmail(SCANNER_ID, [RCPT], clean), {})
        finally:
            s.quit()
        body, _ = self.delivered_body()
        self.assertEqual(body, clean, "only the clean message is relayed")
        self.assertEqual(len(self.upstream.messages()), 1)
        self.assertIn(b"bare LF refused", self.relay.log())

    def test_lf_command_is_answered_at_once(self):
        """A command ending in a bare LF gets its 500 at once (it used to
        wait for a CRLF until the idle timeout); CRLF works afterwards."""
        d = self.plain_dialogue()
        d.send_raw(b"EHLO printer.contoso.test\n")
        d.expect(BARE_LF_REPLY)
        # What follows up to the CRLF is the rest of that line: refused too.
        d.send("NOOP")
        d.expect(BARE_LF_REPLY)
        d.send("EHLO printer.contoso.test")
        d.expect("250 *")
        d.send("QUIT")
        d.expect("221 *")
        d.close()


class BareLfAcceptedTest(DeviceCase):
    device_networks = [{"networks": ["127.0.0.0/30"], "bare_lf": "accept"}]

    def test_lf_message_arrives_as_meant(self):
        s = self.smtplib_session()
        try:
            self.assertEqual(s.sendmail(SCANNER_ID, [RCPT], LF_MESSAGE), {})
        finally:
            s.quit()
        body, meta = self.delivered_body()
        # Line ends normalised to CRLF, each stuffed dot removed once (smtplib
        # ends a message that does not end in CRLF with one more line end).
        self.assertEqual(body, LF_MESSAGE.replace(b"\n", b"\r\n") + b"\r\n")
        self.assertEqual(meta["rcpt_tos"], [RCPT])

    def test_lf_dialogue_from_end_to_end(self):
        """Every line of the dialogue ends in a bare LF, and <LF>.<LF> ends DATA."""
        d = self.plain_dialogue(source="127.0.0.2")
        d.send_raw(b"EHLO printer.contoso.test\n")
        d.expect("250 *")
        d.send_raw(b"STARTTLS\n")
        d.expect("220 *")
        d.wrap_tls()
        d.send_raw(b"EHLO printer.contoso.test\nAUTH PLAIN %s\n"
                   % harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD).encode())
        d.expect("250 *")
        d.expect("235 *")
        d.send_raw(b"MAIL FROM:<%s>\nRCPT TO:<%s>\nDATA\n" % (SCANNER_ID.encode(), RCPT.encode()))
        d.expect("250 *")
        d.expect("250 *")
        d.expect("354 *")
        d.send_raw(b"Subject: lf\n\n..dot line\nlast\n.\nQUIT\n")
        d.expect("250 2.0.0 Ok: queued as *")
        d.expect("221 *")
        d.close()
        body, _ = self.delivered_body()
        self.assertEqual(body, b"Subject: lf\r\n\r\n.dot line\r\nlast\r\n")

    def test_other_networks_still_refuse_bare_lf(self):
        d = self.plain_dialogue(source="127.0.0.9")
        d.send_raw(b"EHLO printer.contoso.test\n")
        d.expect(BARE_LF_REPLY)
        d.close()


class OldTlsTest(DeviceCase):
    """TLS 1.0 and 1.1 only for the listener a profile names; TLS >= 1.2 elsewhere."""
    device_networks = [{"networks": ["127.0.0.1"], "listeners": ["submissions"], "tls_min_version": "1.0"}]

    def test_tls10_and_tls11_devices_on_their_listener(self):
        for flag, version in (("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")):
            with self.subTest(version=version):
                out = self.s_client(self.relay.submissions_port, [flag, "-cipher", "DEFAULT@SECLEVEL=0"])
                self.assertEqual(self.negotiated(out), version, out)
                self.assertRegex(out, r"(?m)^250[- ]AUTH PLAIN LOGIN$", out)
        # The profiles are listed at start; the protocol and cipher of each
        # session are logged, with the profile.
        self.assertIn(b"device_network[0]: 127.0.0.1 on submissions: TLS >= 1.0", self.relay.log())
        self.assertRegex(self.relay.log(), rb"session 127\.0\.0\.1 submissions \S+: TLSv1 with cipher \S+ "
                                           rb"by device_network\[0\]")

    def test_default_stays_tls12(self):
        out = self.s_client(self.relay.submission_port,
                            ["-starttls", "smtp", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertIsNone(self.negotiated(out), out)
        out = self.s_client(self.relay.submission_port, ["-starttls", "smtp"])
        self.assertIn(self.negotiated(out), ("TLSv1.2", "TLSv1.3"), out)


class Sha1SignaturesTest(DeviceCase):
    """A TLS 1.2 client that offers only SHA-1 signatures (old printer firmware)."""
    device_networks = [{"networks": ["127.0.0.1"], "listeners": ["submissions"], "tls_security_level": 0}]
    SHA1_ONLY = ["-tls1_2", "-sigalgs", "ECDSA+SHA1", "-cipher", "DEFAULT@SECLEVEL=0"]  # the test CA's keys are EC

    def test_sha1_only_client_with_the_profile(self):
        out = self.s_client(self.relay.submissions_port, self.SHA1_ONLY)
        self.assertEqual(self.negotiated(out), "TLSv1.2", out)
        self.assertRegex(out, r"(?m)^221 ")

    def test_sha1_only_client_without_it(self):
        out = self.s_client(self.relay.submission_port, ["-starttls", "smtp"] + self.SHA1_ONLY)
        self.assertIsNone(self.negotiated(out), out)


class AuthWithoutTlsTest(DeviceCase):
    device_networks = [{"networks": ["127.0.0.2"], "auth_without_tls": True}]

    def test_plaintext_auth_only_for_the_profile(self):
        d = self.plain_dialogue(source="127.0.0.2")
        d.send("EHLO printer.contoso.test")
        lines = d.expect("250 *")
        self.assertIn("AUTH PLAIN LOGIN", [l[4:] for l in lines])
        d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
        d.expect("235 *")
        message = harness.make_message(SCANNER_ID, RCPT, "clear text")
        self.send_message(d, message)
        d.send("QUIT")
        d.expect("221 *")
        d.close()
        body, _ = self.delivered_body()
        self.assertEqual(body, message)
        self.assertIn(b"AUTH without TLS (device_network[0] allows it)", self.relay.log())
        self.assertNotIn(SCANNER_PASSWORD.encode(), self.relay.log())

        other = self.plain_dialogue(source="127.0.0.1")
        other.send("EHLO printer.contoso.test")
        self.assertFalse([l for l in other.expect("250 *") if "AUTH" in l])
        other.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
        other.expect("538 5.7.11 *")
        other.close()


class PostelTest(DeviceCase):
    """What Postfix's defaults accept from old devices."""

    def authenticate_and_send(self, d, subject):
        """AUTH PLAIN, then a message; asserts it arrives unchanged."""
        d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
        d.expect("235 *")
        message = harness.make_message(SCANNER_ID, RCPT, subject)
        self.send_message(d, message)
        d.close()
        self.assertEqual(self.delivered_body()[0], message)

    def test_helo_then_auth(self):
        d = self.implicit_tls_dialogue()
        d.send("HELO printer.contoso.test")
        d.expect("250 *")
        self.authenticate_and_send(d, "after HELO")

    def test_ehlo_without_name_then_auth(self):
        d = self.implicit_tls_dialogue()
        d.send("EHLO")
        d.expect("501 5.5.4 *")
        self.authenticate_and_send(d, "after a bare EHLO")

    def test_auth_right_after_starttls(self):
        d = self.plain_dialogue()
        d.send("EHLO printer.contoso.test")
        d.expect("250 *")
        d.send("STARTTLS")
        d.expect("220 *")
        d.wrap_tls()
        self.authenticate_and_send(d, "no second EHLO")  # no second EHLO

    def test_envelope_without_angle_brackets(self):
        d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        first = harness.make_message(SCANNER_ID, RCPT, "no brackets")
        self.send_message(d, first, sender=SCANNER_ID, rcpt=RCPT)
        second = harness.make_message(SCANNER_ID, RCPT, "extra spaces")
        self.send_message(d, second, mail="MAIL  FROM: ", rcpt=" <other@example.org>")
        d.close()
        delivered = self.upstream.wait_messages(2)
        envelopes = sorted((m["mail_from"], tuple(m["rcpt_tos"])) for _, m in delivered)
        self.assertEqual(envelopes, [(SCANNER_ID, (RCPT,)), (SCANNER_ID, ("other@example.org",))])


class NullSenderTest(DeviceCase):
    accounts = [harness.scanner_account(),
                harness.Account("printer@contoso.com", "Printer-Passw0rd!", disabled=False,
                                settings={"null_sender": "refuse"})]

    def test_null_sender_is_relayed_as_the_account(self):
        d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        # Its From: is the account's: another address would be refused at the
        # end of DATA ([organization] check_header_from, test_header_from.py).
        report = harness.make_message(SCANNER_ID, RCPT, "toner low")
        self.send_message(d, report, sender="<>")
        d.close()
        body, meta = self.delivered_body()
        self.assertEqual(body, report)
        self.assertEqual(meta["mail_from"], SCANNER_ID)

    def test_null_sender_refused_when_the_account_says_so(self):
        d = self.relay.authenticated_dialogue("printer@contoso.com", "Printer-Passw0rd!")
        d.send("MAIL FROM:<>")
        d.expect(harness.REPLY_SEND_AS_DENIED)
        d.close()


class DefaultDomainTest(DeviceCase):
    server = {"auth_default_domain": "contoso.com"}

    def test_bare_user_name_is_completed(self):
        d = self.relay.authenticated_dialogue("scanner", SCANNER_PASSWORD)
        message = harness.make_message(SCANNER_ID, RCPT, "bare user name")
        self.send_message(d, message)
        d.close()
        self.assertEqual(self.delivered_body()[0], message)
        self.assertIn(b"auth ok: account=scanner@contoso.com", self.relay.log())
        # A wrong password is still wrong.
        self.assertEqual(harness.auth_reply(self.relay, "scanner", "wrong"), harness.REPLY_BAD_CREDENTIALS)


class NoDefaultDomainTest(DeviceCase):
    def test_bare_user_name_is_unknown(self):
        self.assertEqual(harness.auth_reply(self.relay, "scanner", SCANNER_PASSWORD), harness.REPLY_BAD_CREDENTIALS)


class HandshakeTimeoutTest(DeviceCase):
    server = {"tls_handshake_timeout_seconds": 1}

    def test_silent_client_on_implicit_tls_is_dropped(self):
        d = harness.Dialogue(harness.connect_from("127.0.0.1", self.relay.submissions_port))  # no ClientHello
        self.assertTrue(d.closed_by_peer(timeout=20))
        d.close()
        self.assertIn(b"TLS handshake failed: timed out", self.relay.log())


class BurstTest(DeviceCase):
    def test_one_message_per_page(self):
        """40 pages in a minute from one scanner: no per-account rate limit
        by default (the queue paces the upstream mailbox)."""
        pages = [harness.make_message(SCANNER_ID, RCPT, "page %d" % i) for i in range(40)]
        harness.smtplib_send(self.relay, pages, [RCPT])  # raises on any refusal (421 4.4.2 before)
        self.assertEqual(self.relay.log().count(b" accepted id="), 40)
