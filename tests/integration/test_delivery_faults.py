"""Delivery when the upstream (or the token endpoint) misbehaves: every test
ends by accounting for every message it sent: delivered at the upstream,
still queued in the relay's spool, or bounced (a delivery status
notification arrived at the upstream for the sender). Never vanished."""
import os
import re
import sys
import threading
import time

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD, UPSTREAM_MAILBOX

QUEUE_FAST = {"max_lifetime_seconds": 3600, "delay_warning_seconds": 0}


class FaultCase(harness.IntegrationCase):
    """Shared steps: sending numbered messages and accounting for them."""

    def new_messages(self, count, subject, rcpt="dest@example.org"):
        return [harness.make_message(SCANNER_ID, rcpt, "%s %d" % (subject, i)) for i in range(count)]

    def send(self, message, rcpts):
        harness.smtplib_send(self.relay, message, rcpts)  # raises unless every step got its 2xx

    def ledger(self, sent):
        return harness.account_for(self.relay, self.upstream, sent)

    def wait_delivered(self, sent, timeout=harness.DEFAULT_TIMEOUT, what="delivery"):
        """Waits until every message reached the upstream and left the spool."""
        def done():
            report = self.ledger(sent)
            if all(e["delivered"] >= 1 for e in report.values()) and not self.relay.queued_ids():
                return report
            return None
        return harness.wait_for(done, timeout=timeout, interval=0.2, what=what)

    def assert_accounted(self, report, label=""):
        """Every message is somewhere; prints a one-line summary."""
        lost = [mid for mid, e in report.items() if e["delivered"] + e["queued"] + e["bounced"] == 0]
        dups = sum(max(0, e["delivered"] - 1) for e in report.values())
        summary = ("[%s%s] %d message(s): %d delivered, %d duplicate cop(ies), %d queued, %d bounced"
                   % (self.id().rsplit(".", 1)[-1], (" " + label) if label else "", len(report),
                      sum(1 for e in report.values() if e["delivered"]), dups,
                      sum(1 for e in report.values() if e["queued"]),
                      sum(1 for e in report.values() if e["bounced"])))
        sys.stdout.write("\n  " + summary + "\n")
        sys.stdout.flush()
        self.assertEqual(lost, [], "message(s) vanished: neither delivered, queued nor bounced. " + summary)
        return dups

    def assert_each_delivered_once(self, report):
        for mid, e in report.items():
            self.assertEqual(e["delivered"], 1, "%s delivered %d times" % (mid, e["delivered"]))

    def assert_stays_delivered_once(self, sent, settle=3.0):
        """After a pause longer than retry_max_seconds, nothing is sent again."""
        time.sleep(settle)
        report = self.ledger(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        self.assertEqual(self.relay.queued_ids(), [], "the spool should be empty")
        return report

    def stack(self, upstream_kwargs=None, start_upstream=True, queue=None, upstream_config=None,
              **relay_kwargs):
        self.start_token()
        if start_upstream:
            self.start_upstream(**(upstream_kwargs or {}))
        else:
            self.make_upstream(**(upstream_kwargs or {}))
        extra = relay_kwargs.pop("extra_sections", {})
        extra.setdefault("queue", dict(QUEUE_FAST, **(queue or {})))
        if upstream_config:
            extra.setdefault("upstream", {}).update(upstream_config)
        relay = self.make_relay([harness.scanner_account()], extra_sections=extra, **relay_kwargs)
        self.start_relay(relay)
        return relay

    def dsn_parts(self, eml):
        """(the notice's text, its delivery-status part) as str."""
        text = eml.decode("utf-8", "replace")
        m = re.search(r"(?is)content-type:\s*message/delivery-status.*?\r\n\r\n(.*?)\r\n--", text)
        self.assertIsNotNone(m, "no message/delivery-status part in the notice:\n" + text[:3000])
        return text, m.group(1)


class UpstreamDownTest(FaultCase):
    def test_refusing_connections_then_started_delivers_all_once(self):
        relay = self.stack(start_upstream=False)   # the upstream's port refuses connections
        sent = self.new_messages(3, "down")
        for m in sent:
            self.send(m, ["dest@example.org"])
        # The upstream mailbox is unavailable: its messages wait, no attempt
        # of theirs is counted, nothing is lost meanwhile.
        harness.wait_for(lambda: b"is unavailable" in relay.log(), what="the upstream mailbox marked unavailable")
        self.assertIn(b"upstream connection for " + UPSTREAM_MAILBOX.encode() + b" failed", relay.log())
        self.assertEqual(len(relay.queued_ids()), 3)
        self.assertEqual(relay.state_files(), [], "a failure of the connection is not an attempt of a message")
        self.start_upstream(self.upstream)
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        self.assert_stays_delivered_once(sent)
        self.assertEqual(relay.state_files(), [], "delivered messages keep no state file")


class PooledConnectionGoneTest(FaultCase):
    def test_upstream_restart_between_messages_costs_no_retry_delay(self):
        """Exchange closes idle sessions and restarts servers. The pooled
        connection it closed used to fail the next message, which then waited
        retry_initial_seconds (here 300 s); it now goes at once over a new
        connection, with no attempt counted."""
        relay = self.stack(upstream_config={"retry_initial_seconds": 300, "retry_max_seconds": 600})
        first, second = self.new_messages(2, "pooled")
        self.send(first, ["dest@example.org"])
        self.wait_delivered([first], what="the first message")
        self.upstream.stop()                      # the relay's idle connection dies with it
        self.start_upstream(self.upstream)
        self.send(second, ["dest@example.org"])
        # (The restarted upstream numbers its messages anew: count only the second.)
        report = self.wait_delivered([second], timeout=15, what="the second message, at once")
        self.assert_each_delivered_once(report)
        self.assertIn(b"the pooled connection was gone", relay.log())
        self.assertEqual(relay.state_files(), [], "no attempt was recorded")


class ConnectionOutlivesTokenTest(FaultCase):
    def test_a_connection_is_not_reused_after_its_token_expired(self):
        """A pooled connection kept delivering after the token it had
        authenticated with expired (Exchange may end such a session at any
        moment, mid-transaction). It now says QUIT, and the next message goes
        over a new connection with a current token."""
        self.start_token(expires_in=4)
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], extra_sections={"queue": dict(QUEUE_FAST)})
        self.start_relay(relay)
        first, second = self.new_messages(2, "token age")
        self.send(first, ["dest@example.org"])
        self.wait_delivered([first], what="the first message")
        self.assertEqual(self.upstream.counters().get("connections"), 1)
        # The event is the token's expiry (4 s after it was issued); the pooled
        # connection would wait 10 s for more work.
        harness.time.sleep(4.5)
        self.send(second, ["dest@example.org"])
        report = self.wait_delivered([first, second], what="the second message")
        self.assert_each_delivered_once(report)
        self.assertEqual(self.upstream.counters().get("connections"), 2, "the expired connection was reused")
        self.assertIn(b"token expired or connection too old", relay.log())
        self.assertGreaterEqual(self.token.counters()["issued"], 2, "a current token for the new connection")


