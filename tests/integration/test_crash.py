"""The real binary killed with SIGKILL at the worst moments, then started
again: what was acknowledged with 250 is delivered (at most one duplicate),
what was not is neither queued nor delivered, and the spool's tmp/ holds
no partial file. Every message sent is accounted for."""
import os
import shutil
import subprocess
import time

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD
from test_delivery_faults import FaultCase


class CrashCase(FaultCase):
    def crash_relay(self):
        """SIGKILL, as a power cut or the OOM killer would."""
        self.relay.kill()
        self.assertFalse(self.relay.process.running())


class KillDuringDataTest(CrashCase):
    def test_kill_during_data_leaves_nothing(self):
        relay = self.stack()
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        # A large part of a message, no final dot.
        head = harness.make_message(SCANNER_ID, "dest@example.org", "half sent", body_lines=[])
        d.send_raw(head + b"".join(b"line %08d of a message that never ends\r\n" % i for i in range(40000)))
        time.sleep(1)   # let the relay read what was sent
        self.crash_relay()
        d.close()
        self.assertEqual(relay.queued_ids(), [], "an unfinished message must not be queued")

        self.start_relay(relay)
        self.assertEqual(relay.spool_tmp_files(), [], "spool/tmp should be cleaned at start-up")
        self.assertEqual(relay.queued_ids(), [])
        time.sleep(2)
        self.assertEqual(self.upstream.messages(), [], "an unfinished message must not be delivered")
        self.assertEqual(relay.queued_ids(), [])
        # The relay still works.
        sent = self.new_messages(1, "after crash")
        self.send(sent[0], ["dest@example.org"])
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)


class KillAfterAcceptTest(CrashCase):
    def test_kill_right_after_250_while_upstream_stalls(self):
        relay = self.stack(upstream_kwargs={"stall": True})
        sent = self.new_messages(1, "acknowledged")
        self.send(sent[0], ["dest@example.org"])   # 250 received
        # The relay is connected to the upstream, waiting for its greeting.
        harness.wait_for(lambda: self.upstream.counters().get("stalled_connections", 0) >= 1,
                         timeout=10, what="the relay's connection to the stalling upstream")
        self.crash_relay()
        self.assertEqual(len(relay.queued_ids()), 1, "a message acknowledged with 250 must be in the spool")

        # The upstream works again (same port), then the relay starts.
        self.upstream.stop()
        working = harness.FakeUpstream(os.path.join(self.workdir, "upstream-working"), self.pki,
                                       self.upstream.tokens_file, port=self.upstream.port)
        self.start_upstream(working)
        self.upstream = working
        self.start_relay(relay)
        self.assertIn(b"from before", relay.log())
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        self.assert_stays_delivered_once(sent)

    def test_kill_right_after_250_while_upstream_down(self):
        relay = self.stack(start_upstream=False)
        sent = self.new_messages(3, "acknowledged down")
        for m in sent:
            self.send(m, ["dest@example.org"])
        self.crash_relay()
        self.assertEqual(len(relay.queued_ids()), 3)
        self.start_upstream(self.upstream)
        self.start_relay(relay)
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        self.assert_stays_delivered_once(sent)


class KillDuringMultiRecipientDeliveryTest(CrashCase):
    RCPTS = ["one@example.org", "two@example.org", "three@example.org"]

    def kill_while_slow(self, upstream_kwargs):
        relay = self.stack(upstream_kwargs=dict(upstream_kwargs, slow_seconds=8, slow_count=1))
        message = harness.make_message(SCANNER_ID, "one@example.org", "three recipients")
        self.send(message, self.RCPTS)
        harness.wait_for(lambda: self.upstream.counters().get("slow_replies", 0) >= 1,
                         what="the upstream's slow reply to begin")
        self.crash_relay()
        self.assertEqual(len(relay.queued_ids()), 1, "the message must still be queued after the crash")
        self.start_relay(relay)
        mid = harness.message_id(message)

        def all_recipients():
            e = self.ledger([message])[mid]
            return e if set(self.RCPTS) <= set(e["rcpts"]) and not relay.queued_ids() else None
        harness.wait_for(all_recipients, timeout=40, what="every recipient delivered after the restart")
        time.sleep(3)   # longer than retry_max_seconds
        report = self.ledger([message])
        dups = self.assert_accounted(report)
        e = report[mid]
        for r in self.RCPTS:
            self.assertGreaterEqual(e["rcpts"].count(r), 1, "%s was never delivered" % r)
        per_rcpt = {r: e["rcpts"].count(r) for r in self.RCPTS}
        print("  copies at the upstream: %d; per recipient: %r" % (e["delivered"], per_rcpt))
        self.assertLessEqual(dups, 1, "more than one duplicate after one crash: %r" % per_rcpt)
        self.assertEqual(relay.queued_ids(), [])
        return dups

    def test_kill_while_upstream_is_slow_on_third_rcpt(self):
        # The upstream never saw DATA: no duplicate is possible.
        dups = self.kill_while_slow({"slow_rcpt": ["three@example.org"]})
        self.assertEqual(dups, 0)

    def test_kill_while_upstream_is_slow_to_confirm_data(self):
        # The upstream stored the message but the 250 never reached the relay:
        # it must send it again (one duplicate is the price of not losing it).
        # (Counted and printed; kill_while_slow asserts at most one.)
        self.kill_while_slow({"slow_data": True})


class FullSpoolTest(CrashCase):
    def mount_small_tmpfs(self):
        mount_dir = os.path.join(self.workdir, "small-fs")
        os.makedirs(mount_dir)
        if shutil.which("mount") is None:
            self.skipTest("no mount command: cannot make a small file system for the spool")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount_dir],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if result.returncode != 0:
            self.skipTest("cannot mount a 2 MiB tmpfs for the full-spool test (needs root/CAP_SYS_ADMIN): %s"
                          % result.stdout.decode(errors="replace").strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mount_dir], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, timeout=30)
        return mount_dir

    def test_full_spool_gives_4xx_and_no_partial_file(self):
        mount_dir = self.mount_small_tmpfs()
        spool = os.path.join(mount_dir, "spool")
        relay = self.stack(extra_sections={"spool": {"dir": spool, "min_free_bytes": 0}})
        self.assertEqual(relay.spool_dir, spool)
        # Fill the file system but for 128 KiB.
        st = os.statvfs(mount_dir)
        free = st.f_bavail * st.f_frsize
        filler = os.path.join(mount_dir, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - 128 * 1024))
        message = harness.make_message(SCANNER_ID, "dest@example.org", "too big for the disk",
                                       body_lines=["x" * 998] * 1024)   # about 1 MiB
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        d.send_raw(harness.dot_stuff(message))
        reply = d.read_reply()[-1]
        self.assertRegex(reply, r"^45[12] 4\.3\.\d ", "a message the spool cannot hold must get a 4xx, never 250")
        d.send("QUIT")
        d.close()
        self.assertEqual(relay.spool_tmp_files(), [], "spool/tmp must not keep a partial file")
        self.assertEqual(relay.queued_ids(), [])
        self.assertEqual(self.upstream.messages(), [])

        # Space again: mail flows.
        os.unlink(filler)
        sent = self.new_messages(1, "space again")
        self.send(sent[0], ["dest@example.org"])
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        self.assertEqual(relay.stop(), 0)
