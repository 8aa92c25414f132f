"""`subrelay queue import DIR`: a node that is gone leaves its spool; it is
moved to another node and imported there. Node A accepts messages it cannot
deliver (its upstream refuses some recipients, or cannot be reached), then
dies (SIGKILL, or stops); node B imports A's spool, with B running (it does
the import and delivers at once) and with B stopped (the command writes B's
spool, B delivers when it starts). Every message reaches B's upstream exactly
once per recipient, with the bytes A received, and A's spool is left empty
but for what was never acknowledged."""
import os
import time

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD, UPSTREAM_MAILBOX

QUEUE = {"max_lifetime_seconds": 3600, "delay_warning_seconds": 0}
OTHER_MAILBOX = "other@contoso.com"


class ImportCase(harness.IntegrationCase):
    def upstream_at(self, name, port=None, **kwargs):
        u = harness.FakeUpstream(os.path.join(self.workdir, name), self.pki,
                                 os.path.join(self.workdir, "token", "tokens.txt"), port=port, **kwargs)
        self.start_upstream(u)
        return u

    def node(self, name, upstream_port, accounts=None):
        r = harness.Relay(os.path.join(self.workdir, name), self.pki, accounts or [harness.scanner_account()],
                          upstream_port=upstream_port, token_url=self.token.url,
                          extra_sections={"queue": dict(QUEUE)})
        self.log_files.append(r.log_path)
        self.relay = r   # the one tearDown names
        return r

    def send(self, relay, subject, rcpts):
        message = harness.make_message(SCANNER_ID, rcpts[0], subject)
        harness.smtplib_send(relay, message, rcpts)
        return message

    def queue_cli(self, relay, *args):
        return harness.run_cli(["queue"] + list(args), config=relay.config_path)

    def spool_bytes(self, relay):
        """{Message-ID: the message bytes as the spool holds them (A's Received: header first)}."""
        out = {}
        for qid in relay.queued_ids():
            _, body = relay.queued_message(qid)
            out[harness.message_id(harness.split_leading_received(body)[1])] = body
        return out

    def copies(self, upstreams):
        """{Message-ID: [(eml, envelope)]} over every upstream, notices apart."""
        out = {}
        for u in upstreams:
            for eml, meta in u.messages():
                self.assertFalse(harness.is_dsn(eml, meta), "no notice was expected:\n%r" % eml[:2000])
                mid = harness.message_id(harness.split_leading_received(eml)[1])
                out.setdefault(mid, []).append((eml, meta))
        return out

    def wait_recipients(self, upstreams, expected, timeout=harness.DEFAULT_TIMEOUT):
        """Waits until each message reached the upstreams for exactly the
        recipients `expected` ({Message-ID: [recipients]}), then checks that
        nothing more comes."""
        def arrived():
            got = self.copies(upstreams)
            return all(sorted(r for _, meta in got.get(mid, []) for r in meta["rcpt_tos"]) == sorted(rcpts)
                       for mid, rcpts in expected.items()) and got
        harness.wait_for(arrived, timeout=timeout, interval=0.2, what="every recipient delivered")
        time.sleep(3)   # longer than retry_max_seconds: a duplicate would come now
        got = self.copies(upstreams)
        for mid, rcpts in expected.items():
            delivered = sorted(r for _, meta in got.get(mid, []) for r in meta["rcpt_tos"])
            self.assertEqual(delivered, sorted(rcpts), "%s: each recipient exactly once" % mid)
        self.assertEqual(set(got), set(expected), "nothing else was delivered")
        return got

    def import_lines(self, out):
        return [l for l in out.splitlines() if l.startswith(("imported ", "skipped "))]