class UpstreamDropsDuringDataTest(FaultCase):
    def test_connection_closed_mid_data_is_retried(self):
        relay = self.stack(upstream_kwargs={"drop_data": 1})
        # The first is large (about 2 MiB), so the relay is still writing it when the connection breaks.
        sent = [harness.make_message(SCANNER_ID, "dest@example.org", "dropped large",
                                     body_lines=["%06d " % i + "y" * 200 for i in range(10000)])]
        self.send(sent[0], ["dest@example.org"])
        harness.wait_for(lambda: self.upstream.counters().get("data_dropped"), what="the broken DATA")
        sent += self.new_messages(1, "dropped")
        self.send(sent[1], ["dest@example.org"])
        self.wait_delivered(sent)
        self.assertEqual(self.upstream.counters()["data_dropped"], 1)
        report = self.assert_stays_delivered_once(sent)
        self.assert_accounted(report)
        self.assertIn(b"status=deferred", relay.log(), "the dropped attempt should be logged as deferred")


class UpstreamTempfailDataTest(FaultCase):
    def test_4xx_then_250_delivers_once(self):
        relay = self.stack(upstream_kwargs={"tempfail_data": 1})
        sent = self.new_messages(1, "tempfail")
        self.send(sent[0], ["dest@example.org"])
        self.wait_delivered(sent)
        self.assertEqual(self.upstream.counters()["data_tempfailed"], 1)
        self.assert_stays_delivered_once(sent)
        self.assertRegex(relay.log().decode("utf-8", "replace"), r"status=deferred reply=\"451 4\.3\.0")


