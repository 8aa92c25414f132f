"""Large messages: DATA goes to the spool's file as it arrives, and a
delivery reads a message from the spool in pieces as it sends it, so what
the relay holds in memory does not grow with the size of the messages it
receives (it used to hold about 1.2 times each message until its end) or
sends (each upstream connection held its message and a dot-stuffed copy)."""
import hashlib
import os
import threading

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD

SESSIONS = 8
MESSAGE_MIB = 30

# How far the relay's peak RSS (VmHWM) may rise above its RSS before the
# messages while 8 sessions, all past AUTH and DATA, each send a 30 MiB
# message at once (240 MiB).
# Measured with the ASan+UBSan Debug build of `make test`: 8 to 9 MiB with
# streaming; 190 to 250 MiB when each session held its message until its
# end. (The release build: 50 sessions x 30 MiB, bench/large, 14 MiB.)
GROWTH_LIMIT_MIB = 96

# The same while DELIVERED messages of DELIVERED_MIB go out over the three
# upstream connections the tests' relay has. Each connection held its
# message and a dot-stuffed copy before the delivery read messages in
# pieces: about 3 x 2 x 20 MiB.
DELIVERED = 4
DELIVERED_MIB = 20
DELIVERY_GROWTH_LIMIT_MIB = 48

from harness import status_kib