class ImportIntoARunningNodeTest(ImportCase):
    def test_a_killed_node_s_messages_go_once_through_the_running_node(self):
        self.start_token()
        # Node A's upstream refuses dest@ and later@ for now: nothing for them
        # leaves A; ok@ is taken (and recorded as delivered).
        up_a = self.upstream_at("upstream-a", tempfail_rcpt=["dest@example.org", "later@example.org"])
        a = self.node("node-a", up_a.port)
        self.start_relay(a)
        plain = [self.send(a, "plain %d" % i, ["dest@example.org"]) for i in range(3)]
        split = self.send(a, "split", ["ok@example.org", "later@example.org"])
        held = self.send(a, "held", ["dest@example.org"])
        ids = {}

        def tried():
            ids.update({harness.message_id(harness.split_leading_received(a.queued_message(q)[1])[1]): q
                        for q in a.queued_ids()})
            return len(ids) == 5 and len(a.state_files()) == 5
        harness.wait_for(tried, what="every message tried once on node A")
        split_id = ids[harness.message_id(split)]
        harness.wait_for(lambda: "delivered:\n  ok@example.org\n" in self.queue_cli(a, "show", split_id)[1],
                         what="ok@ recorded as delivered on node A")
        held_id = ids[harness.message_id(held)]
        code, out, err = self.queue_cli(a, "hold", held_id)
        self.assertEqual(code, 0, err)
        harness.wait_for(lambda: any(r["id"] == held_id and r["held"] for r in a.queue_list() or []),
                         what="the message held on node A")
        # A message under way when A dies: never acknowledged, so not imported.
        d = a.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        d.send_raw(harness.make_message(SCANNER_ID, "dest@example.org", "half sent", body_lines=[]) +
                   b"".join(b"line %06d of a message that never ends\r\n" % i for i in range(20000)))
        time.sleep(1)
        a.kill()
        d.close()
        spooled = self.spool_bytes(a)
        self.assertEqual(len(spooled), 5)
        self.assertEqual(len(a.spool_tmp_files()), 1, "the half-sent message is in A's tmp/")

        # Node B, running, with an upstream that takes everything.
        up_b = self.upstream_at("upstream-b")
        b = self.node("node-b", up_b.port)
        self.start_relay(b)
        code, out, err = self.queue_cli(b, "import", a.spool_dir)
        self.assertEqual(code, 0, out + err)
        self.assertEqual(sorted(self.import_lines(out)), sorted("imported " + q for q in ids.values()))
        self.assertIn("-- 5 imported, 0 already imported before, 0 skipped (left in %s/queue); "
                      "1 never-acknowledged file(s) in %s/tmp not imported" % (a.spool_dir, a.spool_dir), out)
        self.assertEqual(err, "")
        self.assertEqual(a.queued_ids(), [], "A's queue is empty")
        self.assertEqual(a.state_files(), [])
        self.assertEqual(len(a.spool_tmp_files()), 1, "what was never acknowledged stays where it was")
        self.assertIn(b"queue import id=", b.log())

        # Delivered at once, each recipient once (ok@ went from A before it died); the held one waits.
        expected = {harness.message_id(m): ["dest@example.org"] for m in plain}
        expected[harness.message_id(split)] = ["later@example.org"]
        got = self.wait_recipients([up_b], expected)
        self.assertEqual(b.queued_ids(), [held_id], "the held message stays held on B")
        listed = {row["id"]: row for row in b.queue_list()}
        self.assertTrue(listed[held_id]["held"])
        self.assertGreaterEqual(listed[held_id]["attempts"], 1, "its attempts came along")
        code, out, err = self.queue_cli(b, "release", held_id)
        self.assertEqual(code, 0, err)
        expected[harness.message_id(held)] = ["dest@example.org"]
        got = self.wait_recipients([up_b], expected)
        self.assertEqual(b.queued_ids(), [])
        # ok@ once, at A's upstream, before A died.
        at_a = self.copies([up_a])
        self.assertEqual([meta["rcpt_tos"] for _, meta in at_a[harness.message_id(split)]], [["ok@example.org"]])

        # The bytes A received, unchanged: A's Received: header, then what the device sent.
        for message in plain + [split, held]:
            mid = harness.message_id(message)
            [(eml, meta)] = got[mid]
            self.assertEqual(eml, spooled[mid], "%s changed on its way through B" % mid)
            self.assert_relayed(eml, message, SCANNER_ID, meta["rcpt_tos"])
            self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX)

        # A second import finds nothing to do; the half-sent message never went anywhere.
        code, out, err = self.queue_cli(b, "import", a.spool_dir)
        self.assertEqual(code, 0, err)
        self.assertIn("-- 0 imported, 0 already imported before, 0 skipped", out)
        for copies in self.copies([up_a, up_b]).values():
            for eml, _ in copies:
                self.assertNotIn(b"half sent", eml)