class RecipientRefusedTest(FaultCase):
    def test_5xx_for_one_of_three_recipients_bounces_that_one(self):
        relay = self.stack(upstream_kwargs={"reject_rcpt": ["nobody@example.org"]})
        rcpts = ["first@example.org", "nobody@example.org", "third@example.org"]
        message = harness.make_message(SCANNER_ID, "first@example.org", "one refused")
        self.send(message, rcpts)

        def settled():
            e = self.ledger([message])[harness.message_id(message)]
            return e if e["delivered"] and e["bounced"] and not relay.queued_ids() else None
        harness.wait_for(settled, what="the delivery to two recipients and the bounce")
        time.sleep(3)   # longer than retry_max_seconds: nothing more may arrive
        report = self.ledger([message])
        self.assert_accounted(report)
        e = report[harness.message_id(message)]
        self.assertEqual(e["delivered"], 1, "the message should reach the upstream once")
        self.assertEqual(sorted(e["rcpts"]), ["first@example.org", "third@example.org"])
        self.assertEqual(e["bounced"], 1, "exactly one notice")
        self.assertEqual(relay.queued_ids(), [], "the message (and its notice) should leave the spool")

        [dsn_meta] = e["bounce_metas"]
        self.assertIn(dsn_meta["mail_from"], ("", "<>"), "the notice goes out with MAIL FROM:<>")
        self.assertEqual(dsn_meta["rcpt_tos"], [SCANNER_ID], "the notice goes to the original sender")
        self.assertEqual(dsn_meta["mailbox"], UPSTREAM_MAILBOX, "through the same upstream mailbox")
        [dsn] = [eml for eml, meta in self.upstream.messages() if harness.is_dsn(eml, meta)]
        body = harness.split_leading_received(dsn)[1]
        ctype = harness.header_value(body, "Content-Type")
        self.assertRegex(ctype, r"(?i)multipart/report")
        self.assertRegex(ctype, r"(?i)report-type=\"?delivery-status")
        self.assertEqual(harness.header_value(body, "To").strip(), "<%s>" % SCANNER_ID)
        # From: the upstream mailbox that sends it: Exchange refuses any
        # address it was not granted Send As for (5.7.60).
        self.assertEqual(harness.header_value(body, "From").strip(),
                         "\"Mail Delivery System\" <%s>" % UPSTREAM_MAILBOX)
        _, status = self.dsn_parts(body)
        self.assertRegex(status, r"(?im)^Final-Recipient:\s*rfc822;\s*nobody@example\.org\s*$")
        self.assertRegex(status, r"(?im)^Action:\s*failed\s*$")
        self.assertRegex(status, r"(?im)^Status:\s*5\.\d{1,3}\.\d{1,3}\s*$")
        for ok in ("first@example.org", "third@example.org"):
            self.assertNotIn(ok, status, "only the refused recipient belongs in the notice")
        self.assertIn(harness.message_id(message).encode(), body, "the notice returns the original's headers")


