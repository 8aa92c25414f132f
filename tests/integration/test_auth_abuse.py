"""AUTH with credentials no account can have. A LOGIN user name with a NUL
or over 255 octets made libsasl2's LOGIN plugin leak the password buffer
(about 1 KB an attempt, with no failure delay on that path): such names are
refused before they reach it, with 501 5.5.2 after the usual delay, and
counted as failed attempts."""
import asyncio
import base64
import os
import subprocess
import time

import harness
from harness import SCANNER_ID

ATTEMPTS = 5000
PARALLEL = 100
from harness import status_kib


async def malformed_logins(port, attempts):
    """Sessions from 127.0.0.2 (AUTH without TLS there), three malformed
    AUTH LOGIN user names each; returns every AUTH reply line."""
    replies = []
    user = base64.b64encode(b"scanner\0" + b"x" * 300).decode()
    gate = asyncio.Semaphore(PARALLEL)

    async def one(n):
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
            try:
                await reader.readline()
                writer.write(b"EHLO abuse.test\r\n")
                while (await reader.readline())[3:4] == b"-":
                    pass
                for _ in range(n):
                    writer.write(b"AUTH LOGIN\r\n")
                    line = await reader.readline()
                    if not line.startswith(b"334"):
                        replies.append(line.decode().strip())
                        return
                    writer.write(user.encode() + b"\r\n")
                    replies.append((await reader.readline()).decode().strip())
            finally:
                writer.close()

    per_session = 3
    await asyncio.gather(*(one(min(per_session, attempts - i)) for i in range(0, attempts, per_session)))
    return replies


class MalformedAuthTest(harness.IntegrationCase):
    def test_malformed_login_names_are_refused_and_leak_nothing(self):
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()],
                                device_networks=[{"networks": ["127.0.0.2"], "auth_without_tls": True}])
        with harness.small_asan_quarantine():
            self.start_relay(relay)
        pid = relay.process.pid

        # Warm up (pools, TLS-free sessions, allocator arenas), then measure.
        warm = asyncio.run(malformed_logins(relay.submission_port, 600))
        self.assertTrue(warm)
        before = status_kib(pid, "VmRSS")
        started = time.monotonic()
        replies = asyncio.run(malformed_logins(relay.submission_port, ATTEMPTS))
        after = status_kib(pid, "VmRSS")
        print("  relay: VmRSS %.1f MiB before %d malformed AUTH LOGIN attempts, %.1f MiB after (%.0f s)"
              % (before / 1024, ATTEMPTS, after / 1024, time.monotonic() - started))

        counts = {}
        for r in replies:
            counts[r[:9]] = counts.get(r[:9], 0) + 1
        # Every attempt: 501 5.5.2, the third of a session ending it with 421.
        self.assertEqual(set(counts) - {"501 5.5.2", "421 4.7.0"}, set(), counts)
        self.assertGreaterEqual(counts.get("501 5.5.2", 0), ATTEMPTS * 2 // 3, counts)
        log = relay.log().decode()
        self.assertTrue("(malformed: a user name over 255 octets)" in log, "no malformed-name line in the log")
        self.assertFalse("x" * 300 in log, "the attempted name was logged whole")
        if not harness.under_thread_sanitizer():
            self.assertLess(after - before, 1024, "the relay grew by %d KiB over %d malformed attempts"
                            % (after - before, ATTEMPTS))


FILTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "fail2ban", "subrelay.conf")
PLAINTEXT_AUTH = [{"networks": ["127.0.0.9", "127.0.0.10", "127.0.0.11"], "auth_without_tls": True}]


def auth_from(source_ip, port, attempts):
    """One session from source_ip (AUTH without TLS is allowed there): AUTH
    PLAIN with each (identity, password) in turn; the reply lines, or the
    greeting alone when the connection is refused."""
    s = harness.connect_from(source_ip, port)
    f = s.makefile("rb")
    try:
        greeting = f.readline()
        if not greeting.startswith(b"220"):
            return [greeting.decode().strip()]
        s.sendall(b"EHLO abuse.test\r\n")
        while f.readline()[3:4] == b"-":
            pass
        replies = []
        for identity, password in attempts:
            s.sendall(b"AUTH PLAIN " + harness.plain_credentials(identity, password).encode() + b"\r\n")
            line = f.readline().decode().strip()
            replies.append(line)
            if not line or line.startswith("421"):
                break
        return replies
    finally:
        s.close()


class PlaintextAuthCase(harness.IntegrationCase):
    def start(self, **auth):
        """The full stack with AUTH allowed without TLS from PLAINTEXT_AUTH
        and these [auth] settings."""
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], device_networks=PLAINTEXT_AUTH,
                                extra_sections={"auth": auth})
        return self.start_relay(relay)


