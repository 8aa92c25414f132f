"""The admin listener ([admin] listen): /metrics after real traffic (checked
by value and by Debian's promtool), /metrics against `subrelay queue list`
while the upstream is down, /readyz following the token endpoint, /healthz,
404 and 405, and the Grafana dashboard in contrib/ naming only metrics that
a scrape has."""
import json
import os
import re
import subprocess

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD, UPSTREAM_MAILBOX, metric

DASHBOARD = os.path.join(harness.HERE, "..", "..", "contrib", "grafana", "subrelay-dashboard.json")
OTHER_ID = "printer@contoso.com"
OTHER_PASSWORD = "Printer-Passw0rd!0815"
OTHER_MAILBOX = "printers@contoso.com"


class AdminCase(harness.IntegrationCase):
    def declared(self, body):
        """The metric names a scrape declares (# TYPE lines)."""
        return set(re.findall(r"^# TYPE (\S+) ", body, re.M))

    def refused_rcpt(self, rcpt):
        """Logs in, gives MAIL and one refused RCPT; returns the RCPT's reply code."""
        d = self.relay.tls_dialogue()
        try:
            d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
            d.expect("235 *")
            d.send("MAIL FROM:<%s>" % SCANNER_ID)
            d.expect("250 *")
            d.send("RCPT TO:<%s>" % rcpt)
            reply = d.read_reply()[-1]
            d.send("QUIT")
            return int(reply[:3])
        finally:
            d.close()