class ConcurrencyLimitTest(FaultCase):
    """The fake upstream enforces Exchange's 3 connections per mailbox."""

    def submit_in_parallel(self, relay, messages, clients):
        """Sends `messages` from `clients` parallel sessions (several messages per session)."""
        errors = []
        batches = [messages[i::clients] for i in range(clients)]

        def client(batch):
            import smtplib
            try:
                s = smtplib.SMTP("127.0.0.1", relay.submission_port, timeout=60)
                s.ehlo("scanner.contoso.test")
                s.starttls(context=relay.client_tls_context())
                s.ehlo("scanner.contoso.test")
                s.login(SCANNER_ID, SCANNER_PASSWORD)
                for m in batch:
                    refused = s.sendmail(SCANNER_ID, ["dest@example.org"], m)
                    if refused:
                        errors.append(refused)
                s.quit()
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [], "submission failed")

    def run_with(self, max_connections):
        # Each message holds its connection a moment, so that 20 messages
        # arriving together need every connection the relay may open.
        relay = self.stack(upstream_kwargs={"max_auth_connections": 3, "slow_data": True,
                                            "slow_count": 0, "slow_seconds": 0.3},
                           upstream_config={"max_connections_per_mailbox": max_connections})
        sent = self.new_messages(20, "parallel")
        self.submit_in_parallel(relay, sent, clients=10)
        return relay, sent

    def test_three_connections_never_trigger_432(self):
        relay, sent = self.run_with(3)
        report = self.wait_delivered(sent, timeout=60)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        counters = self.upstream.counters()
        self.assertEqual(counters["concurrency_refused"], 0, "the relay exceeded 3 connections: %r" % counters)
        self.assertLessEqual(counters["max_authenticated_per_mailbox"], 3)
        self.assertNotIn(b"throttled", relay.log())

    def test_five_connections_get_432_but_lose_nothing(self):
        relay, sent = self.run_with(5)
        # The lane pauses for a minute after a 432; connections already open
        # go on. Wait for all to arrive, or else settle for "queued".
        try:
            self.wait_delivered(sent, timeout=40)
        except AssertionError:
            pass
        report = self.ledger(sent)
        self.assert_accounted(report, "max_connections_per_mailbox=5")
        for mid, e in report.items():
            self.assertLessEqual(e["delivered"], 1, "%s delivered twice" % mid)
        counters = self.upstream.counters()
        self.assertGreaterEqual(counters["concurrency_refused"], 1,
                                "expected the misconfigured relay to trigger 432: %r" % counters)
        self.assertLessEqual(counters["max_authenticated_per_mailbox"], 3)
        log = relay.log().decode("utf-8", "replace")
        self.assertIn("432 4.3.2", log)
        self.assertIn("is throttled", log)
        self.assertIn("max_connections_per_mailbox", log, "the log should name the fix")
        self.assertEqual(relay.stop(), 0)
        report = self.ledger(sent)
        self.assert_accounted(report, "after SIGTERM")


class RateLimitTest(FaultCase):
    def test_relay_keeps_under_the_upstream_message_rate(self):
        relay = self.stack(upstream_kwargs={"max_messages_per_minute": 5},
                           upstream_config={"max_messages_per_minute": 5})
        sent = self.new_messages(8, "rate")
        for m in sent:
            self.send(m, ["dest@example.org"])
        harness.wait_for(lambda: len(self.upstream.messages()) >= 5, what="the first 5 messages")
        time.sleep(2)
        report = self.ledger(sent)
        self.assert_accounted(report)
        self.assertEqual(sum(e["delivered"] for e in report.values()), 5,
                         "the relay should send 5 a minute and keep the rest")
        self.assertEqual(len(relay.queued_ids()), 3)
        self.assertEqual(self.upstream.counters()["rate_limited"], 0, "the upstream had to refuse")
        # Shutting down must not push the waiting messages out past the limit.
        self.assertEqual(relay.stop(), 0)
        report = self.ledger(sent)
        self.assert_accounted(report, "after SIGTERM")
        self.assertEqual(self.upstream.counters()["rate_limited"], 0,
                         "messages waiting for the rate were sent at shutdown and refused")
        self.assertEqual(sum(e["delivered"] for e in report.values()), 5,
                         "messages waiting for the rate limit were sent at shutdown")