class FailedLoginTest(PlaintextAuthCase):
    def test_an_address_with_too_many_failed_logins_is_refused_at_connect(self):
        relay = self.start(max_failures_per_client=4)
        port = relay.submission_port
        wrong = (SCANNER_ID, "wrong-password")
        self.assertEqual([r[:3] for r in auth_from("127.0.0.9", port, [wrong] * 3)], ["535", "535", "535"])
        self.assertEqual(auth_from("127.0.0.9", port, [wrong])[0][:3], "535")   # the fourth
        self.assertEqual(auth_from("127.0.0.9", port, [(SCANNER_ID, harness.SCANNER_PASSWORD)]),
                         ["421 4.7.0 Too many failed logins from your host, try again later"])
        # Another address is not affected, and a good password works there.
        self.assertEqual(auth_from("127.0.0.10", port, [(SCANNER_ID, harness.SCANNER_PASSWORD)])[0][:3], "235")
        log = relay.log().decode()
        self.assertIn("client 127.0.0.9: 4 failed logins within 10 minutes; refused at connect", log)
        self.assertIn("client 127.0.0.9 refused: blocked after auth.max_failures_per_client failed logins", log)

    def test_the_fail2ban_filter_matches_the_relays_own_lines(self):
        relay = self.start(max_failures_per_client=None)   # the relay's default (10)
        port = relay.submission_port
        auth_from("127.0.0.9", port, [(SCANNER_ID, "wrong-1"), ("nobody@contoso.com", "wrong-2")])
        auth_from("127.0.0.10", port, [("x" * 300, "pw")])   # malformed: refused before libsasl2
        auth_from("127.0.0.11", port, [(SCANNER_ID, harness.SCANNER_PASSWORD)])
        log = relay.log().decode()
        self.assertIn("auth failed: account=%s client=127.0.0.9 mechanism=PLAIN (wrong password" % SCANNER_ID, log)
        self.assertIn("auth failed: account=nobody@contoso.com client=127.0.0.9", log)
        self.assertNotIn("wrong-1", log, "a password reached the log")
        result = subprocess.run(["fail2ban-regex", "-o", "ip", relay.log_path, FILTER], capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout.split(), ["127.0.0.9", "127.0.0.9", "127.0.0.10"], result.stdout)


class AccountLockoutTest(PlaintextAuthCase):
    """Guesses at one account from many addresses: after auth.lockout_threshold
    failures from addresses the account never logged in from, it is locked
    for those addresses (the same 535 as a wrong password, without checking
    it), while an address it has logged in from still logs in (Smart
    Lockout's familiar-location rule)."""

    def test_guesses_lock_the_account_for_unfamiliar_addresses_only(self):
        relay = self.start(lockout_threshold=3)
        port = relay.submission_port
        good, wrong = (SCANNER_ID, harness.SCANNER_PASSWORD), (SCANNER_ID, "wrong-password")
        # The scanner logs in from 127.0.0.10 every day.
        self.assertEqual(auth_from("127.0.0.10", port, [good])[0][:3], "235")
        # Someone guesses from 127.0.0.9, from three sessions.
        refused = [auth_from("127.0.0.9", port, [wrong])[0] for _ in range(3)]
        self.assertEqual([r[:3] for r in refused], ["535"] * 3, refused)
        # Now the right password from an unfamiliar address gets exactly the
        # reply of a wrong one: nothing tells a guesser it was right.
        self.assertEqual(auth_from("127.0.0.9", port, [good]), [refused[0]])
        self.assertEqual(auth_from("127.0.0.11", port, [good]), [refused[0]])
        # The scanner's own address still logs in, and sends.
        self.assertEqual(auth_from("127.0.0.10", port, [good])[0][:3], "235")
        log = relay.log().decode()
        self.assertIn("account %s: locked for 60 s after 3 failed logins from addresses it has not logged in from"
                      % SCANNER_ID, log)
        self.assertIn("auth failed: account=%s client=127.0.0.11 mechanism=PLAIN (account locked out)" % SCANNER_ID,
                      log)

    def test_failures_at_a_familiar_address_do_not_lock_out_the_rest(self):
        relay = self.start(lockout_threshold=3)
        port = relay.submission_port
        good, wrong = (SCANNER_ID, harness.SCANNER_PASSWORD), (SCANNER_ID, "old-password")
        self.assertEqual(auth_from("127.0.0.10", port, [good])[0][:3], "235")
        # The scanner at 127.0.0.10 keeps an old password for a while.
        for _ in range(2):
            self.assertEqual([r[:3] for r in auth_from("127.0.0.10", port, [wrong] * 2)], ["535"] * 2)
        # A new device elsewhere, with the right one, is not locked out.
        self.assertEqual(auth_from("127.0.0.11", port, [good])[0][:3], "235")
        self.assertNotIn("locked for", relay.log().decode())


