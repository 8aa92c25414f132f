"""Microsoft Graph as the upstream, end to end: the real subrelay binary, the
fake identity platform (fake_token.py) and the fake Graph (fake_graph.py,
which accepts only tokens issued for https://graph.microsoft.com/.default and
sends each message to the addresses of its To:, Cc: and Bcc: fields, as
Graph's MIME send does). Devices submit with smtplib over STARTTLS + AUTH
PLAIN, or with the raw dialogue where smtplib would add SIZE=.

Covered: the bytes Graph gets (the device's message, the relay's Received:
and a Bcc: naming the envelope recipients the header does not), header
addresses that are no recipient (refused at the end of DATA), Graph's size
limit (at MAIL, in EHLO, at the end of DATA), throttling (429, 503, 504 with
Retry-After), at most 4 requests at once per mailbox, answers that fail a
message for good (a bounce through the same mailbox), answers that make the
mailbox unavailable (its messages wait, the lane is probed again), a 401
(one renewal), an unknown answer (retried), and a relay that sends some
upstream mailboxes through SMTP and others through Graph.

fake_graph's NNN.json holds {"mailbox", "recipients"}, not an SMTP
envelope: harness.is_dsn and harness.account_for do not apply to it, so this
module has its own small helpers for Graph's recordings."""
import email.utils
import os
import re
import smtplib
import sys
import threading
import time

import harness
from harness import CLIENT_ID, RELAY_HOSTNAME, SCANNER_ID, SCANNER_PASSWORD, UPSTREAM_MAILBOX

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SMTP_SCOPE = "https://outlook.office365.com/.default"

GRAPH_MAX_MESSAGE = 3080192            # what the relay takes for Graph: 3 MiB - 64 KiB
GRAPH_MAX_ENCODED = 3 * 1024 * 1024    # 4 MiB of base64
SMTP_SIZE = 36700160 - 2048            # the harness's max_message_size, less the room for Received:

QUEUE_FAST = {"max_lifetime_seconds": 3600, "delay_warning_seconds": 0}
RCPT = "dest@example.org"
STRANGER = "stranger@example.net"

# A second upstream mailbox, delivered through SMTP + XOAUTH2 in the mixed tests.
SMTP_MAILBOX = "smtp-relay@contoso.com"
PRINTER_ID = "printer@contoso.com"


# ---------------------------------------------------------------- messages

def graph_message(sender, subject, to=(), cc=(), bcc=(), body_lines=None):
    """A CRLF message with the To:, Cc: and Bcc: fields asked for (none
    when empty) and a unique Message-ID; bytes."""
    token = os.urandom(6).hex()
    lines = ["From: <%s>" % sender]
    for name, addresses in (("To", to), ("Cc", cc), ("Bcc", bcc)):
        if addresses:
            lines.append("%s: %s" % (name, ", ".join("<%s>" % a for a in addresses)))
    lines += [
        "Subject: %s" % subject,
        "Date: Sat, 28 Nov 2026 12:00:00 +0000",
        "Message-ID: <%s.%s@scanner.contoso.test>" % (token, subject.replace(" ", "-")),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
    ]
    body = body_lines if body_lines is not None else [
        "Scan of document %s" % token,
        ".a line that starts with a dot",
        "..two dots",
        ".",
        "trailing spaces   ",
        "",
        "tab\there, umlaut \u00fc",
    ]
    return ("\r\n".join(lines + body) + "\r\n").encode("utf-8")


def sized_message(sender, subject, size, to=(RCPT,)):
    """A message of exactly `size` bytes (lines of at most 100 octets)."""
    head = graph_message(sender, subject, to=to, body_lines=[])
    left = size - len(head)
    assert left >= 2, "size %d is smaller than the header" % size
    lines = []
    n = 0
    while left > 0:
        if left <= 100:
            length = left - 2          # the last line
        elif left - 100 < 2:
            length = 90                # leaves room for a last line with its CRLF
        else:
            length = 98
        text = ("%07d " % n + "x" * 98)[:length]
        lines.append(text.encode() + b"\r\n")
        left -= length + 2
        n += 1
    message = head + b"".join(lines)
    assert len(message) == size, (len(message), size)
    return message


def split_field(data, name):
    """Splits one leading header field `name` (with its continuation lines)
    off `data`: (field bytes, rest), or (None, data) when `data` does not
    begin with it."""
    prefix = name.encode().lower() + b":"
    if data[:len(prefix)].lower() != prefix:
        return None, data
    end = data.find(b"\r\n") + 2
    while data[end:end + 1] in (b" ", b"\t"):
        end = data.find(b"\r\n", end) + 2
    return data[:end], data[end:]


def field_addresses(field):
    """The addresses of a header field (bytes, possibly folded)."""
    value = re.sub(rb"\r\n[ \t]", b" ", field.split(b":", 1)[1]).decode("utf-8", "replace")
    return [addr for _, addr in email.utils.getaddresses([value]) if addr]


def message_body(eml):
    """A recorded message without the Received: fields the relay added."""
    return harness.split_leading_received(eml)[1]


def is_notice(eml):
    """Whether a message Graph recorded is a delivery status notification."""
    ctype = (harness.header_value(message_body(eml), "Content-Type") or "").lower()
    return "multipart/report" in ctype