class TokenEndpointFailingTest(FaultCase):
    def test_token_refused_keeps_messages_queued_until_fixed(self):
        # The endpoint expects another secret than the relay has: invalid_client.
        self.start_token(client_secret="a-different-secret-than-configured")
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], extra_sections={"queue": dict(QUEUE_FAST)})
        self.start_relay(relay)
        sent = self.new_messages(2, "token")
        for m in sent:
            self.send(m, ["dest@example.org"])
        harness.wait_for(lambda: self.token.counters().get("refused", 0) >= 2,
                         what="the relay to try the token endpoint twice")
        report = self.ledger(sent)
        self.assert_accounted(report, "token refused")
        for e in report.values():
            self.assertEqual((e["delivered"], e["bounced"], e["queued"]), (0, 0, 1))
        log = relay.log().decode("utf-8", "replace")
        self.assertRegex(log, r"invalid_client|AADSTS7000215", "the log should carry the endpoint's reason")
        self.assertNotIn(harness.CLIENT_SECRET, log)
        listed = relay.queue_list()
        if listed is not None:   # `subrelay queue list --json` is available
            self.assertEqual(len(listed), 2)
            for row in listed:
                # A failure of the upstream mailbox, not of the messages.
                self.assertEqual(row["attempts"], 0)

        # Fixed: the endpoint now expects the right secret.
        self.token.stop()
        with open(self.token.secret_file, "w") as f:
            f.write(harness.CLIENT_SECRET)
        self.token.start()
        self._track(self.token)
        report = self.wait_delivered(sent)
        self.assert_accounted(report, "fixed")
        self.assert_stays_delivered_once(sent)

    def test_token_endpoint_down_keeps_messages_queued(self):
        relay = self.stack()
        self.token.stop()
        sent = self.new_messages(1, "token down")
        self.send(sent[0], ["dest@example.org"])
        harness.wait_for(lambda: b"is unavailable" in relay.log(), what="the upstream mailbox marked unavailable")
        time.sleep(1.5)
        report = self.ledger(sent)
        self.assert_accounted(report, "endpoint down")
        self.assertEqual(list(report.values())[0]["queued"], 1)
        self.assertRegex(relay.log().decode("utf-8", "replace"), r"token request to \S+ failed: .*[Cc]onnect")
        self.token.start()
        self._track(self.token)
        self.wait_delivered(sent)
        self.assert_stays_delivered_once(sent)


class QueueLifetimeTest(FaultCase):
    def test_expired_message_bounces_and_leaves_the_spool(self):
        relay = self.stack(upstream_kwargs={"tempfail_rcpt": ["later@example.org"]},
                           queue={"max_lifetime_seconds": 3})
        message = harness.make_message(SCANNER_ID, "later@example.org", "expires")
        self.send(message, ["later@example.org"])
        mid = harness.message_id(message)

        def bounced():
            e = self.ledger([message])[mid]
            return e if e["bounced"] and not relay.queued_ids() else None
        harness.wait_for(bounced, timeout=30, what="the bounce after the queue lifetime")
        report = self.ledger([message])
        self.assert_accounted(report)
        e = report[mid]
        self.assertEqual((e["delivered"], e["bounced"], e["queued"]), (0, 1, 0))
        self.assertGreaterEqual(self.upstream.counters()["rcpt_tempfailed"], 1)
        [meta] = e["bounce_metas"]
        self.assertIn(meta["mail_from"], ("", "<>"))
        self.assertEqual(meta["rcpt_tos"], [SCANNER_ID])
        [dsn] = [eml for eml, m in self.upstream.messages() if harness.is_dsn(eml, m)]
        _, status = self.dsn_parts(harness.split_leading_received(dsn)[1])
        self.assertRegex(status, r"(?im)^Final-Recipient:\s*rfc822;\s*later@example\.org\s*$")
        self.assertRegex(status, r"(?im)^Action:\s*failed\s*$")
        # RFC 3463: 4.4.7 "delivery time expired" (what Postfix reports too).
        self.assertRegex(status, r"(?im)^Status:\s*4\.4\.7\s*$")
        self.assertIn(b"status=expired", relay.log())
        time.sleep(2.5)
        self.assertEqual(len(self.upstream.messages()), 1, "one notice, nothing else")


