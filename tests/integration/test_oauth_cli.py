"""`subrelay oauth login` and `subrelay oauth status`, the real binary
against the fake identity platform: the device code sign-in of a delegated
profile stores the refresh token the platform honours (privately, never
printed), a declined sign-in leaves the stored token alone, and `status`
shows what a running relay wrote about its tokens."""
import json
import os
import re
import subprocess

import harness
from harness import CLIENT_ID, TENANT, UPSTREAM_MAILBOX

DEVICE_CODE_PREFIX = "DAQABIQEAAAD"   # every device code the fake issues starts so
VERIFICATION_URI = "https://microsoft.com/devicelogin"
DELEGATED_MAILBOX = "scanner@contoso.com"


def run_oauth(config, *args, timeout=120):
    """`subrelay oauth ARGS... --config CONFIG`; (status, stdout, stderr)."""
    argv = [harness.binary(), "oauth"] + list(args) + ["--config", config]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=timeout)
    return (result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"))


class OAuthCliCase(harness.IntegrationCase):
    def relay_with_delegated_profile(self, accounts=(), upstream_port=None):
        """A relay config (not started) whose default profile is the usual
        client-credentials one and whose profile "delegated" signs in at the
        fake with the device code flow."""
        delegated = {
            "grant": "refresh_token", "tenant": TENANT, "client_id": CLIENT_ID,
            "token_url": self.token.url, "device_code_url": self.token.devicecode_url,
            "refresh_token_file": "delegated.token", "ca_file": "ca.pem",
            "mailboxes": [DELEGATED_MAILBOX],
        }
        relay = harness.Relay(os.path.join(self.workdir, "relay"), self.pki, list(accounts),
                              upstream_port=upstream_port or harness.free_port(),
                              token_url=self.token.url,
                              extra_sections={"oauth.profiles.delegated": delegated})
        self.log_files.append(relay.log_path)
        self.relay = relay
        self.token_file = os.path.join(relay.workdir, "delegated.token")
        return relay

    def assert_nothing_secret(self, text, refresh_token=None):
        self.assertNotIn(DEVICE_CODE_PREFIX, text, "the device code was printed")
        if refresh_token:
            self.assertNotIn(refresh_token, text, "the refresh token was printed")
            self.assertNotIn(refresh_token[:24], text, "part of the refresh token was printed")


class LoginTest(OAuthCliCase):
    def test_device_code_sign_in_stores_the_refresh_token(self):
        self.start_token(device_pending=2, device_interval=1)
        relay = self.relay_with_delegated_profile()
        code, out, err = run_oauth(relay.config_path, "login", "--profile", "delegated")
        self.assertEqual(code, 0, "stdout:\n%s\nstderr:\n%s" % (out, err))

        # What the person was told: the page and the code to enter there.
        self.assertIn(VERIFICATION_URI, out)
        user_code = re.search(r"enter the code ([A-Z0-9]{9})\b", out)
        self.assertIsNotNone(user_code, out)
        self.assertIn("Signed in; refresh token stored in %s" % self.token_file, out)
        self.assertIn("no restart", out)

        current = self.token.current_refresh_token()
        self.assertTrue(current, "the fake issued no refresh token")
        with open(self.token_file) as f:
            self.assertEqual(f.read().rstrip("\n"), current,
                             "the file must hold the refresh token the platform honours now")
        self.assertEqual(os.stat(self.token_file).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(self.token_file + ".tmp"))
        self.assert_nothing_secret(out + err, current)

        counters = self.token.counters(full=True)
        self.assertEqual(counters["device_codes_issued"], 1)
        self.assertEqual(counters["issued_by_grant"]["device_code"], 1)
        self.assertEqual(counters["grants"]["device_code"], 3, "two pending answers, then success")
        self.assertEqual(counters["device_poll_violations"], 0, "polled faster than the interval")

        # `status` now says someone signed in, and still shows no token.
        code, out, err = run_oauth(relay.config_path, "status")
        self.assertEqual(code, 0, err)
        self.assertIn("stored in %s" % self.token_file, out)
        self.assertNotIn("not signed in", out)
        self.assert_nothing_secret(out + err, current)

    def test_declined_sign_in_fails_and_keeps_the_old_token(self):
        self.start_token(device_outcome="declined", device_interval=1)
        relay = self.relay_with_delegated_profile()
        with open(self.token_file, "w") as f:
            f.write("1.AQ-the-previous-refresh-token\n")
        os.chmod(self.token_file, 0o600)
        before = os.stat(self.token_file)

        code, out, err = run_oauth(relay.config_path, "login", "--profile", "delegated")
        self.assertEqual(code, 1, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertIn(VERIFICATION_URI, out, "the code was shown before the sign-in was declined")
        self.assertIn("subrelay oauth login: ", err)
        self.assertIn("authorization_declined", err)
        hint = re.search(r"(?m)^hint: (.*)$", err)
        self.assertIsNotNone(hint, err)
        self.assertIn("subrelay oauth login", hint.group(1), "the hint should say to sign in again")
        self.assertNotIn("Signed in", out)
        self.assert_nothing_secret(out + err)

        after = os.stat(self.token_file)
        with open(self.token_file) as f:
            self.assertEqual(f.read(), "1.AQ-the-previous-refresh-token\n")
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns),
                         "a failed sign-in must leave the stored token untouched")
        self.assertIsNone(self.token.current_refresh_token())

    def test_client_credentials_profile_needs_no_sign_in(self):
        self.start_token()
        relay = self.relay_with_delegated_profile()
        code, out, err = run_oauth(relay.config_path, "login", "--profile", "default")
        self.assertEqual(code, 1, out + err)
        self.assertIn("profile default uses grant = client_credentials: no sign-in needed", err)
        self.assertEqual(out, "")
        self.assertEqual(self.token.counters(full=True).get("device_codes_issued", 0), 0)

        code, _, err = run_oauth(relay.config_path, "login", "--profile", "nobody")
        self.assertEqual(code, 1)
        self.assertIn("the profiles are: default, delegated", err)