def delivery_status(eml):
    """The message/delivery-status part of a notice, as str."""
    text = eml.decode("utf-8", "replace")
    m = re.search(r"(?is)content-type:\s*message/delivery-status.*?\r\n\r\n(.*?)\r\n--", text)
    if m is None:
        raise AssertionError("no message/delivery-status part in the notice:\n" + text[:3000])
    return m.group(1)


# ---------------------------------------------------------------- the stack

class GraphCase(harness.IntegrationCase):
    """Token endpoint + fake Graph + a relay whose upstream is Graph."""

    def graph_stack(self, accounts=None, graph_kwargs=None, oauth=None, upstream=None, profiles=None,
                    start_token=True):
        if start_token:
            self.start_token()
        # Graph checks Send As, as Exchange does: the devices' senders were
        # granted it; anything else (a notice From: a made-up address) is refused.
        options = {"mailboxes": [UPSTREAM_MAILBOX], "send_as": [SCANNER_ID, PRINTER_ID]}
        options.update(graph_kwargs or {})
        self.start_graph(**options)
        upstream_section = {
            "kind": "graph", "directory": None, "mailbox": UPSTREAM_MAILBOX,
            # The CA of every upstream TLS server, here that of a profile's SMTP server.
            "ca_file": "ca.pem",
            "retry_initial_seconds": 1, "retry_max_seconds": 2,
        }
        upstream_section.update(upstream or {})
        oauth_section = {
            "token_url": self.token.url, "client_id": CLIENT_ID, "client_secret_file": "client-secret",
            "ca_file": "ca.pem", "graph_url": self.graph.url,
        }
        oauth_section.update(oauth or {})
        extra = {"upstream": upstream_section, "oauth": oauth_section, "queue": dict(QUEUE_FAST)}
        for name, values in (profiles or {}).items():
            extra["oauth.profiles." + name] = values
        relay = self.make_relay(accounts or [harness.scanner_account()], kind="graph", extra_sections=extra)
        self.start_relay(relay)
        return relay

    # -- what Graph got
    def graph_messages(self):
        return self.graph.messages()

    def originals(self):
        """What Graph recorded that is not a notice."""
        return [(eml, meta) for eml, meta in self.graph_messages() if not is_notice(eml)]

    def notices(self):
        return [(eml, meta) for eml, meta in self.graph_messages() if is_notice(eml)]

    def diagnostics(self):
        graph_log = harness.tail(os.path.join(self.graph.state_dir, "graph.log"), 20)
        return ("\nGraph counters: %r\ngraph.log:\n%s\nrelay log:\n%s"
                % (self.graph.counters(), graph_log, harness.tail(self.relay.log_path, 25)))

    def wait(self, predicate, what, timeout=harness.DEFAULT_TIMEOUT):
        """harness.wait_for, with Graph's and the relay's side in the failure."""
        try:
            return harness.wait_for(predicate, timeout=timeout, interval=0.05, what=what)
        except AssertionError as e:
            raise AssertionError(str(e) + self.diagnostics()) from None

    def wait_graph(self, count, what=None, timeout=harness.DEFAULT_TIMEOUT):
        """Until Graph recorded `count` messages (notices included); returns them."""
        return self.wait(lambda: len(self.graph_messages()) >= count and self.graph_messages(),
                         what or "%d message(s) at the fake Graph" % count, timeout)

    def wait_spool_empty(self, timeout=harness.DEFAULT_TIMEOUT):
        self.wait(lambda: not self.relay.queued_ids(), "the relay's spool to empty", timeout)

    def wait_log(self, pattern, what, timeout=harness.DEFAULT_TIMEOUT):
        """Until a line of the relay's log matches `pattern`; returns the match."""
        return self.wait(lambda: re.search(pattern, self.relay_log(), re.M), what, timeout)

    def relay_log(self):
        return self.relay.log().decode("utf-8", "replace")

    def refused(self):
        return self.graph.counters().get("refused", {})

    def posts(self):
        """sendMail requests Graph answered (sent or refused), from graph.log
        (counters.json's "requests" counts any request, a GET too)."""
        try:
            with open(os.path.join(self.graph.state_dir, "graph.log")) as f:
                return sum(1 for line in f if line.startswith("SENT ") or line.startswith("REFUSED POST "))
        except FileNotFoundError:
            return 0

    def token_scopes(self):
        """The scopes of the tokens the fake identity platform issued, one per token."""
        try:
            with open(os.path.join(self.token.state_dir, "token-scopes.txt")) as f:
                return [line.split(None, 1)[1].strip() for line in f if line.strip()]
        except FileNotFoundError:
            return []

    # -- devices
    def send(self, message, rcpts, identity=SCANNER_ID, sender=SCANNER_ID):
        harness.smtplib_send(self.relay, message, list(rcpts), sender=sender, identity=identity)

    def session(self, identity=SCANNER_ID, password=SCANNER_PASSWORD):
        """An smtplib session after STARTTLS and AUTH (the caller quits it)."""
        s = smtplib.SMTP("127.0.0.1", self.relay.submission_port, timeout=60)
        s.ehlo("scanner.contoso.test")
        s.starttls(context=self.relay.client_tls_context())
        s.ehlo("scanner.contoso.test")
        s.login(identity, password)
        return s

    def mail_reply(self, identity, size):
        """The reply to MAIL FROM:<identity> SIZE=size after AUTH."""
        d = self.relay.authenticated_dialogue(identity, SCANNER_PASSWORD)
        try:
            d.send("MAIL FROM:<%s> SIZE=%d" % (identity, size))
            return d.read_reply()[-1]
        finally:
            d.close()

    # -- assertions
    def assert_graph_copy(self, eml, original, bcc=()):
        """Graph got `original` byte for byte after one Received: of the
        relay and, when `bcc` is not empty, a Bcc: field naming exactly
        those addresses (folded at 78 octets); no Bcc: field otherwise."""
        fields, rest = harness.split_leading_received(eml)
        self.assertEqual(len(fields), 1, "expected exactly one Received: field prepended, got %r" % fields)
        self.assertIn(RELAY_HOSTNAME.encode(), fields[0], "the Received: field should name the relay host")
        field, rest = split_field(rest, "Bcc")
        if not bcc:
            self.assertIsNone(field, "the relay added a Bcc: field although the header names every recipient")
        else:
            self.assertIsNotNone(field, "no Bcc: field right after the Received: field:\n%r" % rest[:300])
            self.assertEqual(sorted(a.lower() for a in field_addresses(field)), sorted(a.lower() for a in bcc),
                             "the Bcc: field must name exactly the envelope recipients missing from the "
                             "header: %r" % field)
            lines = field[:-2].split(b"\r\n")
            for line in lines:
                self.assertLessEqual(len(line), 78, "a Bcc: line longer than 78 octets: %r" % line)
            for line in lines[1:]:
                self.assertIn(line[:1], (b" ", b"\t"), "a folded Bcc: line must begin with white space")
        self.assertEqual(rest, original, "the message bytes after the relay's fields changed")

    def assert_waiting(self, label):
        """The one message is still in the spool, neither sent nor bounced."""
        self.assertEqual(len(self.relay.queued_ids()), 1, "%s: the message should wait in the spool" % label)
        self.assertEqual(self.graph_messages(), [], "%s: nothing may have reached Graph" % label)