class DelayWarningTest(FaultCase):
    def test_one_delay_notice_while_the_message_waits(self):
        relay = self.stack(upstream_kwargs={"tempfail_rcpt": ["later@example.org"]},
                           queue={"max_lifetime_seconds": 3600, "delay_warning_seconds": 2})
        message = harness.make_message(SCANNER_ID, "later@example.org", "delayed")
        self.send(message, ["later@example.org"])

        def notices():
            return [(eml, m) for eml, m in self.upstream.messages() if harness.is_dsn(eml, m)]
        harness.wait_for(lambda: notices(), timeout=30, what="the delay notice")
        [(dsn, meta)] = notices()
        self.assertIn(meta["mail_from"], ("", "<>"))
        self.assertEqual(meta["rcpt_tos"], [SCANNER_ID])
        text, status = self.dsn_parts(harness.split_leading_received(dsn)[1])
        self.assertRegex(status, r"(?im)^Action:\s*delayed\s*$")
        self.assertRegex(status, r"(?im)^Final-Recipient:\s*rfc822;\s*later@example\.org\s*$")
        # Still queued, still retried, and warned once only.
        time.sleep(4)
        self.assertEqual(len(relay.queued_ids()), 1)
        self.assertEqual(len(notices()), 1, "the delay notice goes out once")


class AuthNoneTest(FaultCase):
    def make_auth_none_relay(self, with_oauth):
        upstream = self.start_upstream(no_auth=True)
        kwargs = {"extra_sections": {"upstream": {"auth": "none"}, "queue": dict(QUEUE_FAST)}}
        if with_oauth:
            kwargs["token_url"] = self.token.url
        else:
            kwargs["omit_sections"] = ("oauth",)
        relay = harness.Relay(os.path.join(self.workdir, "relay"), self.pki, [harness.scanner_account()],
                              upstream_port=upstream.port, **kwargs)
        self.log_files.append(relay.log_path)
        self.relay = relay
        with open(relay.config_path) as f:
            self.assertEqual("[oauth]" in f.read(), with_oauth)
        self.start_relay(relay)
        return relay

    def check_delivered_without_auth(self):
        sent = self.new_messages(2, "no auth")
        for m in sent:
            self.send(m, ["dest@example.org"])
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        counters = self.upstream.counters()
        self.assertEqual(counters["auth_attempts"], 0, "the relay sent AUTH to an upstream without it")
        self.assertGreaterEqual(counters["starttls"], 1, "STARTTLS is still used")
        for eml, meta in self.upstream.messages():
            self.assertIsNone(meta["token"])

    def test_auth_none_without_oauth_section(self):
        self.make_auth_none_relay(with_oauth=False)
        self.check_delivered_without_auth()

    def test_auth_none_fetches_no_token(self):
        self.start_token()
        self.make_auth_none_relay(with_oauth=True)
        self.check_delivered_without_auth()
        self.assertEqual(self.token.counters()["requests"], 0, "a token was fetched with upstream.auth = none")


class SpoolFreeSpaceTest(FaultCase):
    def test_min_free_bytes_refuses_mail_with_452(self):
        relay = self.stack(extra_sections={"spool": {"min_free_bytes": 10 ** 18}})
        d = relay.authenticated_dialogue(SCANNER_ID, SCANNER_PASSWORD)
        d.send("MAIL FROM:<%s>" % SCANNER_ID)
        d.expect("452 4.3.1 Insufficient system storage")
        # The session goes on (a 4xx is not the end): RSET and QUIT work.
        d.send("RSET")
        d.expect("250 *")
        d.send("QUIT")
        d.expect("221 *")
        d.close()
        self.assertEqual(relay.queued_ids(), [])
        self.assertEqual(relay.spool_tmp_files(), [])
        self.assertEqual(self.upstream.messages(), [])
        self.assertRegex(relay.log().decode("utf-8", "replace"), r"min_free_bytes")