class StatusTest(OAuthCliCase):
    def test_status_of_a_running_relay(self):
        self.start_token()
        upstream = self.start_upstream()
        relay = self.relay_with_delegated_profile([harness.scanner_account()],
                                                  upstream_port=upstream.port)
        # Before the relay runs: the configured profiles, and no status.
        code, out, err = run_oauth(relay.config_path, "status")
        self.assertEqual(code, 0, err)
        self.assertIn("no status from the relay: it does not answer on", out)
        self.assertIn("(is it running?)", out)
        self.assertIn("profile default\n", out)
        self.assertIn("not signed in: run `subrelay oauth login --profile delegated`", out)

        self.start_relay(relay)
        message = harness.make_message(harness.SCANNER_ID, "alice@example.org", "oauth status")
        harness.smtplib_send(relay, message, ["alice@example.org"])
        (_, meta), = upstream.wait_messages(1)
        self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX)

        # Asked of the running relay over its control socket.
        code, out, err = run_oauth(relay.config_path, "status")
        self.assertEqual(code, 0, err)
        self.assertNotIn("no status from the relay", out)
        self.assertIn("relay status as of", out)
        self.assertFalse(os.path.exists(os.path.join(relay.spool_dir, "oauth-status.json")),
                         "the relay publishes no status file")
        block = out.split("profile default\n", 1)[1].split("\nprofile ", 1)[0]
        self.assertRegex(block, r"token:\s+obtained \d+ (s|min) ago")
        self.assertRegex(block, r"expires:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+ min\)")
        requests = re.search(r"requests:\s+(\d+)", block)
        self.assertIsNotNone(requests, block)
        self.assertGreaterEqual(int(requests.group(1)), 1)
        self.assertRegex(block, r"last error:\s+none")
        self.assertIn("profile delegated\n", out)
        self.assertIn("not signed in: run `subrelay oauth login --profile delegated`", out)
        self.assertNotIn(harness.CLIENT_SECRET, out)
        for token in self.token.tokens():
            self.assertNotIn(token, out)

        code, out, err = run_oauth(relay.config_path, "status", "--json")
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        self.assertTrue(doc["status_present"])
        profiles = {p["profile"]: p for p in doc["profiles"]}
        self.assertEqual([p["profile"] for p in doc["profiles"]], ["default", "delegated"])
        default = profiles["default"]
        self.assertEqual(default["grant"], "client_credentials")
        self.assertEqual(default["token_url"], self.token.url)
        (source,) = default["sources"]
        self.assertGreaterEqual(source["fetches"], 1)
        self.assertGreater(source["obtained_at"], 0)
        self.assertGreater(source["expires_at"], source["obtained_at"])
        self.assertEqual(source["last_error"], "")
        self.assertFalse(source["expired"])
        self.assertFalse(profiles["delegated"]["signed_in"])


if __name__ == "__main__":
    raise SystemExit("run through run_tests.py")
