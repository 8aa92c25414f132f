"""[server] user: without systemd's User=, the relay binds its ports and
reads its TLS keys as root, then runs as that user for good; its spool must
be that user's, and a spool that is not is refused at start with the
command that mends it. Run as root, the test uses the system's `nobody`."""
import json
import os
import pwd
import signal

import harness
from harness import SCANNER_ID

USER = "nobody"


def status_ids(pid):
    """(real, effective, saved, fs) uids and gids of a process."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                ids[key] = [int(v) for v in value.split()]
    return ids["Uid"], ids["Gid"]


class RunAsUserTest(harness.IntegrationCase):
    def prepare(self, relay, owner):
        """What the package's installation does for the relay's user: the
        directories on the way can be passed, the files the relay reads
        after the switch are the user's, and so is the spool."""
        path = relay.workdir
        while path != os.path.dirname(harness.run_root()):
            os.chmod(path, os.stat(path).st_mode | 0o011)
            path = os.path.dirname(path)
        spool = relay.spool_dir
        os.makedirs(spool, exist_ok=True)
        os.chown(spool, owner.pw_uid, owner.pw_gid)
        for name in (relay.policy_path, os.path.join(relay.workdir, "client-secret")):
            os.chown(name, owner.pw_uid, owner.pw_gid)

    def test_the_relay_runs_as_the_user_and_delivers(self):
        if os.geteuid() != 0:
            relay = self.make_relay([harness.scanner_account()], kind="directory",
                                    extra_sections={"server": {"user": USER}})
            relay.start(wait=False)
            self.assertEqual(relay.process.wait(), 1)
            self.assertIn(b"only root can switch to another user", relay.log())
            return
        owner = pwd.getpwnam(USER)
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], extra_sections={"server": {"user": USER}})
        self.prepare(relay, owner)
        self.start_relay(relay)
        uids, gids = status_ids(relay.process.pid)
        self.assertEqual(uids, [owner.pw_uid] * 4, "real, effective, saved and file-system uid")
        self.assertEqual(gids, [owner.pw_gid] * 4)
        self.assertIn(("running as user %s (uid %d, gid %d)" % (USER, owner.pw_uid, owner.pw_gid)).encode(),
                      relay.log())

        message = harness.make_message(SCANNER_ID, "a@example.org", "as nobody")
        harness.smtplib_send(relay, message, ["a@example.org"])
        self.assertEqual(len(self.upstream.wait_messages(1)), 1)
        # What it made in the spool is the user's.
        for entry in os.scandir(relay.spool_dir):
            self.assertEqual(os.stat(entry.path).st_uid, owner.pw_uid, entry.path)
        # A reload reads the policy as the user.
        offset = len(relay.log())
        os.kill(relay.process.pid, signal.SIGHUP)
        harness.wait_for(lambda: b"policy reloaded (SIGHUP)" in relay.log()[offset:], what="the policy reload")

    def test_a_spool_of_another_user_is_refused_with_the_remedy(self):
        if os.geteuid() != 0:
            return self.test_the_relay_runs_as_the_user_and_delivers()   # not root: the refusal is what to check
        relay = self.make_relay([harness.scanner_account()], kind="directory",
                                extra_sections={"server": {"user": USER}})
        os.makedirs(relay.spool_dir, exist_ok=True)   # root's
        relay.start(wait=False)
        self.assertEqual(relay.process.wait(), 1)
        self.assertIn(("belongs to uid 0, not to server.user \"%s\"" % USER).encode(), relay.log())
        self.assertIn(("chown -R %s: %s" % (USER, relay.spool_dir)).encode(), relay.log())

    def test_an_unknown_user_is_named(self):
        relay = self.make_relay([harness.scanner_account()], kind="directory",
                                extra_sections={"server": {"user": "no-such-user-here"}})
        relay.start(wait=False)
        self.assertEqual(relay.process.wait(), 1)
        self.assertIn(b"server.user: no user \"no-such-user-here\" on this system", relay.log())


class CommandsAsTheSpoolOwnerTest(harness.IntegrationCase):
    """`subrelay queue` (and `oauth login`) run by root on a spool that is
    another user's act as that user: what they write stays readable by the
    relay. Root's `queue hold` used to leave a state file root's with mode
    0600, which the relay, running as the spool's owner, could not read."""

    def test_root_writes_queue_state_as_the_spool_owner(self):
        if os.geteuid() != 0:
            self.skipTest("needs root, to switch to the spool's owner")
        owner = pwd.getpwnam(USER)
        self.start_token()
        # No upstream: the message stays queued.
        relay = harness.Relay(os.path.join(self.workdir, "relay"), self.pki, [harness.scanner_account()],
                              upstream_port=harness.free_port(), token_url=self.token.url,
                              extra_sections={"server": {"user": USER}})
        self.log_files.append(relay.log_path)
        self.relay = relay
        RunAsUserTest.prepare(self, relay, owner)
        self.start_relay(relay)
        harness.smtplib_send(relay, harness.make_message(SCANNER_ID, "a@example.org", "held by root"),
                             ["a@example.org"])
        [qid] = relay.queued_ids()
        self.assertEqual(relay.stop(), 0)

        code, out, err = harness.run_cli(["queue", "hold", qid], config=relay.config_path)
        self.assertEqual(code, 0, out + err)
        state = os.path.join(relay.spool_dir, "state", qid)
        self.assertEqual(os.stat(state).st_uid, owner.pw_uid, "the state file is the relay user's")

        offset = len(relay.log())
        self.start_relay(relay)  # tracked, so that the test's end stops it
        code, out, err = harness.run_cli(["queue", "list", "--json"], config=relay.config_path)
        self.assertEqual(code, 0, err)
        [entry] = json.loads(out)
        self.assertTrue(entry["held"], entry)
        self.assertNotIn(b"cannot read", relay.log()[offset:])
