"""The fake Microsoft Graph on its own, without subrelay: each test plays a
client of Graph's MIME send and checks that the fake answers as Graph
would (202 for a good request; 401, 400, 413, 415, 429 with Retry-After, and
the scripted errors otherwise). If these fail, a relay test that passes
against the fake proves little about Graph."""
import base64
import http.client
import json
import ssl
import threading
import urllib.parse

import harness
from harness import CLIENT_ID, CLIENT_SECRET

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SMTP_SCOPE = "https://outlook.office365.com/.default"
MAILBOX = "relay@contoso.com"
MESSAGE = (b"From: scanner@contoso.com\r\nTo: alice@example.org\r\nCc: Bob <bob@example.org>\r\n"
           b"Bcc: carol@example.org\r\nSubject: through Graph\r\n\r\nHello.\r\n")


class FakeGraphCase(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.start_token()

    def context(self):
        return ssl.create_default_context(cafile=self.pki.ca_cert)

    def token_for(self, scope):
        parts = urllib.parse.urlsplit(self.token.url)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=self.context(), timeout=10)
        try:
            conn.request("POST", parts.path, body=urllib.parse.urlencode(
                [("grant_type", "client_credentials"), ("client_id", CLIENT_ID),
                 ("client_secret", CLIENT_SECRET), ("scope", scope)]),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = conn.getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 200, body)
            return body["access_token"]
        finally:
            conn.close()

    def request(self, method, path, token, body=b"", content_type="text/plain"):
        """(status, headers, parsed JSON body or None)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.graph.port, context=self.context(), timeout=30)
        try:
            headers = {"Content-Type": content_type}
            if token:
                headers["Authorization"] = "Bearer " + token
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, r.headers, json.loads(data) if data else None
        finally:
            conn.close()

    def send(self, token, mime=MESSAGE, mailbox=MAILBOX, **kwargs):
        return self.request("POST", "/v1.0/users/%s/sendMail" % mailbox, token, base64.b64encode(mime), **kwargs)

    def assert_error(self, answer, status, code):
        self.assertEqual((answer[0], answer[2]["error"]["code"]), (status, code), answer)


class SendMailTest(FakeGraphCase):
    def test_a_mime_send_is_accepted_and_recorded_as_sent(self):
        self.start_graph(mailboxes=[MAILBOX])
        status, _, body = self.send(self.token_for(GRAPH_SCOPE))
        self.assertEqual((status, body), (202, None))
        [(eml, meta)] = self.graph.messages()
        self.assertEqual(eml, MESSAGE, "the bytes, as decoded from base64")
        self.assertEqual(meta, {"mailbox": MAILBOX, "how": "sendMail", "saved_to_sent_items": True,
                                "recipients": ["alice@example.org", "bob@example.org", "carol@example.org"]})
        self.assertEqual(self.graph.counters()["sent_items"], 1)

    def test_only_a_token_issued_for_graph_is_accepted(self):
        self.start_graph()
        self.assert_error(self.send(None), 401, "InvalidAuthenticationToken")
        self.assert_error(self.send(self.token_for(SMTP_SCOPE)), 401, "InvalidAuthenticationToken")
        self.assert_error(self.send("not-a-token-it-issued"), 401, "InvalidAuthenticationToken")
        self.assertEqual(self.graph.counters()["unauthorized"], 3)
        self.assertEqual(self.graph.messages(), [])

    def test_bad_bodies_are_refused_as_graph_refuses_them(self):
        self.start_graph()
        token = self.token_for(GRAPH_SCOPE)
        path = "/v1.0/users/%s/sendMail" % MAILBOX
        self.assert_error(self.request("POST", path, token, b"not base64 at all!"), 400,
                          "ErrorMimeContentInvalidBase64String")
        self.assert_error(self.send(token, content_type="application/json"), 415, "UnsupportedMediaType")
        self.assert_error(self.send(token, mime=b"Subject: nobody\r\n\r\nHello.\r\n"), 400, "ErrorInvalidRecipients")
        self.assertEqual(self.graph.messages(), [])

    def test_the_request_size_limit(self):
        self.start_graph(max_request_bytes=1000)
        token = self.token_for(GRAPH_SCOPE)
        self.assertEqual(self.send(token)[0], 202)
        big = MESSAGE + b"x" * 1000 + b"\r\n"
        self.assert_error(self.send(token, mime=big), 413, "ErrorMessageSizeExceeded")
        self.assertEqual(self.graph.counters()["too_large"], 1)

    def test_more_than_four_requests_at_once_for_a_mailbox_are_throttled(self):
        self.start_graph(delay=1.0, retry_after=7)
        token = self.token_for(GRAPH_SCOPE)
        answers = []
        lock = threading.Lock()

        def one():
            a = self.send(token)
            with lock:
                answers.append(a)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(a[0] for a in answers)
        self.assertEqual(statuses, [202, 202, 202, 202, 429, 429], answers)
        for status, headers, body in answers:
            if status == 429:
                self.assertEqual(headers["Retry-After"], "7")
                self.assertEqual(body["error"]["code"], "ApplicationThrottled")
        counters = self.graph.counters()
        self.assertEqual(counters["max_concurrent"][MAILBOX], 4)
        self.assertEqual(counters["throttled"], 2)
        # Another mailbox has its own four.
        self.assertEqual(self.send(token, mailbox="other@contoso.com")[0], 202)

    def test_scripted_errors_are_answered_once_each(self):
        self.start_graph()
        token = self.token_for(GRAPH_SCOPE)
        self.graph.script_errors({MAILBOX: ["ErrorAccessDenied", "http503:3", "MailboxNotEnabledForRESTAPI"]})
        self.assert_error(self.send(token), 403, "ErrorAccessDenied")
        status, headers, _ = self.send(token)
        self.assertEqual((status, headers["Retry-After"]), (503, "3"))
        self.assert_error(self.send(token), 404, "MailboxNotEnabledForRESTAPI")
        self.assertEqual(self.send(token)[0], 202)


class DraftTest(FakeGraphCase):
    """A draft made from MIME, marked PidTagDeleteAfterSubmit, sent; or deleted."""

    def make_draft(self, token, mime=MESSAGE):
        status, _, body = self.request("POST", "/v1.0/users/%s/messages" % MAILBOX, token, base64.b64encode(mime))
        self.assertEqual(status, 201, body)
        return body["id"]

    def test_a_marked_draft_is_sent_without_a_copy_in_sent_items(self):
        self.start_graph(mailboxes=[MAILBOX])
        token = self.token_for(GRAPH_SCOPE)
        draft = self.make_draft(token)
        self.assertEqual(self.graph.counters()["drafts"], 1)
        status, _, _ = self.request("PATCH", "/v1.0/users/%s/messages/%s" % (MAILBOX, draft), token, json.dumps(
            {"singleValueExtendedProperties": [{"id": "Boolean 0x0E01", "value": "true"}]}).encode(),
            content_type="application/json")
        self.assertEqual(status, 200)
        status, _, _ = self.request("POST", "/v1.0/users/%s/messages/%s/send" % (MAILBOX, draft), token)
        self.assertEqual(status, 202)
        [(eml, meta)] = self.graph.messages()
        self.assertEqual(eml, MESSAGE)
        self.assertEqual((meta["how"], meta["saved_to_sent_items"]), ("draft", False))
        counters = self.graph.counters()
        self.assertEqual((counters["drafts"], counters["sent_items"]), (0, 0), counters)

    def test_an_unmarked_draft_keeps_a_copy_and_a_deleted_one_is_gone(self):
        self.start_graph(mailboxes=[MAILBOX])
        token = self.token_for(GRAPH_SCOPE)
        kept = self.make_draft(token)
        self.assertEqual(self.request("POST", "/v1.0/users/%s/messages/%s/send" % (MAILBOX, kept), token)[0], 202)
        self.assertTrue(self.graph.messages()[0][1]["saved_to_sent_items"])
        gone = self.make_draft(token)
        self.assertEqual(self.request("DELETE", "/v1.0/users/%s/messages/%s" % (MAILBOX, gone), token)[0], 204)
        self.assert_error(self.request("POST", "/v1.0/users/%s/messages/%s/send" % (MAILBOX, gone), token),
                          404, "ErrorItemNotFound")
        self.assertEqual(len(self.graph.messages()), 1)

    def test_without_mail_readwrite_no_draft_is_made(self):
        self.start_graph(mailboxes=[MAILBOX], mail_readwrite=False)
        token = self.token_for(GRAPH_SCOPE)
        self.assert_error(self.request("POST", "/v1.0/users/%s/messages" % MAILBOX, token,
                                       base64.b64encode(MESSAGE)), 403, "ErrorAccessDenied")
        self.assertEqual(self.send(token)[0], 202, "sendMail needs Mail.Send only")


class SendAsTest(FakeGraphCase):
    def test_a_from_the_mailbox_may_not_send_as_is_refused(self):
        self.start_graph(mailboxes=[MAILBOX], send_as=["granted@example.org"])
        token = self.token_for(GRAPH_SCOPE)
        as_other = MESSAGE.replace(b"From:", b"X-Was-From:", 1)
        self.assert_error(self.send(token, b"From: <stranger@example.org>\r\n" + as_other), 403,
                          "ErrorSendAsDenied")
        self.assertEqual(self.send(token, b"From: <granted@example.org>\r\n" + as_other)[0], 202)
        self.assertEqual(self.send(token, b"From: \"Relay\" <%s>\r\n" % MAILBOX.encode() + as_other)[0], 202)


class UserTest(FakeGraphCase):
    def test_a_known_mailbox_is_found_and_an_unknown_one_is_not(self):
        self.start_graph(mailboxes=[MAILBOX])
        token = self.token_for(GRAPH_SCOPE)
        status, _, body = self.request("GET", "/v1.0/users/%s" % MAILBOX, token)
        self.assertEqual((status, body["mail"]), (200, MAILBOX))
        self.assert_error(self.request("GET", "/v1.0/users/nobody@contoso.com", token), 404,
                          "Request_ResourceNotFound")
        self.assert_error(self.request("GET", "/v1.0/users/%s" % MAILBOX, None), 401, "InvalidAuthenticationToken")