def reset_peak(pid):
    """VmHWM starts again from the current RSS (Linux 4.0 and later)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        pass   # then the peak includes the sessions' start (TLS, AUTH): a little more


def one_mib_of_lines(seed):
    """(the message's bytes, the same bytes dot-stuffed as sent after DATA):
    1 MiB of 78-character lines, every 64th starting with a dot."""
    lines = []
    for i in range((1 << 20) // 80):
        text = ("%s line %06d " % (seed, i)).ljust(78, "abcdefghij"[i % 10])
        lines.append(("." + text[1:] if i % 64 == 0 else text).encode() + b"\r\n")
    content = b"".join(lines)
    wire = b"".join(b"." + line if line.startswith(b".") else line for line in lines)
    return content, wire


class large_message:
    """A message of `mib` MiB of lines under a unique Subject: its header
    (`head`), the repeated MiB as sent after DATA (`wire`), and the SHA-256
    and length of the message the relay must keep and pass on."""

    def __init__(self, name, mib):
        self.subject = "%s %s" % (name, os.urandom(4).hex())
        self.head = harness.make_message(SCANNER_ID, "dest@example.org", self.subject, body_lines=[])
        content, self.wire = one_mib_of_lines(name.replace(" ", ""))
        self.mib = mib
        digest = hashlib.sha256(self.head)
        for _ in range(mib):
            digest.update(content)
        self.sha256 = digest.hexdigest()
        self.length = len(self.head) + mib * len(content)

    def send(self, d):
        """Its content and the final dot, in a dialogue after 354."""
        d.send_raw(self.head)
        for _ in range(self.mib):
            d.sock.sendall(self.wire)   # not send_raw: the transcript keeps no 30 MiB
        d.send_raw(b".\r\n")


class LargeMessageTest(harness.IntegrationCase):
    def start_measured_relay(self, relay):
        with harness.small_asan_quarantine():
            self.start_relay(relay)

    def test_parallel_large_messages_keep_the_relay_small(self):
        self.start_token()
        # Never started: delivery cannot connect, so it never reads a message
        # back while this test measures the receiving side.
        self.make_upstream()
        relay = self.make_relay([harness.scanner_account()])
        self.start_measured_relay(relay)
        pid = relay.process.pid

        expected = {}
        dialogues = []
        for n in range(SESSIONS):
            message = large_message("large %d" % n, MESSAGE_MIB)
            expected[message.subject] = (message.sha256, message.length)
            d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
            dialogues.append((d, message))

        # Every session is in DATA: from here the peak is the messages'.
        at_start = status_kib(pid, "VmRSS")
        reset_peak(pid)
        replies = [None] * SESSIONS
        errors = []

        def send(n):
            d, message = dialogues[n]
            try:
                message.send(d)
                replies[n] = d.read_reply()[-1]
                d.send("QUIT")
                d.expect("221 *")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("session %d: %r" % (n, e))
            finally:
                d.close()

        threads = [threading.Thread(target=send, args=(n,)) for n in range(SESSIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        self.assertEqual(errors, [])
        for reply in replies:
            self.assertRegex(reply or "", r"^250 2\.0\.0 Ok: queued as ")
        peak = status_kib(pid, "VmHWM")
        print("  relay: VmRSS %.1f MiB before the messages, VmHWM %.1f MiB with %d x %d MiB"
              % (at_start / 1024, peak / 1024, SESSIONS, MESSAGE_MIB))

        # Every message is queued whole, byte for byte, with its Received: header.
        ids = relay.queued_ids()
        self.assertEqual(len(ids), SESSIONS)
        found = {}
        for qid in ids:
            _, data = relay.queued_message(qid)
            fields, message = harness.split_leading_received(data)
            self.assertEqual(len(fields), 1)
            self.assertIn(("id " + qid).encode(), fields[0])
            found[harness.header_value(message, "Subject")] = (hashlib.sha256(message).hexdigest(), len(message))
        self.assertEqual(found, expected)
        self.assertEqual(relay.spool_tmp_files(), [])

        self.assertLess(peak - at_start, GROWTH_LIMIT_MIB * 1024,
                        "the relay's peak RSS grew with the messages it received: from %.1f to %.1f MiB "
                        "for %d sessions of %d MiB each" % (at_start / 1024, peak / 1024, SESSIONS, MESSAGE_MIB))

    def test_large_messages_leave_in_pieces_byte_for_byte(self):
        self.start_token()
        upstream = self.make_upstream()  # started once the messages are queued
        relay = self.make_relay([harness.scanner_account()])
        self.start_measured_relay(relay)
        pid = relay.process.pid
        expected = {}
        for n in range(DELIVERED):
            message = large_message("outgoing %d" % n, DELIVERED_MIB)
            expected[message.subject] = message.sha256
            d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
            message.send(d)
            d.expect("250 2.0.0 *")
            d.close()
        self.assertEqual(len(relay.queued_ids()), DELIVERED)

        # The upstream comes up: the lane's next probe finds it and the three
        # upstream connections carry the messages out.
        at_start = status_kib(pid, "VmRSS")
        reset_peak(pid)
        self.start_upstream(upstream)
        messages = upstream.wait_messages(DELIVERED, timeout=300)
        harness.wait_for(lambda: relay.queued_ids() == [], what="an empty queue")
        peak = status_kib(pid, "VmHWM")
        print("  relay: VmRSS %.1f MiB before delivery, VmHWM %.1f MiB delivering %d x %d MiB"
              % (at_start / 1024, peak / 1024, DELIVERED, DELIVERED_MIB))
        found = {}
        for data, _ in messages:
            _, message = harness.split_leading_received(data)
            found[harness.header_value(message, "Subject")] = hashlib.sha256(message).hexdigest()
        self.assertEqual(found, expected)
        self.assertLess(peak - at_start, DELIVERY_GROWTH_LIMIT_MIB * 1024,
                        "the relay's peak RSS grew with the messages it sent: from %.1f to %.1f MiB "
                        "for %d messages of %d MiB each" % (at_start / 1024, peak / 1024, DELIVERED, DELIVERED_MIB))

    def test_a_message_over_the_size_limit_leaves_nothing(self):
        self.start_token()
        self.make_upstream()
        relay = self.make_relay([harness.scanner_account()],
                                extra_sections={"server": {"max_message_size": 2 << 20}})
        self.start_relay(relay)
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        _, wire = one_mib_of_lines("big")
        d.send_raw(harness.make_message(SCANNER_ID, "dest@example.org", "too big", body_lines=[]))
        for _ in range(4):
            d.sock.sendall(wire)
        d.send_raw(b".\r\n")
        d.expect("552 5.3.4 *")
        self.assertEqual(relay.spool_tmp_files(), [])
        self.assertEqual(relay.queued_ids(), [])
        # The session goes on.
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("250 *")
        d.close()
