"""TLS session resumption and several certificates, as openssl s_client sees them.

A device that opens a new connection for every message resumes its TLS
session (session tickets sealed with keys the relay keeps in memory), and a
relay with an ECDSA and an RSA certificate serves each client the one it can
verify.
"""
import os
import re
import subprocess

import harness
import pki as pki_module

EHLO_QUIT = b"EHLO scanner.contoso.test\nQUIT\n"


def make_rsa_leaf(pki, directory, name="relay-rsa"):
    """An RSA-2048 server certificate from the test CA, for localhost and 127.0.0.1."""
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cert = os.path.join(directory, name + ".pem")
    pki_module._run(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                     "-subj", "/O=subrelay tests/CN=localhost"], directory)
    pki_module._run(["x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
                     "-CAcreateserial", "-days", "2", "-extfile", os.path.join(pki.directory, "leaf.ext"),
                     "-out", cert], directory)
    os.chmod(key, 0o600)
    return pki_module.Leaf(cert=cert, key=key)


class SessionClient:
    """openssl s_client against the relay, verifying its certificate."""

    def __init__(self, case):
        self.case = case

    def run(self, port, extra=(), stdin=EHLO_QUIT):
        openssl = harness.require_tool("openssl")
        argv = [openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", self.case.pki.ca_cert,
                "-verify_return_error", "-verify_hostname", "localhost", "-crlf", "-ign_eof"] + list(extra)
        result = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=30)
        out = result.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        self.case.assertEqual(result.returncode, 0, out)
        self.case.assertIn("Verify return code: 0 (ok)", out)
        # The relay answered EHLO and QUIT inside TLS.
        self.case.assertRegex(out, r"(?m)^250[- ]AUTH ")
        self.case.assertRegex(out, r"(?m)^221 ")
        return out

    @staticmethod
    def session_line(out):
        """("New" or "Reused", "TLSv1.3") from s_client's summary."""
        m = re.search(r"(?m)^(New|Reused), (TLSv[\d.]+), Cipher is (?!\(NONE\))\S+", out)
        return (m.group(1), m.group(2)) if m else None


class ResumptionTest(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.relay = self.make_relay([harness.scanner_account()], kind="directory", log_level="debug")
        self.start_relay(self.relay)
        self.client = SessionClient(self)

    def connect_twice(self, port, extra):
        session = os.path.join(self.workdir, "session-%d.pem" % len(os.listdir(self.workdir)))
        first = self.client.run(port, list(extra) + ["-sess_out", session])
        self.assertTrue(os.path.getsize(session) > 0, "s_client saved no session:\n" + first)
        second = self.client.run(port, list(extra) + ["-sess_in", session])
        return first, second, session

    def assert_resumes(self, port, extra, version):
        first, second, _ = self.connect_twice(port, extra)
        self.assertEqual(SessionClient.session_line(first), ("New", version), first)
        self.assertEqual(SessionClient.session_line(second), ("Reused", version), second)

    def test_starttls_resumes(self):
        for version, flag in (("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")):
            with self.subTest(version=version):
                self.assert_resumes(self.relay.submission_port, ["-starttls", "smtp", flag], version)

    def test_implicit_tls_resumes(self):
        for version, flag in (("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")):
            with self.subTest(version=version):
                self.assert_resumes(self.relay.submissions_port, [flag], version)

    def test_the_log_says_which_sessions_were_resumed(self):
        before = self.relay.log().count(b"(resumed)")
        self.assert_resumes(self.relay.submissions_port, ["-tls1_3"], "TLSv1.3")
        harness.wait_for(lambda: self.relay.log().count(b"(resumed)") == before + 1,
                         what="one resumed session in the log")
        self.assertRegex(self.relay.log().decode("utf-8", "replace"),
                         r"session 127\.0\.0\.1 submissions \S+: TLSv1\.3 with cipher \S+ \(resumed\)")

    def test_a_restarted_relay_does_not_accept_old_tickets(self):
        # The ticket keys live only in memory: after a restart the old
        # ticket is refused and the client gets a full handshake.
        port = self.relay.submissions_port
        first, _, session = self.connect_twice(port, ["-tls1_3"])
        self.assertEqual(self.relay.stop(), 0)
        self.start_relay(self.relay)
        again = self.client.run(port, ["-tls1_3", "-sess_in", session])
        self.assertEqual(SessionClient.session_line(again), ("New", "TLSv1.3"), again)


class ResumptionOffTest(harness.IntegrationCase):
    def test_without_tickets_or_cache_nothing_is_offered_for_resumption(self):
        relay = self.make_relay([harness.scanner_account()], kind="directory",
                                extra_sections={"tls": {"session_tickets": False, "session_cache_size": 0}})
        self.start_relay(relay)
        client = SessionClient(self)
        for version, flag in (("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")):
            with self.subTest(version=version):
                session = os.path.join(self.workdir, "session%s.pem" % flag)
                first = client.run(relay.submissions_port, [flag, "-sess_out", session])
                self.assertEqual(SessionClient.session_line(first), ("New", version), first)
                # Nothing to resume: no ticket, and no session id either.
                self.assertFalse(os.path.exists(session), "the relay offered a session to resume")


class CertificateListTest(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.rsa = make_rsa_leaf(self.pki, self.workdir)
        ecdsa = self.pki.leaf("relay")
        self.relay = self.make_relay(
            [harness.scanner_account()], kind="directory",
            extra_sections={"tls": {"cert_file": [ecdsa.cert, self.rsa.cert],
                                    "key_file": [ecdsa.key, self.rsa.key]}})
        self.client = SessionClient(self)

    def assert_served(self, out, signature, bits):
        self.assertRegex(out, r"(?m)^Peer signature type: %s$" % signature, out)
        self.assertRegex(out, r"(?m)^Server public key is %d bit$" % bits, out)

    def test_each_client_gets_the_certificate_it_can_verify(self):
        self.start_relay(self.relay)
        for name, port, extra in (("implicit", self.relay.submissions_port, []),
                                  ("starttls", self.relay.submission_port, ["-starttls", "smtp"])):
            for version in ("-tls1_3", "-tls1_2"):
                with self.subTest(listener=name, version=version):
                    ecdsa = self.client.run(port, extra + [version, "-sigalgs", "ECDSA+SHA256"])
                    self.assert_served(ecdsa, "ECDSA", 256)
                    rsa = self.client.run(port, extra + [version, "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"])
                    self.assert_served(rsa, "RSA(-PSS)?", 2048)

    def test_check_config_accepts_the_pair_and_refuses_two_of_a_kind(self):
        code, out, err = harness.run_cli(["check-config"], config=self.relay.config_path)
        self.assertEqual((code, out.strip()), (0, "ok"), out + err)

        other = self.pki.leaf("upstream")  # another ECDSA certificate
        with open(self.relay.config_path) as f:
            text = f.read()
        text = re.sub(r"(?m)^cert_file = .*$", "cert_file = %s" % harness.toml_value(
            [self.pki.leaf("relay").cert, self.rsa.cert, other.cert]), text)
        text = re.sub(r"(?m)^key_file = .*$", "key_file = %s" % harness.toml_value(
            [self.pki.leaf("relay").key, self.rsa.key, other.key]), text)
        with open(self.relay.config_path, "w") as f:
            f.write(text)
        code, out, err = harness.run_cli(["check-config"], config=self.relay.config_path)
        self.assertEqual(code, 1, out + err)
        self.assertIn("%s: tls.cert_file[2]: %s: a second ECDSA certificate (tls.cert_file[0] is one too)"
                      % (self.relay.config_path, other.cert), err)