# ---------------------------------------------------------------- 1. the bytes Graph gets

class MessageBytesTest(GraphCase):
    def test_envelope_recipients_missing_from_the_header_go_in_a_bcc_field(self):
        self.graph_stack()
        # Long addresses, so that the Bcc: field has to be folded.
        a = "alice@example.org"
        others = ["bartholomew.second-recipient@example.org", "cornelia.third-recipient@example.net",
                  "desmond.fourth-recipient@example.com"]
        rcpts = [a] + others
        message = graph_message(SCANNER_ID, "graph bytes", to=[a])
        self.send(message, rcpts)

        [(eml, meta)] = self.wait_graph(1)
        self.assert_graph_copy(eml, message, bcc=others)
        self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX,
                         "sendMail must go to /v1.0/users/%s/sendMail" % UPSTREAM_MAILBOX)
        self.assertEqual(sorted(r.lower() for r in meta["recipients"]), sorted(rcpts),
                         "Graph must send to every envelope recipient exactly once")

        self.assertTrue(self.token_scopes(), "no token was issued")
        self.assertEqual(set(self.token_scopes()), {GRAPH_SCOPE},
                         "a Graph-only relay needs tokens for Graph, and only those")
        line = self.wait_log(r"^.*delivery id=\S+ .*upstream=%s .*status=sent.*$" % re.escape(UPSTREAM_MAILBOX),
                             "the delivery's log line").group(0)
        self.assertIn('reply="', line)
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual((counters["sent"], counters["unauthorized"], counters["refused"]), (1, 0, {}), counters)
        self.assertNotIn(harness.CLIENT_SECRET, self.relay_log())

    def test_header_addresses_are_compared_without_regard_to_case(self):
        self.graph_stack()
        message = graph_message(SCANNER_ID, "graph case", to=["Dest@Example.ORG"], cc=["copy@example.org"])
        self.send(message, [RCPT, "COPY@example.org"])
        [(eml, meta)] = self.wait_graph(1)
        # Every envelope recipient is in the header already: nothing is added.
        self.assert_graph_copy(eml, message, bcc=())
        self.assertEqual(sorted(r.lower() for r in meta["recipients"]), sorted([RCPT, "copy@example.org"]))


# ---------------------------------------------------------------- 2. addresses only in the header

class HeaderOnlyAddressTest(GraphCase):
    def test_a_header_address_that_is_no_recipient_is_refused_at_end_of_data(self):
        relay = self.graph_stack()
        refused = {}
        s = self.session()
        try:
            for field in ("To", "Cc", "Bcc"):
                headers = {"to": [RCPT], "cc": (), "bcc": ()}
                headers[field.lower()] = list(headers[field.lower()]) + [STRANGER]
                message = graph_message(SCANNER_ID, "header only %s" % field, **headers)
                with self.assertRaises(smtplib.SMTPDataError, msg="a %s: stranger was accepted" % field) as cm:
                    s.sendmail(SCANNER_ID, [RCPT], message)
                refused[field] = (cm.exception.smtp_code, cm.exception.smtp_error.decode("utf-8", "replace"))
            # Nothing was queued, nothing reached Graph.
            self.assertEqual(relay.queued_ids(), [])
            self.assertEqual(relay.spool_tmp_files(), [])
            self.assertEqual(self.graph.counters()["requests"], 0, "Graph was asked to send a refused message")
            # The session goes on, and a message whose header is right goes through.
            good = graph_message(SCANNER_ID, "header right", to=[RCPT])
            self.assertEqual(s.sendmail(SCANNER_ID, [RCPT], good), {})
        finally:
            s.quit()
        for field, (code, text) in refused.items():
            self.assertEqual(code, 550, "%s: %r" % (field, text))
            self.assertTrue(text.startswith("5.7.1"), "%s: expected 5.7.1, got %r" % (field, text))
            self.assertIn(STRANGER, text, "%s: the refusal should name the address" % field)

        [(eml, _)] = self.wait_graph(1)
        self.assert_graph_copy(eml, good)
        self.wait_spool_empty()
        self.assertEqual(len(self.graph_messages()), 1, "only the good message may reach Graph")