class MetricsTest(AdminCase):
    def test_refusals_by_the_smtp_layer_are_counted(self):
        """A MAIL before AUTH (530) and a DATA without a recipient are refused
        by the protocol itself, not by the policy: counted all the same."""
        relay = self.full_stack([harness.scanner_account()], admin=True)
        d = relay.tls_dialogue()
        try:
            d.send("MAIL FROM:<%s>" % SCANNER_ID)
            d.expect("530 5.7.57 *")
            d.send("AUTH PLAIN " + harness.plain_credentials(SCANNER_ID, SCANNER_PASSWORD))
            d.expect("235 *")
            d.send("MAIL FROM:<%s>" % SCANNER_ID)
            d.expect("250 *")
            d.send("DATA")
            data_code = d.read_reply()[-1][:3]
            d.send("QUIT")
        finally:
            d.close()
        self.assertIn(data_code[0], "45")
        samples, _ = relay.metrics()
        self.assertEqual(metric(samples, "subrelay_messages_total", result="refused", stage="mail", code="530"), 1)
        self.assertEqual(metric(samples, "subrelay_messages_total", result="refused", stage="data", code=data_code), 1)

    def test_metrics_count_real_traffic_and_pass_promtool(self):
        relay = self.full_stack([harness.scanner_account(settings={"allowed_recipient_domains": ["example.org"]})], admin=True)
        # The harness's own readiness probes connected before: counted from here.
        before, _ = relay.metrics()
        listener = "submission 127.0.0.1:%d" % relay.submission_port
        # A wrong password, an accepted message delivered upstream, a refused RCPT.
        self.assertTrue(harness.auth_reply(relay, SCANNER_ID, "not-the-password").startswith("535 "))
        message = harness.make_message(SCANNER_ID, "dest@example.org", "measured")
        harness.smtplib_send(relay, message, ["dest@example.org"])
        self.upstream.wait_messages(1)
        code = self.refused_rcpt("someone@elsewhere.test")
        self.assertGreaterEqual(code, 500)

        # The delivery counts its attempt once the upstream has answered.
        samples, body = harness.wait_for(
            lambda: (lambda m: m if metric(m[0], "subrelay_delivery_attempts_total", result="sent",
                                           reply_class="2xx") == 1 else None)(relay.metrics()),
            what="the delivery attempt in /metrics")
        self.assertEqual(metric(samples, "subrelay_auth_total", result="bad_credentials"), 1)
        self.assertEqual(metric(samples, "subrelay_auth_total", result="ok"), 2)
        self.assertEqual(metric(samples, "subrelay_messages_total", result="accepted", stage="data", code="250"), 1)
        self.assertEqual(metric(samples, "subrelay_messages_total", result="refused", stage="rcpt", code=str(code)), 1)
        self.assertGreaterEqual(metric(samples, "subrelay_accepted_bytes_total"), len(message))
        self.assertEqual(metric(samples, "subrelay_connections_total", listener=listener, outcome="accepted") -
                         metric(before, "subrelay_connections_total", listener=listener, outcome="accepted"), 3)
        handshakes = sum(v for (name, _), v in samples.items() if name == "subrelay_tls_handshakes_total")
        handshakes_before = sum(v for (name, _), v in before.items() if name == "subrelay_tls_handshakes_total")
        self.assertEqual(handshakes - handshakes_before, 3)
        self.assertEqual(metric(samples, "subrelay_delivery_latency_seconds_count"), 1)
        self.assertEqual(metric(samples, "subrelay_delivery_latency_seconds_bucket", le="+Inf"), 1)
        self.assertGreaterEqual(metric(samples, "subrelay_token_requests_total", profile="default"), 1)
        self.assertEqual(metric(samples, "subrelay_queue_messages", upstream_mailbox=UPSTREAM_MAILBOX), 0)
        self.assertGreater(metric(samples, "subrelay_spool_free_bytes"), 0)
        self.assertEqual(metric(samples, "subrelay_policy_reloads_total"), 0)
        # No secret in the exposition.
        self.assertNotIn(harness.CLIENT_SECRET, body)
        self.assertNotIn(SCANNER_PASSWORD, body)

        status, headers, _ = relay.admin_request("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        promtool = harness.require_tool("promtool")
        check = subprocess.run([promtool, "check", "metrics"], input=body.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(check.returncode, 0, "promtool check metrics:\n" + check.stdout.decode())

    def test_queue_list_and_metrics_agree_while_the_upstream_is_down(self):
        self.start_token()
        self.make_upstream()  # never started: every connection is refused
        relay = self.make_relay([harness.scanner_account(),
                                 harness.Account(OTHER_ID, OTHER_PASSWORD, disabled=False,
                                                 upstream_mailbox=OTHER_MAILBOX)], admin=True)
        self.start_relay(relay)
        for i in range(2):
            harness.smtplib_send(relay, harness.make_message(SCANNER_ID, "dest@example.org", "down %d" % i),
                                 ["dest@example.org"])
        harness.smtplib_send(relay, harness.make_message(OTHER_ID, "dest@example.org", "down other"),
                             ["dest@example.org"], sender=OTHER_ID, identity=OTHER_ID, password=OTHER_PASSWORD)

        def agreed():
            listed = relay.queue_list()
            samples, _ = relay.metrics()
            if listed is None or len(listed) != 3:
                return None
            per_mailbox = {}
            for m in listed:
                per_mailbox[m["upstream_mailbox"]] = per_mailbox.get(m["upstream_mailbox"], 0) + 1
            scraped = {dict(labels)["upstream_mailbox"]: v for (name, labels), v in samples.items()
                       if name == "subrelay_queue_messages" and v > 0}
            if scraped != per_mailbox:
                return None
            # Each lane has tried its upstream and failed by now.
            if metric(samples, "subrelay_delivery_attempts_total", result="connection_failed", reply_class="none") < 2:
                return None
            return listed, samples, per_mailbox

        listed, samples, per_mailbox = harness.wait_for(agreed, what="queue list and /metrics to agree")
        self.assertEqual(per_mailbox, {UPSTREAM_MAILBOX: 2, OTHER_MAILBOX: 1})
        oldest = max(m["age_seconds"] for m in listed if m["upstream_mailbox"] == UPSTREAM_MAILBOX)
        scraped_age = metric(samples, "subrelay_queue_oldest_message_age_seconds", upstream_mailbox=UPSTREAM_MAILBOX)
        self.assertGreaterEqual(scraped_age, 0)
        self.assertLessEqual(abs(scraped_age - oldest), 60)
        self.assertEqual(metric(samples, "subrelay_delivery_attempts_total", result="sent", reply_class="2xx"), 0)


class ReadinessTest(AdminCase):
    def test_readyz_names_the_token_until_the_endpoint_gives_one(self):
        # The first token request is refused (invalid_client), the next ones succeed.
        self.start_token(errors=["7000215"])
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], admin=True)
        self.start_relay(relay)

        status, headers, body = relay.admin_request("/readyz")
        self.assertEqual(status, 503, body)
        self.assertEqual(headers["content-type"], "application/json")
        report = json.loads(body)
        self.assertFalse(report["ready"])
        self.assertEqual(report["not_ready"], ["token:default"])
        self.assertEqual(report["tokens"][0]["error"], "configuration")
        self.assertTrue(report["spool"])
        self.assertTrue(report["policy"])
        self.assertNotIn(harness.CLIENT_SECRET, body)

        # After the provider's backoff the next request gets a token.
        body = harness.wait_for(lambda: (lambda r: r[2] if r[0] == 200 else None)(relay.admin_request("/readyz")),
                                what="/readyz to answer 200")
        self.assertEqual(json.loads(body)["not_ready"], [])
        for token in self.token.tokens():
            self.assertNotIn(token, body)
        samples, _ = relay.metrics()
        self.assertEqual(metric(samples, "subrelay_token_failures_total", profile="default", error="configuration"), 1)
        self.assertGreaterEqual(metric(samples, "subrelay_token_requests_total", profile="default"), 2)

    def test_health_unknown_paths_methods_and_the_dashboard(self):
        relay = self.make_relay([harness.scanner_account()], kind="directory", admin=True)
        self.start_relay(relay)
        status, _, body = relay.admin_request("/healthz")
        self.assertEqual((status, body), (200, "ok\n"))
        status, _, body = relay.admin_request("/readyz")
        self.assertEqual(status, 200, body)
        self.assertEqual(relay.admin_request("/nothing-here")[0], 404)
        status, headers, _ = relay.admin_request("/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET")
        self.assertEqual(relay.admin_request("/healthz", method="DELETE")[0], 405)

        # Every metric the dashboard queries is declared by a scrape.
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        exprs = []

        def walk(panels):
            for p in panels:
                exprs.extend(t["expr"] for t in p.get("targets", []))
                walk(p.get("panels", []))
        walk(dashboard["panels"])
        for v in dashboard.get("templating", {}).get("list", []):
            if isinstance(v.get("query"), str):
                exprs.append(v["query"])
        named = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"\bsubrelay_\w+", e)}
        self.assertGreater(len(named), 10)
        _, body = relay.metrics()
        self.assertEqual(named - self.declared(body), set())
        titles = " ".join(p["title"].lower() for p in dashboard["panels"])
        for word in ("queue", "refused", "token"):
            self.assertIn(word, titles)
