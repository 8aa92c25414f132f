"""TLS as openssl s_client sees it."""
import re
import subprocess

import harness


class OpensslClientTest(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.relay = self.make_relay([harness.scanner_account()], kind="directory")
        self.start_relay(self.relay)

    def s_client(self, port, extra=(), stdin=b"EHLO scanner.contoso.test\nQUIT\n"):
        openssl = harness.require_tool("openssl")
        argv = [openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", self.pki.ca_cert,
                "-verify_return_error", "-verify_hostname", "localhost", "-crlf", "-ign_eof"] + list(extra)
        result = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=30)
        return result.returncode, result.stdout.decode("utf-8", "replace").replace("\r\n", "\n")

    def assert_good_session(self, code, out):
        self.assertEqual(code, 0, out)
        self.assertIn("Verify return code: 0 (ok)", out)
        m = re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)", out, re.M)
        self.assertIsNotNone(m, out)
        self.assertIn(m.group(1), ("TLSv1.2", "TLSv1.3"))
        # After the handshake the relay answers our EHLO and offers AUTH.
        auth = re.findall(r"(?m)^250[- ]AUTH ([^\n]*)$", out)
        self.assertEqual(len(auth), 1, out)
        self.assertEqual(set(auth[0].split()), {"PLAIN", "LOGIN"})
        self.assertRegex(out, r"(?m)^221 ")

    def test_starttls_smtp(self):
        code, out = self.s_client(self.relay.submission_port, ["-starttls", "smtp"])
        self.assert_good_session(code, out)

    def test_implicit_tls(self):
        code, out = self.s_client(self.relay.submissions_port)
        self.assert_good_session(code, out)
        self.assertRegex(out, r"(?m)^220 %s ESMTP subrelay" % re.escape(harness.RELAY_HOSTNAME))

    def test_tls11_refused(self):
        code, out = self.s_client(self.relay.submissions_port,
                                  ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertIsNone(re.search(r"^New, TLSv1(\.1)?, Cipher is (?!\(NONE\))", out, re.M),
                          "TLS 1.1 must not be negotiated:\n" + out)
        self.assertNotRegex(out, r"(?m)^220 ")