# ---------------------------------------------------------------- 3. Graph's size limit

class SizeTest(GraphCase):
    def test_ehlo_advertises_graphs_size_and_mail_refuses_more(self):
        relay = self.graph_stack()
        d = relay.tls_dialogue()
        sizes = [line[8:].strip() for line in d.ehlo_lines if re.match(r"^250[- ]SIZE\b", line)]
        d.close()
        self.assertEqual(sizes, [str(GRAPH_MAX_MESSAGE)],
                         "every upstream mailbox goes through Graph: EHLO should say SIZE %d: %r"
                         % (GRAPH_MAX_MESSAGE, d.ehlo_lines))
        for size in (4000000, GRAPH_MAX_MESSAGE + 1):
            reply = self.mail_reply(SCANNER_ID, size)
            self.assertRegex(reply, r"^552 5\.3\.4 ", "MAIL with SIZE=%d" % size)
        self.assertRegex(self.mail_reply(SCANNER_ID, GRAPH_MAX_MESSAGE), r"^250 ",
                         "SIZE=%d is at the limit, not above it" % GRAPH_MAX_MESSAGE)
        self.assertEqual(relay.queued_ids(), [])

    def test_a_message_that_would_not_fit_is_refused_at_end_of_data(self):
        relay = self.graph_stack()
        # No SIZE= (a device need not give it): only the end of DATA can tell.
        message = sized_message(SCANNER_ID, "graph too big", GRAPH_MAX_ENCODED + 50000)
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, [RCPT])
        try:
            d.send_raw(harness.dot_stuff(message))
            d.expect("552 5.3.4 *")
            self.assertEqual(relay.queued_ids(), [])
            self.assertEqual(relay.spool_tmp_files(), [])
            # The session goes on.
            d.send("MAIL FROM:<%s>" % SCANNER_ID)
            d.expect("250 *")
        finally:
            d.close()
        self.assertEqual(self.graph.counters()["requests"], 0)

    def test_a_message_at_the_limit_goes_through_graph(self):
        self.graph_stack()
        message = sized_message(SCANNER_ID, "graph at the limit", GRAPH_MAX_MESSAGE)
        self.send(message, [RCPT])   # smtplib gives SIZE=3080192
        [(eml, meta)] = self.wait_graph(1, timeout=60)
        self.assert_graph_copy(eml, message)
        self.assertEqual(meta["recipients"], [RCPT])
        counters = self.graph.counters()
        self.assertEqual((counters["too_large"], counters["refused"]), (0, {}), counters)


# ---------------------------------------------------------------- 4. throttling

class ThrottlingTest(GraphCase):
    def test_429_pauses_the_mailbox_for_retry_after_without_an_attempt(self):
        relay = self.graph_stack()
        # (fake_graph counts a scripted 429 under refused["ErrorScripted"];
        # its "throttled" counts only its own concurrency limit.)
        self.graph.script_errors({UPSTREAM_MAILBOX: ["http429:5"]})
        message = graph_message(SCANNER_ID, "graph throttled", to=[RCPT])
        self.send(message, [RCPT])
        self.wait(lambda: self.refused().get("ErrorScripted"), "the scripted 429")
        throttled_at = time.monotonic()

        # During the pause the message waits, and no attempt is counted.
        rows = relay.queue_list()
        self.assertIsNotNone(rows, "`subrelay queue list --json` failed")
        self.assertEqual(len(rows), 1, "the message should wait in the queue during the pause: %r" % rows)
        self.assertEqual(rows[0]["attempts"], 0, "a 429 is no attempt of the message: %r" % rows[0])

        [(eml, _)] = self.wait_graph(1)
        waited = time.monotonic() - throttled_at
        self.assert_graph_copy(eml, message)
        self.assertGreaterEqual(waited, 3.5, "the mailbox was not paused for Retry-After (5 s): sent %.1f s "
                                "after the 429" % waited)
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual(counters["sent"], 1, counters)
        self.assertEqual(counters["refused"], {"ErrorScripted": 1}, counters)
        self.assertEqual(counters["throttled"], 0, counters)
        self.assertEqual(self.posts(), 2, "one 429, then one request after the pause: %r" % counters)
        log = self.relay_log()
        self.assertTrue([l for l in log.splitlines() if UPSTREAM_MAILBOX in l and re.search(r"throttled|paused", l)],
                        "the log should say that the mailbox was paused")
        self.assertNotIn("status=bounced", log)

    def test_503_and_504_pause_too(self):
        self.graph_stack()
        self.graph.script_errors({UPSTREAM_MAILBOX: ["http503:1", "http504:1"]})
        message = graph_message(SCANNER_ID, "graph unavailable for a moment", to=[RCPT])
        self.send(message, [RCPT])
        [(eml, _)] = self.wait_graph(1)
        self.assert_graph_copy(eml, message)
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual(counters["refused"], {"ServiceUnavailable": 1, "ErrorScripted": 1}, counters)
        self.assertEqual((counters["sent"], self.posts()), (1, 3), counters)
        self.assertEqual(self.notices(), [], "a pause is no reason to bounce")


