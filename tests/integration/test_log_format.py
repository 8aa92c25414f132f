"""[log] format = "json": every line the relay writes is one JSON object
with the time, the level, the whole message and its key=value fields, so
that Loki or Elastic can index accepted messages and delivery attempts by
queue id. The text format stays the default; no secret reaches either."""
import json

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD


def entries(log):
    """Every line of the relay's log as JSON (the harness's own "==== start"
    markers aside); fails on a line that is not a JSON object."""
    out = []
    for line in log.decode("utf-8").splitlines():
        if line.startswith("==== start "):
            continue
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        out.append(entry)
    return out


class JsonLogTest(harness.IntegrationCase):
    def test_every_line_is_json_with_the_fields_of_the_text(self):
        relay = self.full_stack([harness.scanner_account()], extra_sections={"log": {"format": "json"}})
        self.assertEqual(harness.auth_reply(relay, SCANNER_ID, "wrong-password")[:3], "535")
        d = relay.data_dialogue(SCANNER_ID, SCANNER_PASSWORD, SCANNER_ID, ["dest@example.org"])
        d.send_raw(harness.dot_stuff(harness.make_message(SCANNER_ID, "dest@example.org", "json log")))
        reply = d.read_reply()[-1]
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as ")
        qid = reply.split()[-1]
        d.close()
        self.upstream.wait_messages(1)
        harness.wait_for(lambda: any(e.get("id") == qid and e.get("status") == "sent" for e in entries(relay.log())),
                         what="the delivery's log line")

        log = entries(relay.log())
        for e in log:
            self.assertEqual(set(e) >= {"time", "level", "msg"}, True, e)
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
            self.assertIn(e["level"], {"trace", "debug", "info", "warning", "error", "critical"})
        accepted = [e for e in log if e["msg"].startswith("accepted ")]
        self.assertEqual(len(accepted), 1, accepted)
        self.assertEqual({k: accepted[0][k] for k in ("id", "account", "client", "from", "to")},
                         {"id": qid, "account": SCANNER_ID, "client": "127.0.0.1", "from": "<%s>" % SCANNER_ID,
                          "to": "<dest@example.org>"})
        sent = [e for e in log if e.get("id") == qid and e.get("status") == "sent"]
        self.assertEqual(len(sent), 1, sent)
        self.assertEqual(sent[0]["account"], SCANNER_ID)
        self.assertTrue(sent[0]["reply"].startswith("250"), sent[0])
        failed = [e for e in log if e["msg"].startswith("auth failed: ")]
        self.assertEqual([(e["account"], e["client"], e["mechanism"]) for e in failed],
                         [(SCANNER_ID, "127.0.0.1", "PLAIN")])
        raw = relay.log()
        self.assertNotIn(b"wrong-password", raw)
        self.assertNotIn(SCANNER_PASSWORD.encode(), raw)
        self.assertNotIn(harness.CLIENT_SECRET.encode(), raw)

    def test_text_stays_the_default_and_a_wrong_format_is_named(self):
        relay = self.full_stack([harness.scanner_account()])
        self.assertRegex(relay.log(), rb"(?m)^\d{4}-\d\d-\d\dT\S+ info subrelay \S+ ready as ")
        self.assertNotRegex(relay.log(), rb"(?m)^\{")
        relay.stop()
        bad = self.make_relay([harness.scanner_account()], extra_sections={"log": {"format": "xml"}})
        code, out, err = harness.run_cli(["check-config"], config=bad.config_path)
        self.assertEqual(code, 1, out + err)
        self.assertIn("%s: log.format: " % bad.config_path, err + out)
