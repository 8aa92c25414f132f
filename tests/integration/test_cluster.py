"""Two relay nodes that share one upstream mailbox's limits through Redis
([cluster]), as Exchange Online counts them: never more than 3 connections
and 30 messages a minute for the mailbox in total, whichever node sends.
The test upstream enforces both the way Exchange does (432 4.3.2
Concurrent connections limit exceeded, and a throttling reply past 30 a
minute) and counts every time it had to.

Redis (Debian's redis-server, on a Unix socket) is stopped in the middle
of the run: each node then keeps its share (1 connection, 15 messages a
minute) after waiting out a minute, nothing is lost or sent twice, and
/readyz and /metrics say the limits are not shared. When Redis is back,
the nodes share again.

Its own ctest label, redis (`ctest -L redis`); it waits out the windows, so
it takes about two minutes."""
import json
import os
import shutil
import socket
import tempfile
import threading

import harness
from harness import SCANNER_ID
from test_auth_abuse import PLAINTEXT_AUTH, auth_from

MESSAGES = 45
PER_MINUTE = 30
CONNECTIONS = 3


class RedisServer:
    """Debian's redis-server on a Unix socket in a directory of its own."""

    def __init__(self, case):
        self.case = case
        # A short path: a Unix socket's name is at most 107 bytes.
        self.dir = tempfile.mkdtemp(prefix="subrelay-redis-")
        case.addCleanup(shutil.rmtree, self.dir, True)
        self.socket = os.path.join(self.dir, "redis.sock")
        self.log = os.path.join(case.workdir, "redis.log")
        self.process = None

    def start(self):
        binary = harness.require_tool("redis-server")
        self.process = harness.Process([binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                                        "--save", "", "--appendonly", "no", "--dir", self.dir], self.log)
        self.case._processes.append(self.process)
        harness.wait_for(lambda: self.ping() or not self.process.running(), what="redis-server")
        assert self.process.running(), harness.tail(self.log)

    def ping(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        self.process.stop()

    def url(self):
        return "unix://" + self.socket


def readiness(relay):
    status, _, body = relay.admin_request("/readyz")
    return status, json.loads(body)


def shared_gauge(relay):
    parsed, _ = relay.metrics()
    return parsed.get(("subrelay_cluster_limits_shared", ()))


def subject_of(eml):
    for line in eml.split(b"\r\n"):
        if line.lower().startswith(b"subject: "):
            return line[9:].decode()
    return None


class ClusterTest(harness.IntegrationCase):
    def node(self, name, redis):
        relay = harness.Relay(os.path.join(self.workdir, name), self.pki, [harness.scanner_account()],
                              upstream_port=self.upstream.port, token_url=self.token.url, admin=True,
                              extra_sections={
                                  "cluster": {"redis": redis.url(), "nodes": 2},
                                  "upstream": {"max_connections_per_mailbox": CONNECTIONS,
                                               "max_messages_per_minute": PER_MINUTE},
                              })
        self.log_files.append(relay.log_path)
        self.start_relay(relay)
        return relay

    def test_two_nodes_share_the_mailbox_limits_and_keep_their_share_without_redis(self):
        self.start_token()
        self.start_upstream(max_auth_connections=CONNECTIONS, max_messages_per_minute=PER_MINUTE)
        redis = RedisServer(self)
        redis.start()
        a = self.node("node-a", redis)
        b = self.node("node-b", redis)
        for relay in (a, b):
            status, body = readiness(relay)
            self.assertEqual(status, 200, body)
            self.assertEqual(body["cluster"]["limits"], "shared")
            self.assertEqual(shared_gauge(relay), 1)

        # 45 messages for the one upstream mailbox, through both nodes at once.
        subjects = ["cluster %02d" % i for i in range(MESSAGES)]
        batches = {a: [], b: []}
        for i, subject in enumerate(subjects):
            batches[a if i % 2 == 0 else b].append(
                harness.make_message(SCANNER_ID, "alice@example.org", subject))
        errors = []

        def submit(relay, messages):
            try:
                harness.smtplib_send(relay, messages, ["alice@example.org"])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("%s: %r" % (relay.workdir, e))

        threads = [threading.Thread(target=submit, args=(r, m)) for r, m in batches.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

        # The first minute's 30 go; the rest wait for the shared minute.
        self.upstream.wait_messages(PER_MINUTE, timeout=60)
        self.assertEqual(len(self.upstream.messages()), PER_MINUTE)

        # Redis goes away: each node keeps its share, after a minute's wait.
        redis.stop()
        for relay in (a, b):
            harness.wait_for(lambda r=relay: readiness(r)[1]["cluster"]["limits"] == "fallback", timeout=120,
                             what="the node noticing that Redis is gone")
            status, body = readiness(relay)
            self.assertEqual(status, 200, "a node on its share is still ready: %s" % body)
            self.assertEqual(shared_gauge(relay), 0)
        self.upstream.wait_messages(MESSAGES, timeout=240)

        delivered = self.upstream.messages()
        got = sorted(subject_of(eml) for eml, _ in delivered)
        self.assertEqual(got, subjects, "every message once, none lost, none twice")
        counters = self.upstream.counters()
        self.assertEqual(counters["concurrency_refused"], 0, counters)
        self.assertEqual(counters["rate_limited"], 0, counters)
        self.assertLessEqual(counters["max_authenticated_per_mailbox"], CONNECTIONS, counters)
        for relay in (a, b):
            log = relay.log().decode("utf-8", "replace")
            self.assertEqual(log.count("is unreachable"), 1, "Redis's loss is logged once")
            self.assertIn("delivery: limits not shared", log)
            self.assertNotIn("concurrent connections limit", log.lower())

        # Redis is back: the nodes share again, and deliver.
        redis.start()
        for relay in (a, b):
            harness.wait_for(lambda r=relay: readiness(r)[1]["cluster"]["limits"] == "shared", timeout=30,
                             what="the node finding Redis again")
            self.assertEqual(shared_gauge(relay), 1)
        harness.smtplib_send(a, harness.make_message(SCANNER_ID, "alice@example.org", "after redis"),
                             ["alice@example.org"])
        self.upstream.wait_messages(MESSAGES + 1, timeout=120)
        harness.wait_for(lambda: b"limits shared again" in a.log(), what="the node's line about sharing again")


    def test_an_accounts_quotas_hold_across_the_nodes(self):
        """An account allowed 3 messages a minute and 3 recipients a day gets
        them once in all, whichever node its devices use; with Redis gone,
        each node allows its share (1 and 1)."""
        redis = RedisServer(self)
        redis.start()
        rate = harness.Account("rate@contoso.com", "Rate-Passw0rd!1", disabled=False,
                               settings={"max_messages_per_minute": 3})
        day = harness.Account("day@contoso.com", "Day-Passw0rd!2", disabled=False,
                              settings={"max_recipients_per_day": 3})
        other = harness.Account("other@contoso.com", "Other-Passw0rd!3", disabled=False,
                                settings={"max_messages_per_minute": 2})
        nodes = []
        for name in ("node-a", "node-b"):
            relay = harness.Relay(os.path.join(self.workdir, name), self.pki, [rate, day, other], kind="directory",
                                  extra_sections={"cluster": {"redis": redis.url(), "nodes": 2}})
            self.log_files.append(relay.log_path)
            nodes.append(self.start_relay(relay))
        a, b = nodes

        def send(relay, account, rcpts):
            """The replies to MAIL and each RCPT, and to DATA if it came to that."""
            import smtplib
            s = smtplib.SMTP("127.0.0.1", relay.submission_port, timeout=30)
            try:
                s.ehlo("device.contoso.test")
                s.starttls(context=relay.client_tls_context())
                s.ehlo("device.contoso.test")
                s.login(account.identity, account.password)
                replies = [s.mail(account.identity)[0]]
                if replies[0] != 250:
                    return replies
                for r in rcpts:
                    replies.append(s.rcpt(r)[0])
                if 250 in replies[1:]:
                    replies.append(s.data(harness.make_message(account.identity, rcpts[0], "quota"))[0])
                return replies
            finally:
                try:
                    s.quit()
                except Exception:  # noqa: BLE001 - a 421 closed it
                    s.close()

        # Messages a minute: 3 in all, over both nodes.
        self.assertEqual(send(a, rate, ["x@example.org"]), [250, 250, 250])
        self.assertEqual(send(b, rate, ["x@example.org"]), [250, 250, 250])
        self.assertEqual(send(a, rate, ["x@example.org"]), [250, 250, 250])
        self.assertEqual(send(b, rate, ["x@example.org"]), [421])
        self.assertEqual(send(a, rate, ["x@example.org"]), [421])
        # Recipients a day: 3 in all; a refused RCPT leaves the others' places.
        self.assertEqual(send(a, day, ["r1@example.org", "r2@example.org"]), [250, 250, 250, 250])
        self.assertEqual(send(b, day, ["r3@example.org", "r4@example.org"]), [250, 250, 554, 250])
        self.assertEqual(send(a, day, ["r5@example.org"]), [250, 554])
        self.assertIn(b"over its messages a minute on all nodes", b.log() + a.log())

        # Without Redis each node keeps its share: `other` may send 2 a
        # minute, so 1 on each node. (The first message after Redis went finds
        # it gone and counts on the node.)
        redis.stop()
        self.assertEqual(send(a, other, ["y@example.org"])[:2], [250, 250])
        self.assertEqual(send(a, other, ["y@example.org"]), [421], "node a's share is 1 of 2")
        self.assertEqual(send(b, other, ["y@example.org"])[:2], [250, 250])
        self.assertEqual(send(b, other, ["y@example.org"]), [421], "node b's share is 1 of 2")


    def test_smart_lockout_counts_and_locks_on_every_node(self):
        """Guesses spread over both nodes lock the account on both; an address
        the account logged in from through one node is familiar to the other."""
        redis = RedisServer(self)
        redis.start()
        nodes = []
        for name in ("node-a", "node-b"):
            relay = harness.Relay(os.path.join(self.workdir, name), self.pki, [harness.scanner_account()],
                                  kind="directory", device_networks=PLAINTEXT_AUTH,
                                  extra_sections={"cluster": {"redis": redis.url(), "nodes": 2},
                                                  "auth": {"lockout_threshold": 3}})
            self.log_files.append(relay.log_path)
            nodes.append(self.start_relay(relay))
        a, b = nodes
        good, wrong = (SCANNER_ID, harness.SCANNER_PASSWORD), (SCANNER_ID, "wrong-password")
        # The scanner at 127.0.0.10 logs in through node b only.
        self.assertEqual(auth_from("127.0.0.10", b.submission_port, [good])[0][:3], "235")
        # Three guesses from 127.0.0.9, two on a and one on b: no node saw three.
        refused = [auth_from("127.0.0.9", a.submission_port, [wrong])[0] for _ in range(2)]
        refused.append(auth_from("127.0.0.9", b.submission_port, [wrong])[0])
        self.assertEqual([r[:3] for r in refused], ["535"] * 3, refused)
        # Locked on both: the right password from unfamiliar addresses gets the wrong password's reply.
        self.assertEqual(auth_from("127.0.0.9", a.submission_port, [good]), [refused[0]])
        self.assertEqual(auth_from("127.0.0.11", b.submission_port, [good]), [refused[0]])
        # The scanner's address is familiar on a too, though it never logged in there.
        self.assertEqual(auth_from("127.0.0.10", a.submission_port, [good])[0][:3], "235")
        logs = a.log().decode() + b.log().decode()
        self.assertIn("account %s: locked on every node for 60 s after 3 failed logins" % SCANNER_ID, logs)
        self.assertIn("client=127.0.0.11 mechanism=PLAIN (account locked out)", b.log().decode())


if __name__ == "__main__":
    import unittest
    unittest.main()
