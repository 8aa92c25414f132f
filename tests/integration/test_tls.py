"""TLS as openssl s_client sees it."""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess

import harness
import pki


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


class CertificateReloadTest(harness.IntegrationCase):
    """A renewed certificate needs no restart: SIGHUP reads the certificate
    and key again and new sessions get them; a renewal that cannot be
    loaded (a half-written key) is logged and the current one stays."""

    def served(self, relay):
        """The SHA-256 of the certificate the implicit-TLS listener serves
        (verified against the test CA for localhost)."""
        context = ssl.create_default_context(cafile=self.pki.ca_cert)
        with socket.create_connection(("127.0.0.1", relay.submissions_port), timeout=15) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()

    def hup_and_wait(self, relay, line):
        offset = len(relay.log())
        os.kill(relay.process.pid, signal.SIGHUP)
        harness.wait_for(lambda: line in relay.log()[offset:], what=line.decode())

    def test_sighup_serves_a_renewed_certificate(self):
        relay = self.make_relay([harness.scanner_account()], kind="directory")
        self.start_relay(relay)
        pid = relay.process.pid
        first = self.served(relay)

        renewed = pki.issue_leaf(self.pki.directory, self.pki.ca_cert, self.pki.ca_key, "relay-renewed")
        for source, target in ((renewed.key, "relay-key.pem"), (renewed.cert, "relay-cert.pem")):
            shutil.copyfile(source, os.path.join(relay.workdir, target + ".new"))
            os.replace(os.path.join(relay.workdir, target + ".new"), os.path.join(relay.workdir, target))
        self.hup_and_wait(relay, b"TLS certificates and keys reloaded (SIGHUP)")
        second = self.served(relay)
        self.assertNotEqual(second, first, "the renewed certificate is not served after SIGHUP")
        with open(renewed.cert, "rb") as f:
            self.assertEqual(second, hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read().decode())).hexdigest())
        self.assertEqual(relay.process.pid, pid)

        # A half-written key: the renewed certificate stays in service.
        with open(os.path.join(relay.workdir, "relay-key.pem"), "r+b") as f:
            f.truncate(20)
        self.hup_and_wait(relay, b"TLS certificates and keys not reloaded (SIGHUP): tls.")
        self.assertEqual(self.served(relay), second)
        self.assertTrue(relay.process.running())
