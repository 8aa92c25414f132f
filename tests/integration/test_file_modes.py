"""What the relay leaves on disk for other local users: nothing. Its spool
is private whatever the umask it was started with (with umask 000 the spool
directories were 0777, and a local user's planted spool file was delivered
as another account), a spool directory others may write to stops the start,
and check-config and start-up name every secret file others may read."""
import os
import re
import stat

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class FileModesTest(harness.IntegrationCase):
    def make(self, **kwargs):
        self.start_token()
        self.make_upstream()  # never started: what is queued stays queued
        return self.make_relay([harness.scanner_account()], **kwargs)

    def test_the_spool_is_private_whatever_the_umask(self):
        relay = self.make()
        old = os.umask(0)
        try:
            self.start_relay(relay)
        finally:
            os.umask(old)
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        d.send_raw(harness.make_message(SCANNER_ID, "dest@example.org", "private", body_lines=["text"]))
        d.send_raw(b".\r\n")
        d.expect("250 2.0.0 *")
        d.close()
        [qid] = relay.queued_ids()
        spool = relay.spool_dir
        for sub in ("", "tmp", "queue", "state"):
            self.assertEqual(mode_of(os.path.join(spool, sub)), 0o700, "spool/%s" % sub)
        self.assertEqual(mode_of(os.path.join(spool, "queue", qid)), 0o600)
        self.assertEqual(mode_of(os.path.join(spool, "control.sock")), 0o600)
        for name in os.listdir(spool):
            self.assertEqual(mode_of(os.path.join(spool, name)) & 0o077, 0, "spool/%s" % name)

    def test_a_spool_others_may_write_to_stops_the_start(self):
        relay = self.make()
        queue = os.path.join(relay.spool_dir, "queue")
        os.makedirs(queue)
        os.chmod(queue, 0o777)
        self.start_relay_expecting_exit(relay)
        self.assertIn("%s is writable by other users (mode 0777)" % queue, relay.log().decode())

    def start_relay_expecting_exit(self, relay):
        relay.start(wait=False)
        self._track(relay)
        self.assertNotEqual(relay.process.wait(), 0, "the relay started on a spool others may write to")

    def test_secret_files_others_may_read_are_named(self):
        relay = self.make()
        os.chmod(relay.policy_path, 0o644)
        key = os.path.join(relay.workdir, "relay-key.pem")
        os.chmod(key, 0o604)
        code, out, err = harness.run_cli(["check-config"], config=relay.config_path)
        self.assertEqual((code, out.strip()), (0, "ok"), out + err)
        path = re.escape(relay.config_path)
        self.assertRegex(err, r"(?m)^%s: policy\.file: warning: %s can be read by other users \(mode 0644\): "
                              r"chmod o-rwx " % (path, re.escape(relay.policy_path)))
        self.assertRegex(err, r"(?m)^%s: tls\.key_file: warning: %s can be read by other users \(mode 0604\)"
                              % (path, re.escape(key)))
        self.start_relay(relay)
        log = relay.log().decode()
        self.assertIn("policy.file: %s can be read by other users (mode 0644)" % relay.policy_path, log)
        self.assertIn("tls.key_file: %s can be read by other users (mode 0604)" % key, log)

    def test_private_files_get_no_warning(self):
        relay = self.make()
        code, out, err = harness.run_cli(["check-config"], config=relay.config_path)
        self.assertEqual((code, out.strip()), (0, "ok"), out + err)
        self.assertNotIn("other users", err)