# ---------------------------------------------------------------- 5. requests at once

class ConcurrencyTest(GraphCase):
    def test_at_most_four_requests_at_once_per_mailbox(self):
        self.graph_stack(graph_kwargs={"delay": 0.5})
        sent = [graph_message(SCANNER_ID, "graph parallel %d" % i, to=[RCPT]) for i in range(12)]
        clients = 4
        errors = []

        def client(batch):
            try:
                self.send(batch, [RCPT])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(sent[i::clients],)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [], "submissions failed")

        messages = self.wait_graph(len(sent), timeout=60)
        self.wait_spool_empty(timeout=60)
        got = sorted(harness.message_id(message_body(eml)) for eml, _ in messages)
        self.assertEqual(got, sorted(harness.message_id(m) for m in sent), "each message exactly once")
        counters = self.graph.counters()
        peak = counters["max_concurrent"].get(UPSTREAM_MAILBOX, 0)
        sys.stdout.write("\n  at most %d sendMail request(s) at once\n" % peak)
        self.assertLessEqual(peak, 4, "more than 4 requests at once for one mailbox: %r" % counters)
        self.assertGreaterEqual(peak, 2, "12 queued messages went one at a time, not up to 4 at once")
        self.assertEqual(counters["throttled"], 0, counters)
        self.assertEqual(counters["refused"], {}, counters)
        self.assertEqual(self.token.counters()["requests"], 1,
                         "12 deliveries need one token request: %s" % self.token.log())


    def test_lower_limits_are_kept_too(self):
        # The app sends from elsewhere as well: 2 requests at once, 9 in ten
        # minutes, which are 3 messages (each a draft: made, marked, sent).
        self.graph_stack(graph_kwargs={"delay": 0.3},
                         upstream={"graph_max_concurrent_requests": 2, "graph_max_requests_per_10_minutes": 9})
        sent = [graph_message(SCANNER_ID, "graph window %d" % i, to=[RCPT]) for i in range(5)]
        for message in sent:
            self.send(message, [RCPT])
        # Three go; the other two wait for the window, in the queue.
        self.wait_log(r"upstream mailbox %s: at its limit of 3 messages in 600 s" % re.escape(UPSTREAM_MAILBOX),
                      "the relay waiting for Graph's ten minutes")
        self.wait_graph(3)
        # The third leaves the spool once its send's answer is in: Graph may
        # have it a moment before.
        harness.wait_for(lambda: len(self.relay.queued_ids()) <= 2, what="the third message out of the queue")
        self.assertEqual(len(self.relay.queued_ids()), 2, "two messages should wait in the queue")
        self.assertEqual(len(self.graph_messages()), 3, "more than 3 requests in ten minutes")
        counters = self.graph.counters()
        self.assertLessEqual(counters["max_concurrent"].get(UPSTREAM_MAILBOX, 0), 2, counters)
        self.assertEqual((counters["throttled"], counters["refused"]), (0, {}), counters)


# ---------------------------------------------------------------- 6. failed for good

class PermanentErrorTest(GraphCase):
    def bounce_with(self, error, status, hint=None):
        self.graph_stack()
        self.graph.script_errors({UPSTREAM_MAILBOX: [error]})
        message = graph_message(SCANNER_ID, "graph %s" % error, to=[RCPT])
        self.send(message, [RCPT])

        [(dsn, meta)] = self.wait_graph(1, what="the bounce for %s" % error)
        self.assertTrue(is_notice(dsn), "Graph got something else than a notice:\n%r" % dsn[:1000])
        self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX, "the notice goes through the same upstream mailbox")
        self.assertEqual([r.lower() for r in meta["recipients"]], [SCANNER_ID], "the notice goes to the sender")
        body = message_body(dsn)
        self.assertEqual(harness.header_value(body, "From").strip(),
                         "\"Mail Delivery System\" <%s>" % UPSTREAM_MAILBOX,
                         "the notice is From: the mailbox that sends it (Graph checks Send As)")
        state = delivery_status(body)
        self.assertRegex(state, r"(?im)^Final-Recipient:\s*rfc822;\s*%s\s*$" % re.escape(RCPT))
        self.assertRegex(state, r"(?im)^Action:\s*failed\s*$")
        self.assertRegex(state, r"(?im)^Status:\s*%s\s*$" % re.escape(status))
        self.assertIn(status.encode(), body)
        self.assertIn(harness.message_id(message).encode(), body, "the notice returns the original's header")

        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual(counters["refused"], {error: 1}, counters)
        self.assertEqual(counters["sent"], 1, "the notice only: %r" % counters)
        self.assertEqual(self.originals(), [])
        log = self.relay_log()
        self.assertRegex(log, r"delivery id=\S+ .*upstream=%s .*status=bounced" % re.escape(UPSTREAM_MAILBOX))
        self.assertIn(error, log, "the log should carry Graph's error code")
        if hint:
            self.assertIn(hint, log, "the log should name the fix")
        # The spool is empty: nothing more can go.
        self.assertEqual(len(self.graph_messages()), 1, "one notice, nothing else")

    def test_send_as_denied_bounces_to_the_sender(self):
        self.bounce_with("ErrorSendAsDenied", "5.7.60", hint="Add-RecipientPermission")

    def test_invalid_recipients_bounce(self):
        self.bounce_with("ErrorInvalidRecipients", "5.1.1")

    def test_message_size_exceeded_bounces(self):
        self.bounce_with("ErrorMessageSizeExceeded", "5.3.4")

    def test_mime_content_refused_bounces(self):
        self.bounce_with("ErrorMimeContentInvalid", "5.6.0")


