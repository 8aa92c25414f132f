"""One client address cannot take every session slot: one address once
held all 200 of them (1,800 s with a one-byte drip) while real devices got
421, and every refusal was logged. Per client there is a limit on open
connections and on connections a minute; a refused client gets
`421 4.7.0 Too many connections from your host, try again later`, and the
log says so once a minute per client."""
import socket

import harness

REPLY = b"421 4.7.0 Too many connections from your host, try again later\r\n"


def greeting_from(source_ip, port):
    s = harness.connect_from(source_ip, port)
    f = s.makefile("rb")
    return s, f.readline()


class ClientLimitsTest(harness.IntegrationCase):
    def start(self, per_client, rate):
        return self.full_stack([harness.scanner_account()],
                               extra_sections={"server": {"max_connections_per_client": per_client,
                                                          "max_connection_rate_per_client": rate}})

    def test_one_address_cannot_hold_every_slot(self):
        relay = self.start(per_client=5, rate=0)
        held = []
        for _ in range(5):
            s, line = greeting_from("127.0.0.3", relay.submission_port)
            self.assertTrue(line.startswith(b"220 "), line)
            held.append(s)
        for _ in range(4):
            s, line = greeting_from("127.0.0.3", relay.submission_port)
            self.assertEqual(line, REPLY)
            s.close()
        # Another device still gets in.
        s, line = greeting_from("127.0.0.4", relay.submission_port)
        self.assertTrue(line.startswith(b"220 "), line)
        s.close()
        # A slot given back is free again.
        held.pop().close()
        harness.wait_for(lambda: greeting_from("127.0.0.3", relay.submission_port)[1].startswith(b"220 "),
                         what="a freed slot")
        refusals = relay.log().decode().count("client 127.0.0.3 refused")
        self.assertEqual(refusals, 1, "refusals of one client are logged once a minute")
        for s in held:
            s.close()

    def test_connections_a_minute_are_limited(self):
        relay = self.start(per_client=0, rate=5)
        for _ in range(5):
            s, line = greeting_from("127.0.0.5", relay.submission_port)
            self.assertTrue(line.startswith(b"220 "), line)
            s.close()
        s, line = greeting_from("127.0.0.5", relay.submission_port)
        self.assertEqual(line, REPLY)
        s.close()
        self.assertIn("client 127.0.0.5 refused: more than server.max_connection_rate_per_client connections a "
                      "minute", relay.log().decode())
        s, line = greeting_from("127.0.0.6", relay.submission_port)
        self.assertTrue(line.startswith(b"220 "), line)
        s.close()

    def test_the_defaults_are_twenty_open_and_sixty_a_minute(self):
        relay = self.start(per_client=None, rate=None)   # not set: the relay's defaults
        held = []
        for _ in range(20):
            s, line = greeting_from("127.0.0.7", relay.submission_port)
            self.assertTrue(line.startswith(b"220 "), line)
            held.append(s)
        s, line = greeting_from("127.0.0.7", relay.submission_port)
        self.assertEqual(line, REPLY)
        s.close()
        for s in held:
            s.close()


class PressureTest(harness.IntegrationCase):
    def hold_sessions(self, relay, count):
        """`count` greeted sessions from 127.0.0.8, left open."""
        held = []
        for _ in range(count):
            s, line = greeting_from("127.0.0.8", relay.submission_port)
            self.assertTrue(line.startswith(b"220 "), line)
            held.append(s)
        return held

    def test_under_pressure_idle_clients_get_ten_seconds(self):
        relay = self.full_stack([harness.scanner_account()],
                                extra_sections={"server": {"max_connections": 10, "idle_timeout_seconds": 300}})
        held = self.hold_sessions(relay, 9)   # above 80 % of 10
        s = held[0]
        s.sendall(b"NOOP\r\n")
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"250 "))
        s.settimeout(60)   # far below the configured 300 s, far above the 10 s of stress
        self.assertTrue(f.readline().startswith(b"421 4.4.2 "), "the idle client was not timed out")
        for s in held:
            s.close()

    def test_under_pressure_busy_sessions_get_less_time_too(self):
        relay = self.full_stack([harness.scanner_account()],
                                extra_sections={"server": {"max_connections": 10, "idle_timeout_seconds": 300,
                                                           "session_timeout_seconds": 1800,
                                                           "stress_session_timeout_seconds": 3}})
        held = self.hold_sessions(relay, 9)   # above 80 % of 10
        # A client that is never idle: a NOOP a second, answered until the
        # session's time under pressure is over (it had 1,800 s before).
        s = held[0]
        s.settimeout(1)
        received = b""
        for _ in range(60):
            s.sendall(b"NOOP\r\n")
            chunk = b"-"
            try:
                while chunk and b"421 " not in received:
                    chunk = s.recv(1024)
                    received += chunk
            except socket.timeout:
                pass   # a second without more to read
            if not chunk or b"421 " in received:
                break
        last = received.splitlines()[-1] if received else b""
        self.assertTrue(last.startswith(b"421 4.4.2 "), last)
        for s in held:
            s.close()

    def test_drip_fed_data_is_cut_off(self):
        relay = self.full_stack([harness.scanner_account()])
        d = relay.data_dialogue(harness.SCANNER_ID, harness.SCANNER_PASSWORD, harness.SCANNER_ID,
                                ["dest@example.org"])
        d.sock.settimeout(1)
        reply = b""
        for _ in range(90):   # one byte a second: far below server.min_data_rate (1024 a second)
            d.sock.sendall(b"x")
            try:
                reply = d.sock.recv(200)
            except socket.timeout:
                continue
            break
        self.assertTrue(reply.startswith(b"421 4.4.2 "), reply)
        self.assertIn(b"data arrives too slowly", reply)
        self.assertEqual(relay.queued_ids(), [])
        self.assertEqual(relay.spool_tmp_files(), [])
