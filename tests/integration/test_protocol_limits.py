"""What the relay lets through in the protocol itself: the HELO/EHLO name
is checked (length and syntax; a bare device name passes, noted in the
Received: header), the SIZE it advertises and enforces leaves room for that
header, and an AUTH command with its initial response may be as long as
RFC 4954 allows."""
import base64

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD

LIMIT = 1 << 20          # server.max_message_size in these tests
ROOM = 2048              # what SIZE leaves for the relay's Received: header


def body_of(size, subject):
    """A message of exactly `size` bytes as the relay counts them (after
    dot-unstuffing), in lines of at most 79 characters."""
    head = ("From: <%s>\r\nTo: <dest@example.org>\r\nSubject: %s\r\n\r\n" % (SCANNER_ID, subject)).encode()
    lines, rest = divmod(size - len(head), 78)
    body = [b"x" * 76 + b"\r\n"] * lines
    if rest == 1:
        body[0] = b"x" * 77 + b"\r\n"
    elif rest:
        body.append(b"y" * (rest - 2) + b"\r\n")
    message = head + b"".join(body)
    assert len(message) == size, (len(message), size)
    return message


class ProtocolLimitsTest(harness.IntegrationCase):
    def start(self):
        return self.full_stack([harness.scanner_account()],
                               extra_sections={"server": {"max_message_size": LIMIT}})

    def test_helo_names_are_checked(self):
        relay = self.start()
        d = relay.dialogue()
        d.expect("220 *")
        d.send("EHLO " + "a" * 256)
        d.expect("501 5.5.2 Error: HELO/EHLO name too long (at most 255 characters)")
        d.send("HELO printer <script>")
        d.expect("501 5.5.2 Error: invalid HELO/EHLO name: send a domain name or an address literal")
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("503 *")   # no greeting was accepted
        d.send("EHLO NPI7A2B3C")
        d.expect("250 *")
        d.close()

        d = relay.tls_dialogue(ehlo="NPI7A2B3C")
        d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
        d.expect("235 *")
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("250 *")
        d.send("RCPT TO:<dest@example.org>")
        d.expect("250 *")
        d.send("DATA")
        d.expect("354 *")
        d.send_raw(harness.make_message(SCANNER_ID, "dest@example.org", "bare helo", body_lines=["x"]) + b".\r\n")
        d.expect("250 2.0.0 *")
        d.close()
        [(data, _)] = self.upstream.wait_messages(1)
        fields, _ = harness.split_leading_received(data)
        self.assertIn(b"from NPI7A2B3C (HELO name without a domain) ([127.0.0.1])", fields[0])

    def test_size_leaves_room_for_the_received_header(self):
        relay = self.start()
        d = relay.tls_dialogue()
        self.assertIn("250-SIZE %d" % (LIMIT - ROOM), d.ehlo_lines)
        d.close()

        # Exactly the advertised size: accepted, and with the relay's
        # Received: header it still fits the configured limit upstream.
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        d.sock.sendall(body_of(LIMIT - ROOM, "at the limit") + b".\r\n")
        d.expect("250 2.0.0 *")
        d.close()
        [(data, _)] = self.upstream.wait_messages(1)
        self.assertLessEqual(len(data), LIMIT)
        self.assertGreater(len(data), LIMIT - ROOM)

        # One line more: refused.
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        d.sock.sendall(body_of(LIMIT - ROOM, "over the limit") + b"z\r\n.\r\n")
        d.expect("552 5.3.4 *")
        d.close()

    def test_an_auth_command_with_a_long_initial_response_is_read(self):
        relay = self.start()
        d = relay.tls_dialogue()
        # Every field at its longest (authorization and user name 255
        # octets, password 1,024): a line of 2,059 octets.
        response = base64.b64encode(b"z" * 255 + b"\0" + b"u" * 255 + b"\0" + b"p" * 1024).decode()
        self.assertGreater(len("AUTH PLAIN " + response), 2048)
        d.send("AUTH PLAIN " + response)
        d.expect("535 *")   # a wrong password, not "500 5.5.2 Line too long"
        d.send("AUTH PLAIN " + "A" * 12289)
        d.expect("500 5.5.2 Line too long")
        d.close()

    def test_a_client_that_sends_no_mail_is_cut_off(self):
        relay = self.start()
        d = relay.dialogue()
        d.expect("220 *")
        d.send("EHLO scanner.contoso.test")
        d.expect("250 *")
        d.send_raw(b"NOOP\r\n" * 100)
        for _ in range(100):
            d.expect("250 2.0.0 Ok")
        d.send("NOOP")
        d.expect("421 4.7.0 * Error: too many commands that send no mail")
        self.assertTrue(d.closed_by_peer())