# ---------------------------------------------------------------- 7. the mailbox unavailable

class MailboxUnavailableTest(GraphCase):
    def wait_out(self, error, hint):
        relay = self.graph_stack()
        self.graph.script_errors({UPSTREAM_MAILBOX: [error]})
        message = graph_message(SCANNER_ID, "graph %s" % error, to=[RCPT])
        self.send(message, [RCPT])
        self.wait(lambda: self.refused().get(error), "the scripted %s" % error)
        refused_at = time.monotonic()

        # The message waits, and both the log and `queue list` say why and what fixes it.
        self.wait_log(r"%s.*%s|%s.*%s" % (re.escape(UPSTREAM_MAILBOX), re.escape(hint),
                                          re.escape(hint), re.escape(UPSTREAM_MAILBOX)),
                      "the hint in the relay log")
        self.wait_log(r"upstream mailbox %s is unavailable" % re.escape(UPSTREAM_MAILBOX),
                      "the mailbox marked unavailable")
        rows = relay.queue_list()
        self.assertIsNotNone(rows, "`subrelay queue list --json` failed")
        self.assertEqual(len(rows), 1, rows)
        self.assertIn(hint, rows[0]["hint"], "`queue list` should show the hint: %r" % rows[0])
        self.assertEqual(rows[0]["attempts"], 0, "a failure of the mailbox is no attempt of the message")
        self.assert_waiting("after %s" % error)

        # The lane is probed again after about 10 s, and the message goes.
        [(eml, _)] = self.wait_graph(1, what="the message after the probe", timeout=60)
        waited = time.monotonic() - refused_at
        sys.stdout.write("\n  sent %.1f s after %s\n" % (waited, error))
        self.assert_graph_copy(eml, message)
        self.assertGreaterEqual(waited, 5, "the mailbox was tried again at once, not after the probe wait")
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual(counters["refused"], {error: 1}, counters)
        self.assertEqual((counters["sent"], self.posts()), (1, 2), counters)
        self.assertEqual(self.notices(), [], "an unavailable mailbox is no reason to bounce")
        self.assertNotIn("status=bounced", self.relay_log())

    def test_access_denied_waits_for_the_permission(self):
        self.wait_out("ErrorAccessDenied", "Mail.Send")

    def test_mailbox_not_enabled_for_rest_api_waits_for_the_mailbox(self):
        self.wait_out("MailboxNotEnabledForRESTAPI", "Exchange Online")


# ---------------------------------------------------------------- 401 and unknown answers

class TokenAndRetryTest(GraphCase):
    def test_401_renews_the_token_once_and_repeats_the_request(self):
        self.graph_stack()
        self.graph.script_errors({UPSTREAM_MAILBOX: ["InvalidAuthenticationToken"]})
        message = graph_message(SCANNER_ID, "graph token expired", to=[RCPT])
        self.send(message, [RCPT])
        [(eml, _)] = self.wait_graph(1)
        self.assert_graph_copy(eml, message)
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual(counters["refused"], {"InvalidAuthenticationToken": 1}, counters)
        self.assertEqual((counters["sent"], self.posts()), (1, 2), counters)
        self.assertEqual(self.token.counters()["issued"], 2, "one renewal after the 401: %s" % self.token.log())
        self.assertEqual(set(self.token_scopes()), {GRAPH_SCOPE})
        self.assertNotIn("status=deferred", self.relay_log(), "a renewed token is repeated at once, not deferred")

    def test_an_unknown_error_is_retried_later(self):
        self.graph_stack()
        self.graph.script_errors({UPSTREAM_MAILBOX: ["http500"]})
        message = graph_message(SCANNER_ID, "graph unknown error", to=[RCPT])
        self.send(message, [RCPT])
        [(eml, _)] = self.wait_graph(1)
        self.assert_graph_copy(eml, message)
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual(counters["refused"], {"ErrorScripted": 1}, counters)
        self.assertEqual(counters["sent"], 1, counters)
        log = self.relay_log()
        self.assertRegex(log, r"delivery id=\S+ .*status=deferred")
        self.assertRegex(log, r"delivery id=\S+ .*status=sent")
        self.assertEqual(self.notices(), [])


# ---------------------------------------------------------------- 8. SMTP and Graph side by side

