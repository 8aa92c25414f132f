"""The command line: check-config, hash-password, --version, --help."""
import os
import re
import subprocess
import warnings

import harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # verifies the hashes hash-password prints


def run(args, stdin=b""):
    result = subprocess.run([harness.binary()] + args, input=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
    return result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")


class CheckConfigTest(harness.IntegrationCase):
    def make(self, **kwargs):
        return harness.Relay(os.path.join(self.workdir, "relay"), self.pki, [harness.scanner_account()],
                             upstream_port=2525, token_url="https://127.0.0.1:4443/"
                             + harness.TENANT + "/oauth2/v2.0/token", **kwargs)

    def test_good_config_ok(self):
        relay = self.make()
        code, out, err = run(["check-config", "--config", relay.config_path])
        self.assertEqual(code, 0, out + err)
        self.assertEqual(out.strip(), "ok", out + err)

    def test_good_directory_config_ok(self):
        relay = self.make(kind="directory")
        code, out, err = run(["check-config", "--config", relay.config_path])
        self.assertEqual((code, out.strip()), (0, "ok"), out + err)

    def test_broken_config_lists_every_problem(self):
        relay = self.make()
        text = relay.config_text()
        text = text.replace("[server]\n", "[server]\nbogus_key = 1\n", 1)
        text = re.sub(r'submission = \["127\.0\.0\.1:\d+"\]', 'submission = ["127.0.0.1:99999"]', text)
        text = re.sub(r'(?m)^mailbox = .*\n', "", text)
        with open(relay.config_path, "w") as f:
            f.write(text)
        code, out, err = run(["check-config", "--config", relay.config_path])
        self.assertEqual(code, 1, out + err)
        lines = [l for l in (out + err).splitlines() if l.strip()]
        path = re.escape(relay.config_path)
        for key in (r"server\.bogus_key", r"server\.submission(\[0\])?", r"upstream\.mailbox"):
            pattern = r"^%s: %s: \S" % (path, key)
            self.assertTrue(any(re.match(pattern, l) for l in lines),
                            "no line matching %r in:\n%s" % (pattern, "\n".join(lines)))
        self.assertNotIn("ok", [l.strip() for l in lines])

    def test_missing_file(self):
        path = os.path.join(self.workdir, "does-not-exist.toml")
        code, out, err = run(["check-config", "--config", path])
        self.assertEqual(code, 1)
        self.assertIn(path, out + err)

    def test_serve_refuses_broken_config(self):
        relay = self.make()
        with open(relay.config_path, "a") as f:
            f.write("\n[nonsense]\nx = 1\n")
        result = subprocess.run([harness.binary(), "serve", "--config", relay.config_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"nonsense", result.stdout + result.stderr)


class HashPasswordTest(harness.IntegrationCase):
    def test_hash_verifies_and_is_salted(self):
        password = "Pr1nter-Passw0rd!"
        code, out1, err = run(["hash-password"], (password + "\n").encode())
        self.assertEqual(code, 0, err)
        code, out2, err = run(["hash-password"], (password + "\n").encode())
        self.assertEqual(code, 0, err)
        h1, h2 = out1.strip(), out2.strip()
        self.assertTrue(h1.startswith("$y$"), h1)
        self.assertNotEqual(h1, h2, "hashes must be salted")
        self.assertNotIn(password, out1 + err)
        self.assertEqual(crypt.crypt(password, h1), h1)
        self.assertEqual(crypt.crypt(password, h2), h2)
        self.assertNotEqual(crypt.crypt(password + "x", h1), h1)

    def test_version_and_help(self):
        code, out, err = run(["--version"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"subrelay\S* \d+\.\d+\.\d+")
        code, out, err = run(["--help"])
        self.assertEqual(code, 0, err)
        for verb in ("serve", "check-config", "hash-password"):
            self.assertIn(verb, out)

    def test_unknown_verb_fails(self):
        code, out, err = run(["frobnicate"])
        self.assertNotEqual(code, 0)
