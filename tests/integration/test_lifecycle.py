"""Restarts, the spool, and shutdown."""
import signal

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD


class RestartTest(harness.IntegrationCase):
    def test_spooled_messages_survive_restart(self):
        self.start_token()
        upstream = self.make_upstream()          # port chosen, not started: upstream down
        relay = self.make_relay([harness.scanner_account()])
        self.start_relay(relay)
        sent = [harness.make_message(SCANNER_ID, "a%d@example.org" % i, "restart %d" % i)
                for i in range(2)]
        for i, message in enumerate(sent):
            harness.smtplib_send(relay, message, ["a%d@example.org" % i])  # raises unless 250
        self.assertEqual(relay.stop(), 0, "subrelay should exit 0 on SIGTERM")

        self.start_upstream(upstream)
        self.start_relay(relay)
        delivered = upstream.wait_messages(2)
        by_body = {harness.split_leading_received(eml)[1]: meta for eml, meta in delivered}
        self.assertEqual(set(by_body), set(sent))
        for i, message in enumerate(sent):
            self.assertEqual(by_body[message]["rcpt_tos"], ["a%d@example.org" % i])
            self.assertEqual(by_body[message]["mail_from"], SCANNER_ID)

        # Once delivered, never again: not by retries, not after another restart.
        self.assertEqual(relay.stop(), 0)
        self.start_relay(relay)
        harness.time.sleep(3)  # longer than retry_max_seconds
        self.assertEqual(len(upstream.messages()), 2, "a message was delivered twice")
        self.assertEqual(relay.stop(), 0)


class SingleInstanceTest(harness.IntegrationCase):
    def test_a_second_relay_on_the_same_spool_refuses_to_start(self):
        """Two relays on one spool delivered the queue twice, and the second
        emptied spool/tmp under the first one's in-flight messages."""
        first = self.full_stack([harness.scanner_account()])
        in_flight = harness.os.path.join(first.spool_dir, "tmp", "in-flight")
        with open(in_flight, "w") as f:
            f.write("a message being received")
        second = harness.Relay(harness.os.path.join(self.workdir, "second"), self.pki,
                               [harness.scanner_account()], upstream_port=self.upstream.port,
                               token_url=self.token.url, extra_sections={"spool": {"dir": first.spool_dir}})
        self.log_files.append(second.log_path)
        second.start(wait=False)
        self.assertEqual(second.process.wait(), 1)
        self.assertIn(("spool %s is in use by process %d" % (first.spool_dir, first.process.pid)).encode(),
                      second.log())
        self.assertTrue(harness.os.path.exists(in_flight), "the first relay's spool/tmp was emptied")
        # The first relay goes on working.
        message = harness.make_message(SCANNER_ID, "a@example.org", "still the only one")
        harness.smtplib_send(first, message, ["a@example.org"])
        self.assertEqual(len(self.upstream.wait_messages(1)), 1)


class ShutdownTest(harness.IntegrationCase):
    def test_sigterm_while_the_upstream_is_silent_exits_cleanly(self):
        """A connection stuck waiting for a silent upstream outlives the
        delivery's grace period; its coroutine used to be destroyed after the
        delivery and touched freed memory (ASan: heap-use-after-free)."""
        relay = self.full_stack([harness.scanner_account()], upstream_kwargs={"stall": True})
        message = harness.make_message(SCANNER_ID, "a@example.org", "into the silence")
        harness.smtplib_send(relay, message, ["a@example.org"])
        harness.wait_for(lambda: self.upstream.counters().get("stalled_connections", 0) >= 1,
                         what="the relay's connection to the silent upstream")
        self.assertEqual(relay.stop(timeout=120), 0, harness.tail(relay.log_path, 30))
        self.assertNotIn(b"AddressSanitizer", relay.log())
        self.assertTrue(relay.queued_ids(), "the message stays queued for the next start")

    def test_a_second_sigterm_during_shutdown_stops_at_once(self):
        """The first SIGTERM gives a connection in the middle of its work
        time to finish; a second one ends the wait (the message is on disk
        and stays queued). It used to be ignored."""
        relay = self.full_stack([harness.scanner_account()], upstream_kwargs={"stall": True})
        message = harness.make_message(SCANNER_ID, "a@example.org", "stop now")
        harness.smtplib_send(relay, message, ["a@example.org"])
        harness.wait_for(lambda: self.upstream.counters().get("stalled_connections", 0) >= 1,
                         what="the relay's connection to the silent upstream")
        relay.process.signal(signal.SIGTERM)
        harness.wait_for(lambda: b"shutting down" in relay.log(), what="the shutdown to begin")
        relay.process.signal(signal.SIGTERM)
        # The first shutdown alone waits 30 s for the silent upstream.
        self.assertEqual(relay.process.wait(timeout=15), 0, harness.tail(relay.log_path, 30))
        self.assertIn(b"stopping now", relay.log())
        self.assertNotIn(b"AddressSanitizer", relay.log())
        self.assertTrue(relay.queued_ids(), "the message stays queued for the next start")

    def test_sigterm_sends_421_and_exits_zero(self):
        relay = self.full_stack([harness.scanner_account()])
        # A fresh session, one inside TLS in the middle of a transaction, one on implicit TLS.
        plain = relay.dialogue()
        plain.expect("220 *")
        plain.send("EHLO scanner.contoso.test")
        plain.expect("250 *")

        busy = relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        busy.send("MAIL FROM:<%s>" % SCANNER_ID)
        busy.expect("250 *")
        busy.send("RCPT TO:<a@example.org>")
        busy.expect("250 *")

        implicit = relay.dialogue(implicit_tls=True)
        implicit.expect("220 *")

        relay.process.signal(signal.SIGTERM)
        for name, d in (("plain", plain), ("starttls", busy), ("implicit", implicit)):
            with self.subTest(session=name):
                reply = d.read_reply()
                self.assertRegex(reply[-1], r"^421 4\.3\.2 ", "session %s" % name)
                self.assertTrue(d.closed_by_peer(), "the relay should close %s after 421" % name)
                d.close()
        self.assertEqual(relay.process.wait(timeout=30), 0, "exit status after SIGTERM")
        self.assertFalse(harness.port_accepts(relay.submission_port))
        self.assertFalse(harness.port_accepts(relay.submissions_port))
        self.assertEqual(self.upstream.messages(), [], "the unfinished transaction must not be relayed")

    def test_sigint_exits_zero(self):
        relay = self.full_stack([harness.scanner_account()])
        relay.process.signal(signal.SIGINT)
        self.assertEqual(relay.process.wait(timeout=30), 0)


class IdleTimeoutTest(harness.IntegrationCase):
    def test_idle_sessions_get_421_then_close(self):
        relay = self.full_stack([harness.scanner_account()],
                                extra_sections={"server": {"idle_timeout_seconds": 2}})
        plain = relay.dialogue()
        plain.expect("220 *")
        plain.send("EHLO scanner.contoso.test")
        plain.expect("250 *")
        inside_tls = relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        implicit = relay.dialogue(implicit_tls=True)
        implicit.expect("220 *")
        # Nobody says anything more: each session is told why it ends.
        for name, d in (("plain", plain), ("starttls", inside_tls), ("implicit", implicit)):
            with self.subTest(session=name):
                reply = d.read_reply()
                self.assertRegex(reply[-1], r"^421 4\.4\.2 .*timeout", "session %s" % name)
                self.assertTrue(d.closed_by_peer(), "the relay should close %s after 421" % name)
                d.close()
        # The relay itself goes on serving.
        again = relay.dialogue()
        again.expect("220 *")
        again.close()