class MixedDeliveryTest(GraphCase):
    def mixed_stack(self):
        """The default profile delivers through Graph; the profile "exchange"
        delivers SMTP_MAILBOX through SMTP + XOAUTH2 (the fake upstream)."""
        self.start_token()
        upstream = self.start_upstream(mailboxes=(SMTP_MAILBOX,))
        printer = harness.Account(PRINTER_ID, SCANNER_PASSWORD, disabled=False, upstream_mailbox=SMTP_MAILBOX)
        profile = {"delivery": "smtp", "token_url": self.token.url, "client_id": CLIENT_ID,
                   "client_secret_file": "client-secret", "ca_file": "ca.pem", "mailboxes": [SMTP_MAILBOX],
                   "smtp_host": "127.0.0.1", "smtp_port": upstream.port, "smtp_tls": "starttls"}
        return self.graph_stack(accounts=[harness.scanner_account(), printer], profiles={"exchange": profile},
                                start_token=False)

    def test_each_upstream_mailbox_goes_its_own_way(self):
        self.mixed_stack()
        through_graph = graph_message(SCANNER_ID, "mixed graph", to=[RCPT])
        self.send(through_graph, [RCPT, "second@example.org"])
        through_smtp = graph_message(PRINTER_ID, "mixed smtp", to=[RCPT])
        self.send(through_smtp, [RCPT], identity=PRINTER_ID, sender=PRINTER_ID)
        # The header check is Graph's: the SMTP path sends to the envelope.
        cc_only = graph_message(PRINTER_ID, "mixed smtp cc", to=[RCPT], cc=[STRANGER])
        self.send(cc_only, [RCPT], identity=PRINTER_ID, sender=PRINTER_ID)

        [(eml, meta)] = self.wait_graph(1)
        self.assert_graph_copy(eml, through_graph, bcc=["second@example.org"])
        self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX)
        self.assertEqual(sorted(meta["recipients"]), [RCPT, "second@example.org"])

        smtp_messages = self.wait(lambda: len(self.upstream.messages()) >= 2 and self.upstream.messages(),
                                  "the printer's messages at the SMTP upstream")
        self.wait_spool_empty()
        issued = set(self.token.tokens())
        by_subject = {harness.header_value(harness.split_leading_received(e)[1], "Subject"): (e, m)
                      for e, m in smtp_messages}
        self.assertEqual(sorted(by_subject), ["mixed smtp", "mixed smtp cc"])
        for subject, original in (("mixed smtp", through_smtp), ("mixed smtp cc", cc_only)):
            e, m = by_subject[subject]
            self.assert_relayed(e, original, PRINTER_ID, [RCPT], m)
            self.assertEqual(m["mailbox"], SMTP_MAILBOX, "XOAUTH2 user= must be the profile's mailbox")
            self.assertIn(m["token"], issued)
        self.assertEqual(len(self.graph_messages()), 1, "a message of the SMTP profile reached Graph")
        self.assertEqual(set(self.token_scopes()), {GRAPH_SCOPE, SMTP_SCOPE},
                         "one token for Graph, one for Exchange Online's SMTP")
        self.assertEqual(self.upstream.counters()["auth_failures"], 0, self.upstream.auth_log())

    def test_graphs_size_limit_is_per_account_when_not_every_mailbox_uses_graph(self):
        relay = self.mixed_stack()
        d = relay.tls_dialogue()
        sizes = [line[8:].strip() for line in d.ehlo_lines if re.match(r"^250[- ]SIZE\b", line)]
        d.close()
        self.assertEqual(sizes, [str(SMTP_SIZE)],
                         "a mailbox delivers through SMTP: EHLO keeps max_message_size's SIZE")
        self.assertRegex(self.mail_reply(SCANNER_ID, 4000000), r"^552 5\.3\.4 ",
                         "the account routed to Graph")
        self.assertRegex(self.mail_reply(PRINTER_ID, 4000000), r"^250 ", "the account routed to SMTP")
        # And the header check applies to the Graph account only.
        s = self.session()
        try:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail(SCANNER_ID, [RCPT], graph_message(SCANNER_ID, "mixed stranger", to=[RCPT],
                                                             cc=[STRANGER]))
        finally:
            s.quit()
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(STRANGER, cm.exception.smtp_error.decode("utf-8", "replace"))
        self.assertEqual(relay.queued_ids(), [])