class LoginQueueTest(harness.IntegrationCase):
    """Password checks run on threads of their own with a bounded queue: a
    storm of logins beyond auth.max_waiting_logins is answered 454 4.7.0 at
    once (it used to queue without bound on the threads that spool writes
    use), and mail still goes."""

    def test_logins_beyond_the_queue_get_454_and_mail_still_goes(self):
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], device_networks=PLAINTEXT_AUTH,
                                extra_sections={"auth": {"verify_threads": 1, "max_waiting_logins": 1}})
        self.start_relay(relay)
        port = relay.submission_port
        sessions = []
        for _ in range(12):
            s = harness.connect_from("127.0.0.9", port)
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220"))
            s.sendall(b"EHLO storm.test\r\n")
            while f.readline()[3:4] == b"-":
                pass
            sessions.append((s, f))
        # All at once: each check takes a while, so most find the queue full.
        wrong = b"AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, "guess").encode() + b"\r\n"
        for s, _ in sessions:
            s.sendall(wrong)
        replies = [f.readline().decode().strip() for _, f in sessions]
        for s, _ in sessions:
            s.close()
        busy = [r for r in replies if r.startswith("454")]
        self.assertTrue(busy, replies)
        self.assertEqual(set(busy), {"454 4.7.0 Temporary authentication failure"})
        self.assertEqual({r[:3] for r in replies} - {"454", "535"}, set(), replies)
        self.assertIn("logins: 1 waiting for a password check (auth.max_waiting_logins)", relay.log().decode())
        # Once the storm has passed, a device logs in and its mail goes.
        d = relay.authenticated_dialogue(SCANNER_ID, harness.SCANNER_PASSWORD)
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("250 *")
        d.send("RCPT TO:<dest@example.org>")
        d.expect("250 *")
        d.send("DATA")
        d.expect("354 *")
        d.send_raw(harness.make_message(SCANNER_ID, "dest@example.org", "after the storm", body_lines=["x"]) + b".\r\n")
        d.expect("250 2.0.0 *")
        d.close()
        self.assertEqual(len(self.upstream.wait_messages(1)), 1)


class QuotaReservationTest(harness.IntegrationCase):
    """Ten parallel sessions of an account limited to 3 messages a minute and
    10 recipients a day were all accepted (10 messages, 90 recipients): the
    limits were checked at MAIL and RCPT but counted after the message was
    stored. Now MAIL and RCPT hold their share until the message is accepted
    or the transaction ends."""

    def test_parallel_sessions_cannot_pass_the_account_limits(self):
        account = harness.scanner_account(settings={"max_messages_per_minute": 3, "max_recipients_per_day": 10})
        relay = self.full_stack([account])
        sessions = []   # (dialogue, MAIL reply code, recipients accepted)
        for n in range(10):
            d = relay.authenticated_dialogue(SCANNER_ID, harness.SCANNER_PASSWORD)
            d.send("MAIL FROM:<%s>" % SCANNER_ID)
            code = d.read_reply()[-1][:3]
            accepted = 0
            if code == "250":
                for r in range(9):
                    d.send("RCPT TO:<r%d-%d@example.org>" % (n, r))
                    accepted += d.read_reply()[-1].startswith("250")
            sessions.append((d, code, accepted))
        self.assertEqual([c for _, c, _ in sessions].count("250"), 3, [c for _, c, _ in sessions])
        self.assertEqual(sum(a for _, _, a in sessions), 10)
        # The session holding most gives up (RSET): its share is free again.
        holders = sorted((s for s in sessions if s[1] == "250"), key=lambda s: -s[2])
        giver = holders[0][0]
        giver.send("RSET")
        giver.expect("250 *")
        late = relay.authenticated_dialogue(SCANNER_ID, harness.SCANNER_PASSWORD)
        late.send("MAIL FROM:<%s>" % SCANNER_ID)
        late.expect("250 *")
        late.send("RCPT TO:<late@example.org>")
        late.expect("250 *")
        senders = [d for d, _, a in holders[1:] if a > 0] + [late]
        for d in senders:
            d.send("DATA")
            d.expect("354 *")
            d.send_raw(harness.make_message(SCANNER_ID, "dest@example.org", "quota", body_lines=["x"]) + b".\r\n")
            d.expect("250 2.0.0 *")
        for d, _, _ in sessions:
            d.close()
        late.close()
        messages = self.upstream.wait_messages(len(senders))
        self.assertEqual(len(messages), len(senders))
        self.assertLessEqual(sum(len(meta["rcpt_tos"]) for _, meta in messages), 10)
