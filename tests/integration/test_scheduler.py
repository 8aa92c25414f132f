"""The delivery scheduler: when messages are tried again, how an unavailable
upstream mailbox is probed and recovered from, and that waiting for a rate
slot locks nothing. Each test accounts for every message it sent."""
import datetime
import re
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
        sent = [self.send("outage %d" % i) for i in range(3)]
        harness.wait_for(lambda: b"is unavailable" in relay.log(), what="the lane marked unavailable")
        self.assertIn(b"upstream connection for " + UPSTREAM_MAILBOX.encode() + b" failed", relay.log())
        self.assertEqual(len(relay.queued_ids()), 3)
        self.assertEqual(relay.state_files(), [], "an unavailable upstream counts no attempt of any message")
        # Restarted while the upstream is still down.
        self.assertEqual(relay.stop(), 0)
        relay.start()
        harness.wait_for(lambda: relay.log().count(b"is unavailable") >= 2, what="the restarted relay's probe")
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
        harness.wait_for(lambda: b"status=expired" in relay.log(), timeout=60,
                         what="the message to expire during the outage")
        harness.wait_for(lambda: len(relay.queued_ids()) == 1, what="only the bounce left")
        [bounce] = relay.queued_ids()
        head, _ = relay.queued_message(bounce)
        self.assertIn(SCANNER_ID, head, "the bounce goes to the sender")
        self.assertIn(b"bounce to <%s>" % SCANNER_ID.encode(), relay.log())


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