class TestUpstreamTest(GraphCase):
    """`subrelay test-upstream` for a mailbox that goes through Graph: the
    token, the HTTPS connection, and a sendMail of a message without
    recipients, which Graph refuses (ErrorInvalidRecipients) once the app
    may send as the mailbox, so that nothing is ever sent."""

    def probe(self, *args):
        code, out, err = harness.run_cli(["test-upstream"] + list(args), config=self.relay.config_path,
                                         timeout=90)
        return code, out + err

    def assert_nothing_sent(self):
        self.assertEqual(self.graph_messages(), [])
        self.assertEqual(self.graph.counters()["sent"], 0)

    def test_every_step_passes_without_sending(self):
        self.graph_stack()
        code, out = self.probe()
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"\[ ok \] token\s+access token for " + re.escape(UPSTREAM_MAILBOX))
        self.assertRegex(out, r"\[ ok \] connect\s+127\.0\.0\.1:%d" % self.graph.port)
        self.assertRegex(out, r"\[ ok \] tls\s+TLSv1\.[23]")
        self.assertIn("verified", out)
        self.assertRegex(out, r"\[ ok \] sendMail\s+Mail\.Send reaches " + re.escape(UPSTREAM_MAILBOX))
        self.assertIn("ErrorInvalidRecipients", out)
        self.assertIn(GRAPH_SCOPE, out)
        self.assertRegex(out, r"\[ ok \] draft\s+Mail\.ReadWrite reaches " + re.escape(UPSTREAM_MAILBOX))
        self.assert_nothing_sent()
        self.assertEqual(self.graph.counters()["drafts"], 0, "the test draft was left behind")
        for token in self.token.tokens():
            self.assertNotIn(token, out, "an access token was printed")

    def test_without_mail_readwrite_the_draft_step_names_the_fix(self):
        self.graph_stack(graph_kwargs={"mail_readwrite": False})
        code, out = self.probe()
        self.assertEqual(code, 1, out)
        self.assertRegex(out, r"\[ ok \] sendMail")
        self.assertRegex(out, r"\[FAIL\] draft\s+POST /v1\.0/users/%s/messages: 403 ErrorAccessDenied"
                         % re.escape(UPSTREAM_MAILBOX))
        self.assertIn("Mail.ReadWrite", out)
        self.assertIn("save_to_sent_items = true", out)

    def test_with_save_to_sent_items_no_draft_is_needed(self):
        self.graph_stack(oauth={"save_to_sent_items": True}, graph_kwargs={"mail_readwrite": False})
        code, out = self.probe()
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"\[skip\] draft\s+save_to_sent_items = true")

    def test_a_missing_permission_fails_with_its_fix(self):
        self.graph_stack()
        self.graph.script_errors({UPSTREAM_MAILBOX: ["ErrorAccessDenied"]})
        code, out = self.probe()
        self.assertEqual(code, 1, out)
        self.assertRegex(out, r"\[FAIL\] sendMail\s+POST /v1\.0/users/%s/sendMail: 403 ErrorAccessDenied"
                         % re.escape(UPSTREAM_MAILBOX))
        self.assertIn("Mail.Send", out)
        self.assertIn("Test-ApplicationAccessPolicy -Identity " + UPSTREAM_MAILBOX, out)
        self.assert_nothing_sent()

    def test_a_mailbox_graph_does_not_know_is_named(self):
        self.graph_stack()
        code, out = self.probe("--mailbox", "gone@contoso.com")
        self.assertEqual(code, 1, out)
        self.assertRegex(out, r"\[FAIL\] sendMail\s+POST /v1\.0/users/gone@contoso\.com/sendMail: 404")
        self.assertIn("must be an Exchange Online mailbox", out)
        self.assert_nothing_sent()

class SentItemsTest(GraphCase):
    """save_to_sent_items: false (the default) sends a draft marked
    PidTagDeleteAfterSubmit, so that no copy stays in Sent Items; true sends
    with one sendMail, which keeps one."""

    def test_by_default_no_copy_stays_in_sent_items(self):
        self.graph_stack()
        message = graph_message(SCANNER_ID, "graph draft", to=[RCPT])
        self.send(message, [RCPT, "other@example.org"])
        [(eml, meta)] = self.wait_graph(1)
        self.assert_graph_copy(eml, message, bcc=("other@example.org",))
        self.assertEqual(meta["how"], "draft")
        self.assertFalse(meta["saved_to_sent_items"], "the draft was not marked PidTagDeleteAfterSubmit")
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual((counters["sent_items"], counters["drafts"]), (0, 0), counters)

    def test_save_to_sent_items_sends_with_one_sendmail(self):
        self.graph_stack(oauth={"save_to_sent_items": True})
        message = graph_message(SCANNER_ID, "graph sendmail", to=[RCPT])
        self.send(message, [RCPT])
        [(eml, meta)] = self.wait_graph(1)
        self.assert_graph_copy(eml, message)
        self.assertEqual(meta["how"], "sendMail")
        self.assertTrue(meta["saved_to_sent_items"])
        self.wait_spool_empty()
        counters = self.graph.counters()
        self.assertEqual((counters["requests"], counters["sent_items"], counters["drafts"]), (1, 1, 0), counters)

    def test_a_draft_that_cannot_be_sent_is_deleted(self):
        self.graph_stack()
        # The draft is made; its send is refused for good.
        self.graph.script_errors({UPSTREAM_MAILBOX: ["pass", "ErrorInvalidRecipients"]})
        message = graph_message(SCANNER_ID, "graph draft refused", to=[RCPT])
        self.send(message, [RCPT])
        [(dsn, _)] = self.wait_graph(1, what="the bounce")
        self.assertTrue(is_notice(dsn))
        self.wait_spool_empty()
        self.wait(lambda: "DELETED " in self.graph_log(), "the draft's deletion")
        self.assertEqual(self.graph.counters()["drafts"], 0, "the draft that was not sent stayed in Drafts")

    def test_without_mail_readwrite_the_mailbox_waits_with_the_fix(self):
        self.graph_stack(graph_kwargs={"mail_readwrite": False})
        message = graph_message(SCANNER_ID, "graph no readwrite", to=[RCPT])
        self.send(message, [RCPT])
        self.wait_log(r"upstream mailbox %s is unavailable" % re.escape(UPSTREAM_MAILBOX),
                      "the mailbox marked unavailable")
        self.assertIn("Mail.ReadWrite", self.relay_log())
        self.assertIn("save_to_sent_items = true", self.relay_log())
        self.assert_waiting("without Mail.ReadWrite")
        self.assertNotIn("status=bounced", self.relay_log())

    def graph_log(self):
        try:
            with open(os.path.join(self.graph.state_dir, "graph.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


if __name__ == "__main__":
    sys.exit("run through run_tests.py")
