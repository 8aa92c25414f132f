"""The account quotas' counters survive a restart: an account limited to N
messages a minute, or to N recipients a day, got a fresh quota each time
the relay started again (a crash loop reset it every few seconds). The
relay keeps them in SPOOL/limits.state; a damaged file is named in a
warning and the relay starts with empty counters."""
import os
import re

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD

REPLY_RATE = "421 4.4.2 Message submission rate for this client has exceeded the configured limit"
REPLY_DAILY_PREFIX = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException;"


def state_file(relay):
    return os.path.join(relay.spool_dir, "limits.state")


def counted(relay, identity=SCANNER_ID):
    """(messages, recipients) the state file holds for an account; None
    while there is no file. (It is replaced by a rename: never read half
    written.)"""
    try:
        with open(state_file(relay)) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    messages = recipients = 0
    account = None
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "account":
            account = rest
        elif account == identity and key == "message":
            messages += 1
        elif account == identity and key == "recipients":
            recipients += int(rest.split()[1])
    return messages, recipients


class CountersCase(harness.IntegrationCase):
    def start(self, **limits):
        relay = self.make_relay([harness.scanner_account(settings=limits)], kind="directory")
        return self.start_relay(relay)

    def send(self, count=1, rcpts=("dest@example.org",)):
        messages = [harness.make_message(SCANNER_ID, rcpts[0], "counted %d" % i) for i in range(count)]
        harness.smtplib_send(self.relay, messages, list(rcpts))

    def wait_counted(self, messages, recipients):
        """Until the state file holds the account's counts (written off the
        sessions' path, about a second after they change)."""
        harness.wait_for(lambda: counted(self.relay) == (messages, recipients),
                         what="%s to hold %d message(s) and %d recipient(s) (it holds %r)"
                              % (state_file(self.relay), messages, recipients, counted(self.relay)))

    def crash_and_restart(self):
        """SIGKILL, as the OOM killer or a crash loop would, and a start on the same spool."""
        self.relay.kill()
        self.assertFalse(self.relay.process.running())
        self.start_relay(self.relay)
        start = self.relay.log().split(b"==== start %d ====" % self.relay.starts)[-1]
        self.assertIn(b"limits: counters of 1 account(s) restored from ", start)

    def mail_from(self):
        """The reply to MAIL in a new authenticated session, and the session."""
        d = self.relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        return d.read_reply()[-1], d


class MessageRateTest(CountersCase):
    def test_the_minute_counts_across_a_crash(self):
        # (The restart must come within the minute of the first message.)
        self.start(max_messages_per_minute=3)
        self.send(3)
        self.wait_counted(3, 3)
        self.crash_and_restart()
        reply, d = self.mail_from()
        self.assertEqual(reply, REPLY_RATE, "a restart gave the account a fresh minute")
        self.assertTrue(d.closed_by_peer(), "the server should close the connection after 421")
        d.close()
        self.assertEqual(len(self.relay.directory_messages()), 3)

    def test_a_clean_stop_saves_what_was_counted(self):
        self.start(max_messages_per_minute=2)
        self.send(2)
        # SIGTERM at once: whatever the timer has saved by then, the stop saves the rest.
        self.assertEqual(self.relay.stop(), 0)
        self.assertEqual(counted(self.relay), (2, 2))
        self.start_relay(self.relay)
        reply, d = self.mail_from()
        self.assertEqual(reply, REPLY_RATE)
        d.close()


class DailyRecipientsTest(CountersCase):
    def test_the_day_counts_across_a_crash(self):
        self.start(max_recipients_per_day=3)
        self.send(1, rcpts=("a@example.org", "b@example.org"))
        self.send(1, rcpts=("c@example.org",))
        self.wait_counted(2, 3)
        self.crash_and_restart()
        reply, d = self.mail_from()
        self.assertTrue(reply.startswith("250 "), reply)   # no message rate limit
        d.send("RCPT TO:<d@example.org>")
        reply = d.read_reply()[-1]
        self.assertTrue(reply.startswith(REPLY_DAILY_PREFIX), "a restart gave the account a fresh day: " + reply)
        d.send("QUIT")
        d.close()
        self.assertEqual(sorted(r for _, meta, _ in self.relay.directory_messages() for r in meta["recipients"]),
                         ["a@example.org", "b@example.org", "c@example.org"])


class DamagedStateFileTest(CountersCase):
    def test_a_damaged_file_is_named_and_the_relay_starts(self):
        relay = self.make_relay([harness.scanner_account(settings={"max_messages_per_minute": 1})], kind="directory")
        os.makedirs(relay.spool_dir, mode=0o700)
        with open(state_file(relay), "w") as f:
            f.write("subrelay-limits 1\naccount %s\nmessage soon\nend\n" % SCANNER_ID)
        self.start_relay(relay)
        log = relay.log().decode(errors="replace")
        self.assertRegex(log, r"(?m) warning limits: \S*limits\.state: line 3: \"soon\" is not a time "
                              r"\(milliseconds since 1970\); the message and recipient counters start empty$")
        self.assertNotIn("restored", log)
        # The relay works, with counters that start empty (the limit of one
        # message is not used up by the damaged file) ...
        self.send(1)
        harness.wait_for(lambda: len(relay.directory_messages()) == 1, what="the message in the directory upstream")
        # ... and the next snapshot replaces the damaged file.
        self.wait_counted(1, 1)
        reply, d = self.mail_from()
        self.assertEqual(reply, REPLY_RATE)
        d.close()
        self.assertEqual(relay.stop(), 0)
        self.assertEqual(oct(os.stat(state_file(relay)).st_mode & 0o777), oct(0o600))
