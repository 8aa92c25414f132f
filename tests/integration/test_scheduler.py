"""The delivery scheduler: when messages are tried again, how an unavailable
upstream mailbox is probed and recovered from, and that waiting for a rate
slot locks nothing. Each test accounts for every message it sent."""
import datetime
import json
import os
import re
import socket
import stat
import time

import harness
from harness import SCANNER_ID, UPSTREAM_MAILBOX


class SchedulerCase(harness.IntegrationCase):
    def stack(self, upstream_kwargs=None, start_upstream=True, upstream=None, queue=None):
        self.start_token()
        if start_upstream:
            self.start_upstream(**(upstream_kwargs or {}))
        else:
            self.make_upstream(**(upstream_kwargs or {}))
        extra = {"queue": dict({"max_lifetime_seconds": 3600, "delay_warning_seconds": 0}, **(queue or {}))}
        if upstream:
            extra["upstream"] = dict(upstream)
        relay = self.make_relay([harness.scanner_account()], extra_sections=extra)
        self.start_relay(relay)
        return relay

    def send(self, subject, rcpt="dest@example.org"):
        message = harness.make_message(SCANNER_ID, rcpt, subject)
        harness.smtplib_send(self.relay, message, [rcpt])
        return message

    def queue_cli(self, *args):
        return harness.run_cli(["queue"] + list(args), config=self.relay.config_path)

    def history_times(self, qid):
        """The times of the attempts recorded in `queue show`."""
        code, out, err = self.queue_cli("show", qid)
        self.assertEqual(code, 0, err)
        stamps = re.findall(r"(?m)^  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) attempt \d+:", out)
        return [datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ") for s in stamps]


class RetryTimerTest(SchedulerCase):
    def test_rescheduling_replaces_the_retry_time(self):
        """Every look at the queue (`queue retry` of another message)
        started a new retry timer for each waiting message, and the stale ones
        still fired: attempts came a second apart instead of retry_initial
        apart. The retry time of a message is one entry, replaced when it is
        rescheduled."""
        relay = self.stack(upstream_kwargs={"tempfail_rcpt": ["later@example.org"]},
                           upstream={"retry_initial_seconds": 3, "retry_max_seconds": 3})
        self.send("watched", rcpt="later@example.org")
        harness.wait_for(lambda: len(relay.queued_ids()) == 1, what="the first message queued")
        [watched] = relay.queued_ids()
        self.send("other", rcpt="later@example.org")
        harness.wait_for(lambda: len(relay.queued_ids()) == 2, what="the second message queued")
        [other] = [q for q in relay.queued_ids() if q != watched]
        # Look at the queue again and again for a while: each `queue retry`
        # makes the relay rescan the spool.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            code, _, err = self.queue_cli("retry", other)
            self.assertIn(code, (0, 1), err)
            time.sleep(0.3)
        harness.wait_for(lambda: len(self.history_times(watched)) >= 3, timeout=30,
                         what="three attempts of the watched message")
        times = self.history_times(watched)
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        # 3 s apart; the stamps have whole seconds, so 2 s is the least a
        # correct schedule can show. Extra attempts from stale timers came
        # 0-1 s apart.
        self.assertTrue(all(g >= 2 for g in gaps), "attempts too close together: %s" % gaps)
        self.assertEqual(len(relay.queued_ids()), 2)


class LaneRecoveryTest(SchedulerCase):
    def test_messages_go_as_soon_as_the_upstream_is_back_even_after_a_restart(self):
        """A connection that cannot be made is a failure of the upstream
        mailbox, not of its messages: they used to be deferred by
        retry_initial_seconds (300 s) each, also across a restart. Now the
        lane is probed with its own short backoff and every waiting message
        goes as soon as a probe connects."""
        relay = self.stack(start_upstream=False,
                           upstream={"retry_initial_seconds": 300, "retry_max_seconds": 3600})
        failed = b"upstream connection for " + UPSTREAM_MAILBOX.encode() + b" failed"
        sent = [self.send("outage %d" % i) for i in range(3)]
        harness.wait_for(lambda: failed in relay.log(), what="a failed connection")
        self.assertEqual(len(relay.queued_ids()), 3)
        # Restarted while the upstream is still down.
        self.assertEqual(relay.stop(), 0)
        before = relay.log().count(failed)
        self.start_relay(relay)  # tracked: stopped at the end of the test like the first
        harness.wait_for(lambda: relay.log().count(failed) > before, what="the restarted relay's try")
        self.assertEqual(relay.state_files(), [], "an unavailable upstream counts no attempt of any message")
        self.assertIn(b"is unavailable", relay.log())
        self.start_upstream(self.upstream)
        report = harness.wait_for(lambda: self.all_delivered(sent), timeout=30,
                                  what="all three within 30 s of the upstream's return")
        for mid, e in report.items():
            self.assertEqual(e["delivered"], 1, "%s delivered %d times" % (mid, e["delivered"]))
        self.assertIn(b"is available again", relay.log())

    def all_delivered(self, sent):
        report = harness.account_for(self.relay, self.upstream, sent)
        if all(e["delivered"] >= 1 for e in report.values()) and not self.relay.queued_ids():
            return report
        return None

    def test_a_message_expires_while_its_upstream_stays_down(self):
        """The lane's probes do not stop the messages' lifetimes: one that
        outlives queue.max_lifetime_seconds while its upstream is down leaves
        the queue (its bounce waits for the same upstream)."""
        relay = self.stack(start_upstream=False, queue={"max_lifetime_seconds": 3})
        self.send("expiring")
        harness.wait_for(lambda: len(relay.queued_ids()) == 1, what="the message queued")
        [original] = relay.queued_ids()
        harness.wait_for(lambda: b"bounce to <%s>" % SCANNER_ID.encode() in relay.log(), timeout=60,
                         what="the message to expire and bounce during the outage")
        self.assertIn(b"status=expired", relay.log())
        [bounce] = relay.queued_ids()
        self.assertNotEqual(bounce, original, "the original left the queue")
        head, _ = relay.queued_message(bounce)
        self.assertIn(SCANNER_ID, head, "the bounce goes to the sender")


class RateWaitTest(SchedulerCase):
    def test_messages_waiting_for_a_rate_slot_can_be_deleted_at_once(self):
        """A message waiting for its lane's per-minute budget used to hold its
        lock, so `queue delete --all --yes` answered "is being delivered
        right now". Rate shaping now decides before a message is taken."""
        relay = self.stack(upstream={"max_messages_per_minute": 2})
        for i in range(6):
            self.send("rate %d" % i)
        self.upstream.wait_messages(2)
        harness.wait_for(lambda: len(relay.queued_ids()) == 4, what="two delivered, four waiting")
        code, out, err = self.queue_cli("delete", "--all", "--yes")
        self.assertEqual(code, 0, out + err)
        self.assertNotIn("being delivered", out + err)
        self.assertEqual(relay.queued_ids(), [])
        self.assertEqual(len(self.upstream.messages()), 2)


class ControlSocketTest(SchedulerCase):
    def test_queue_commands_go_through_the_running_relay(self):
        """While the relay runs it alone writes queue state: `subrelay queue`
        asks it over SPOOL/control.sock (owner only, one JSON object per line),
        and it changes the files under the message's lock."""
        relay = self.stack(upstream_kwargs={"tempfail_rcpt": ["later@example.org"]},
                           upstream={"retry_initial_seconds": 300, "retry_max_seconds": 600})
        self.send("held by the relay", rcpt="later@example.org")
        harness.wait_for(lambda: relay.state_files(), what="the first attempt recorded")
        [qid] = relay.queued_ids()
        sock = os.path.join(relay.spool_dir, "control.sock")
        self.assertTrue(stat.S_ISSOCK(os.stat(sock).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)

        code, out, err = self.queue_cli("hold", qid)
        self.assertEqual((code, out), (0, qid + ": held\n"), err)
        self.assertIn(("queue hold %s: %s: held" % (qid, qid)).encode(), relay.log(), "the relay made the change")
        code, out, _ = self.queue_cli("list", "--json")
        [row] = json.loads(out)
        self.assertEqual((row["held"], row["next"]), (True, "held"))

        # The protocol itself: a line in, a line out.
        # (The test's spool path is longer than a socket address may be: reach
        # the socket through a descriptor of its directory, as the CLI does.)
        dir_fd = os.open(relay.spool_dir, os.O_PATH | os.O_DIRECTORY)
        self.addCleanup(os.close, dir_fd)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(15)
            s.connect("/proc/self/fd/%d/control.sock" % dir_fd)
            f = s.makefile("rwb")
            f.write(b'{"verb": "status"}\n{"verb": "no-such-verb"}\nnot json\n')
            f.flush()
            status = json.loads(f.readline())
            self.assertTrue(status["ok"])
            self.assertEqual(status["messages"][qid]["status"], "waiting")
            self.assertEqual(json.loads(f.readline()), {"ok": False, "error": "unknown verb 'no-such-verb'"})
            self.assertFalse(json.loads(f.readline())["ok"])

        code, out, err = self.queue_cli("release", qid)
        self.assertEqual((code, out), (0, qid + ": released\n"), err)
        harness.wait_for(lambda: self.upstream.counters()["rcpt_tempfailed"] >= 2, what="released means tried now")
        self.assertEqual(relay.stop(), 0)
        self.assertFalse(os.path.exists(sock), "the socket goes with the relay")
        # No relay: the command works on the files, under the lock.
        code, out, err = self.queue_cli("hold", qid)
        self.assertEqual((code, out), (0, qid + ": held\n"), err)