class ImportIntoAStoppedNodeTest(ImportCase):
    def test_a_stopped_node_s_spool_is_written_directly_and_delivered_at_the_start(self):
        self.start_token()
        up_b = self.upstream_at("upstream-b")
        # Node A cannot reach its upstream at all: its messages wait, untried.
        a = self.node("node-a", harness.free_port())
        self.start_relay(a)
        sent = [self.send(a, "waiting %d" % i, ["dest@example.org", "second@example.org"]) for i in range(4)]
        harness.wait_for(lambda: b"is unavailable" in a.log(), what="node A's upstream marked unavailable")
        held_id = sorted(a.queued_ids())[0]
        code, out, err = self.queue_cli(a, "hold", held_id)
        self.assertEqual(code, 0, err)

        b = self.node("node-b", up_b.port)
        # While A runs, its spool is its own.
        code, out, err = self.queue_cli(b, "import", a.spool_dir)
        self.assertEqual(code, 1)
        self.assertIn("spool %s is in use by process %d" % (a.spool_dir, a.process.pid), err)
        self.assertEqual(len(a.queued_ids()), 4)

        self.assertEqual(a.stop(), 0)
        spooled = self.spool_bytes(a)
        a_ids = a.queued_ids()
        code, out, err = self.queue_cli(b, "import", a.spool_dir)   # B is not running
        self.assertEqual(code, 0, out + err)
        self.assertEqual(self.import_lines(out), ["imported " + q for q in a_ids])
        self.assertIn("-- 4 imported, 0 already imported before, 0 skipped", out)
        self.assertEqual(a.queued_ids(), [])
        self.assertEqual(b.queued_ids(), a_ids, "the same queue ids")

        self.start_relay(b)
        expected = {harness.message_id(m): ["dest@example.org", "second@example.org"] for m in sent}
        held_mid = harness.message_id(harness.split_leading_received(b.queued_message(held_id)[1])[1])
        del expected[held_mid]
        got = self.wait_recipients([up_b], expected)
        self.assertEqual(b.queued_ids(), [held_id], "held on A, held on B")
        code, out, err = self.queue_cli(b, "release", held_id)
        self.assertEqual(code, 0, err)
        expected[held_mid] = ["dest@example.org", "second@example.org"]
        got = self.wait_recipients([up_b], expected)
        for message in sent:
            mid = harness.message_id(message)
            [(eml, meta)] = got[mid]
            self.assertEqual(eml, spooled[mid])
            self.assert_relayed(eml, message, SCANNER_ID, ["dest@example.org", "second@example.org"])
        self.assertEqual(b.queued_ids(), [])


class UnknownUpstreamMailboxTest(ImportCase):
    def test_a_mailbox_b_does_not_know_is_imported_kept_and_delivered_once_it_may(self):
        self.start_token()
        # On node A the account sends through another upstream mailbox; B's
        # policy does not name it, and B's upstream refuses it for now.
        a = self.node("node-a", harness.free_port(),
                      accounts=[harness.scanner_account(upstream_mailbox=OTHER_MAILBOX)])
        self.start_relay(a)
        message = self.send(a, "through another mailbox", ["dest@example.org"])
        harness.wait_for(lambda: len(a.queued_ids()) == 1, what="queued on node A")
        [qid] = a.queued_ids()
        a.kill()

        up_b = self.upstream_at("upstream-b")
        b = self.node("node-b", up_b.port)
        self.start_relay(b)
        code, out, err = self.queue_cli(b, "import", a.spool_dir)
        self.assertEqual(code, 0, out + err)
        self.assertEqual(self.import_lines(out), ["imported " + qid])
        self.assertIn("warning: %s: upstream mailbox %s is not configured on this node" % (qid, OTHER_MAILBOX), err)
        self.assertIn(b"queue import id=" + qid.encode(), b.log())

        # B tries, the upstream refuses the mailbox: the message stays queued, and B says why.
        harness.wait_for(lambda: b"upstream mailbox " + OTHER_MAILBOX.encode() + b" is not configured on this node"
                         in b.log() and b"is unavailable" in b.log(),
                         what="B's log line on the mailbox it is not set up for")
        time.sleep(2)
        self.assertEqual(b.queued_ids(), [qid], "not dropped")
        self.assertEqual(up_b.messages(), [])
        [row] = b.queue_list()
        self.assertEqual(row["upstream_mailbox"], OTHER_MAILBOX)
        self.assertIn("is not configured on this node", row["hint"])
        self.assertIn(OTHER_MAILBOX, up_b.auth_log())

        # The upstream takes that mailbox now: one retry delivers it, once.
        up_b.stop()
        up_b2 = self.upstream_at("upstream-b2", port=up_b.port, mailboxes=(UPSTREAM_MAILBOX, OTHER_MAILBOX))
        code, out, err = self.queue_cli(b, "retry", "--all")
        self.assertEqual(code, 0, err)
        got = self.wait_recipients([up_b2], {harness.message_id(message): ["dest@example.org"]})
        [(eml, meta)] = got[harness.message_id(message)]
        self.assertEqual(meta["mailbox"], OTHER_MAILBOX)
        self.assert_relayed(eml, message, SCANNER_ID, ["dest@example.org"])
        self.assertEqual(b.queued_ids(), [])
