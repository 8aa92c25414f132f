"""upstream.kind = "directory": each message lands as out/<id>.eml + out/<id>.json."""
import harness
from harness import SCANNER_ID


class DirectoryUpstreamTest(harness.IntegrationCase):
    def test_directory_upstream(self):
        relay = self.make_relay([harness.scanner_account(allowed_senders=[SCANNER_ID, "scans@contoso.com"])],
                                kind="directory")
        self.start_relay(relay)
        first = harness.make_message("scans@contoso.com", "a@example.org", "directory one")
        second = harness.make_message(SCANNER_ID, "c@example.org", "directory two",
                                      body_lines=["no final newline handling needed", ".", ".."])
        harness.smtplib_send(relay, first, ["a@example.org", "b@example.org"], sender="scans@contoso.com")
        harness.smtplib_send(relay, second, ["c@example.org"], implicit_tls=True)
        out = harness.wait_for(lambda: len(relay.directory_messages()) >= 2 and relay.directory_messages(),
                               what="2 messages in the directory upstream")
        self.assertEqual(len(out), 2)
        by_body = {harness.split_leading_received(eml)[1]: (eml, meta, mid) for eml, meta, mid in out}
        self.assertEqual(set(by_body), {first, second})

        eml, meta, _ = by_body[first]
        self.assert_relayed(eml, first, None, None)
        self.assertEqual({k: meta.get(k) for k in ("sender", "recipients", "identity")},
                         {"sender": "scans@contoso.com",
                          "recipients": ["a@example.org", "b@example.org"],
                          "identity": SCANNER_ID})
        eml, meta, _ = by_body[second]
        self.assert_relayed(eml, second, None, None)
        self.assertEqual(meta["sender"], SCANNER_ID)
        self.assertEqual(meta["recipients"], ["c@example.org"])
        self.assertEqual(meta["identity"], SCANNER_ID)
        self.assertEqual(relay.stop(), 0)
