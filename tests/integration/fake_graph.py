#!/usr/bin/python3
"""A fake Microsoft Graph for the tests: the part of it that sends mail.

Runs as its own process:

    fake_graph.py --cert C --key K --state-dir D --token-scopes F [options]

It serves HTTPS on 127.0.0.1, on a port of its own choosing that it writes
into STATE/ready once it listens, and really checks what it is sent, so that
a client that sends through it would send through Graph:

  POST /v1.0/users/{mailbox}/sendMail   Graph's MIME send: Content-Type
      text/plain, the body the message as base64 (RFC 4648, no line breaks
      needed). 202 Accepted with an empty body. The message goes to the
      addresses in its To:, Cc: and Bcc: headers, as Graph sends it.
  GET /v1.0/users/{mailbox}             the mailbox, or 404.
  POST /v1.0/users/{mailbox}/messages   a draft from MIME (the same body as
      sendMail): 201 {"id": ...}. Needs Mail.ReadWrite (--no-mail-readwrite:
      403 ErrorAccessDenied).
  PATCH /v1.0/users/{mailbox}/messages/{id}   JSON; singleValueExtendedProperties
      are kept ("Boolean 0x0E01" = "true": PidTagDeleteAfterSubmit). 200.
  POST /v1.0/users/{mailbox}/messages/{id}/send   sends the draft: 202.
  DELETE /v1.0/users/{mailbox}/messages/{id}      204.

A message sent with sendMail is kept in the mailbox's Sent Items, as Graph
does; a sent draft too, unless it was marked PidTagDeleteAfterSubmit (NNN.json
"saved_to_sent_items").

Every request needs "Authorization: Bearer TOKEN" with a token the fake
identity platform issued for https://graph.microsoft.com/.default (it
writes "TOKEN SCOPE" lines into token-scopes.txt); anything else is 401
InvalidAuthenticationToken, as Graph answers a token for another audience.

Graph's limits, as it enforces them per mailbox:
  --max-concurrent N     more than N requests at once for one mailbox: 429
                         ApplicationThrottled with Retry-After (default 4)
  --max-request-bytes N  a larger request body: 413 (default 4 MB, the MIME
                         send's limit)
  --retry-after S        the Retry-After of throttling replies (default 1)
  --send-as ADDRESS      an address every mailbox may send as (its From:),
                         beside itself; given at least once, a From: that
                         is neither is 403 ErrorSendAsDenied, as Exchange
                         checks Send As (default: not checked)
  --delay S              each sendMail takes S seconds (makes concurrency
                         observable)

Refusals (the error codes Graph uses):
  400 ErrorMimeContentInvalidBase64String  the body is not base64
  400 ErrorMimeContentInvalid              the decoded body is no message
  400 ErrorInvalidRecipients               no address in To:, Cc: or Bcc:
  415 (UnsupportedMediaType)               another Content-Type
  404 ErrorInvalidUser / Request_ResourceNotFound  a mailbox not in --mailbox

Test-only control, STATE/control.json, read at each request: {"errors":
{"MAILBOX": ["ErrorAccessDenied", "http503:2", ...]}}; the first entry for
the request's mailbox is consumed by the next request that sends or makes a
draft, and answered instead: an error code from ERRORS, or
httpNNN[:RETRY_AFTER]; "pass" lets that request through.

State dir contents:
  ready            the port, once it listens
  NNN.eml          each message sent, as decoded (the bytes Graph got)
  NNN.json         its mailbox, the recipients Graph sends it to, how it
                   was sent ("sendMail" or "draft") and saved_to_sent_items
  counters.json    requests, sent, unauthorized, throttled, too_large,
                   refused (by code), max_concurrent (by mailbox),
                   drafts (made, not yet sent or deleted), sent_items
  graph.log        one line per request (tokens only as a short hash)
"""
import argparse
import base64
import binascii
import email.parser
import email.policy
import email.utils
import hashlib
import http.server
import json
import os
import re
import signal
import ssl
import sys
import threading
import time

GRAPH_SCOPE = "https://graph.microsoft.com/.default"

# Scripted errors: status, code, message (as Graph words them).
ERRORS = {
    "ErrorAccessDenied": (403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    "MailboxNotEnabledForRESTAPI": (404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, "
                                    "soft-deleted, or is hosted on-premise."),
    "ErrorInvalidRecipients": (400, "ErrorInvalidRecipients", "At least one recipient isn't valid."),
    "ErrorMessageSizeExceeded": (413, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported "
                                 "size."),
    "ErrorSendAsDenied": (403, "ErrorSendAsDenied", "The user account which was used to submit this request "
                          "does not have the right to send mail on behalf of the specified sending account."),
    "ErrorMimeContentInvalid": (400, "ErrorMimeContentInvalid", "The MIME content is not a valid message."),
    "InvalidAuthenticationToken": (401, "InvalidAuthenticationToken", "Lifetime validation failed, the token "
                                   "is expired."),
}

SEND = re.compile(r"^/v1\.0/users/([^/?]+)/sendMail$")
MESSAGES = re.compile(r"^/v1\.0/users/([^/?]+)/messages$")
MESSAGE = re.compile(r"^/v1\.0/users/([^/?]+)/messages/([^/?]+)$")
DRAFT_SEND = re.compile(r"^/v1\.0/users/([^/?]+)/messages/([^/?]+)/send$")
USER = re.compile(r"^/v1\.0/users/([^/?]+)$")


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def short_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()[:10]


def graph_error(code, message):
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                     "request-id": "00000000-0000-0000-0000-000000000000"}}}


class Graph:
    """What the fake knows and counts; shared by the handler threads."""

    def __init__(self, args):
        self.args = args
        self.dir = args.state_dir
        self.mailboxes = {m.lower() for m in args.mailbox}
        self.lock = threading.Lock()
        self.in_flight = {}
        self.next_id = 1
        self.counters = {"requests": 0, "sent": 0, "unauthorized": 0, "throttled": 0, "too_large": 0,
                         "refused": {}, "max_concurrent": {}, "drafts": 0, "sent_items": 0}
        self.drafts = {}   # id -> {"mailbox", "mime", "recipients", "delete_after_submit"}
        self.save()

    def save(self):
        write_atomically(os.path.join(self.dir, "counters.json"),
                         json.dumps(self.counters, sort_keys=True).encode())

    def log(self, line):
        with open(os.path.join(self.dir, "graph.log"), "a") as f:
            f.write(line + "\n")

    def token_ok(self, token):
        try:
            with open(self.args.token_scopes) as f:
                return any(line.split() == [token, GRAPH_SCOPE] for line in f)
        except FileNotFoundError:
            return False

    def scripted(self, mailbox):
        """The next scripted error for `mailbox`, consumed, or None."""
        path = os.path.join(self.dir, "control.json")
        with self.lock:
            try:
                with open(path) as f:
                    control = json.load(f)
            except (FileNotFoundError, ValueError):
                return None
            queue = control.get("errors", {}).get(mailbox, [])
            if not queue:
                return None
            first = queue.pop(0)
            write_atomically(path, json.dumps(control).encode())
            return first

    def enter(self, mailbox):
        """Counts a request in flight for `mailbox`; False when over the limit."""
        with self.lock:
            now = self.in_flight.get(mailbox, 0)
            if now >= self.args.max_concurrent:
                self.counters["throttled"] += 1
                self.save()
                return False
            self.in_flight[mailbox] = now + 1
            peak = self.counters["max_concurrent"]
            peak[mailbox] = max(peak.get(mailbox, 0), now + 1)
            self.save()
            return True

    def leave(self, mailbox):
        with self.lock:
            self.in_flight[mailbox] -= 1

    def count(self, key, code=None):
        with self.lock:
            if code is None:
                self.counters[key] += 1
            else:
                self.counters[key][code] = self.counters[key].get(code, 0) + 1
            self.save()

    def record(self, mailbox, mime, recipients, how="sendMail", saved=True):
        with self.lock:
            number = "%03d" % self.next_id
            self.next_id += 1
            write_atomically(os.path.join(self.dir, number + ".eml"), mime)
            write_atomically(os.path.join(self.dir, number + ".json"),
                             json.dumps({"mailbox": mailbox, "recipients": recipients, "how": how,
                                         "saved_to_sent_items": saved}, sort_keys=True).encode())
            self.counters["sent"] += 1
            if saved:
                self.counters["sent_items"] += 1
            self.save()

    def add_draft(self, mailbox, mime, recipients):
        with self.lock:
            draft = "AAMkAD-draft-%d" % self.next_id
            self.next_id += 1
            self.drafts[draft] = {"mailbox": mailbox.lower(), "mime": mime, "recipients": recipients,
                                  "delete_after_submit": False}
            self.counters["drafts"] = len(self.drafts)
            self.save()
            return draft

    def take_draft(self, mailbox, draft, keep=False):
        """The draft of `mailbox` (removed unless `keep`), or None."""
        with self.lock:
            d = self.drafts.get(draft)
            if d is None or d["mailbox"] != mailbox.lower():
                return None
            if not keep:
                del self.drafts[draft]
                self.counters["drafts"] = len(self.drafts)
                self.save()
            return d


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    @property
    def graph(self):
        return self.server.graph

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status, code, message, headers=()):
        self.graph.count("refused", code)
        self.graph.log("REFUSED %s %s %d %s" % (self.command, self.path, status, code))
        self.reply(status, graph_error(code, message), headers)

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length) if length > 0 else b""

    def authorized(self):
        """Whether the bearer token is one issued for Graph; answers 401 if not."""
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if token and self.graph.token_ok(token):
            return token
        self.graph.count("unauthorized")
        self.refuse(401, "InvalidAuthenticationToken",
                    "Access token is empty." if not token else "Access token validation failure. Invalid audience.",
                    [("WWW-Authenticate", 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                          'common/oauth2/authorize"')])
        return None

    def known(self, mailbox):
        return not self.graph.mailboxes or mailbox.lower() in self.graph.mailboxes

    def do_GET(self):
        self.graph.count("requests")
        m = USER.match(self.path)
        if not m:
            self.refuse(400, "BadRequest", "Unsupported request.")
            return
        if not self.authorized():
            return
        mailbox = m.group(1)
        if not self.known(mailbox):
            self.refuse(404, "Request_ResourceNotFound",
                        "Resource '%s' does not exist or one of its queried reference-property objects are not "
                        "present." % mailbox)
            return
        self.reply(200, {"id": "00000000-0000-0000-0000-%012d" % (len(mailbox) % 10 ** 12),
                         "mail": mailbox, "userPrincipalName": mailbox})

    def do_POST(self):
        self.graph.count("requests")
        m = SEND.match(self.path) or MESSAGES.match(self.path)
        if DRAFT_SEND.match(self.path):
            self.send_draft(DRAFT_SEND.match(self.path))
            return
        length = int(self.headers.get("Content-Length", "0"))
        if length > self.graph.args.max_request_bytes:
            self.graph.count("too_large")
            self.rfile.read(length)
            self.refuse(413, "ErrorMessageSizeExceeded", "The request body exceeds the maximum size.")
            return
        body = self.read_body()
        if not m:
            self.refuse(400, "BadRequest", "Unsupported request.")
            return
        token = self.authorized()
        if not token:
            return
        mailbox = m.group(1)
        if not self.known(mailbox):
            self.refuse(404, "ErrorInvalidUser", "The requested user '%s' is invalid." % mailbox)
            return
        draft = MESSAGES.match(self.path) is not None
        if draft and self.graph.args.no_mail_readwrite:
            self.refuse(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return
        if not self.enter(mailbox):
            return
        try:
            self.send_mail(mailbox, token, body, draft)
        finally:
            self.graph.leave(mailbox)

    def enter(self, mailbox):
        """Counts a request in flight for `mailbox`; over the limit, answers 429 and False."""
        if self.graph.enter(mailbox):
            return True
        self.refuse(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                    [("Retry-After", str(self.graph.args.retry_after))])
        return False

    def answer_scripted(self, mailbox):
        """Answers the next scripted error for `mailbox`; False when there is none."""
        scripted = self.graph.scripted(mailbox)
        if not scripted or scripted == "pass":
            return False
        if scripted.startswith("http"):
            status, _, retry = scripted[4:].partition(":")
            headers = [("Retry-After", retry)] if retry else []
            self.refuse(int(status), "ServiceUnavailable" if status == "503" else "ErrorScripted",
                        "Scripted failure.", headers)
        else:
            status, code, message = ERRORS[scripted]
            self.refuse(status, code, message)
        return True

    def draft_target(self, pattern):
        """(mailbox, draft id) of the request after the token check, or None (answered)."""
        m = pattern.match(self.path)
        if not self.authorized():
            return None
        mailbox = m.group(1)
        if self.graph.args.no_mail_readwrite and pattern is MESSAGE:
            self.refuse(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return None
        return mailbox, m.group(2)

    def draft_request(self, keep):
        """((mailbox, id), draft) of a PATCH or DELETE of a draft (removed
        unless `keep`), or None when it was answered with a refusal."""
        self.graph.count("requests")
        if not MESSAGE.match(self.path):
            self.refuse(400, "BadRequest", "Unsupported request.")
            return None
        target = self.draft_target(MESSAGE)
        if target is None:
            return None
        d = self.graph.take_draft(*target, keep=keep)
        if d is None:
            self.refuse(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            return None
        return target, d

    def do_PATCH(self):
        body = self.read_body()
        found = self.draft_request(keep=True)
        if found is None:
            return
        target, d = found
        try:
            patch = json.loads(body)
        except ValueError:
            self.refuse(400, "RequestBodyRead", "The request body is not JSON.")
            return
        for prop in patch.get("singleValueExtendedProperties", []):
            if prop.get("id", "").lower() == "boolean 0x0e01":
                d["delete_after_submit"] = str(prop.get("value", "")).lower() == "true"
        self.graph.log("PATCHED %s delete_after_submit=%s" % (target[1], d["delete_after_submit"]))
        self.reply(200, {"id": target[1]})

    def do_DELETE(self):
        found = self.draft_request(keep=False)
        if found is None:
            return
        self.graph.log("DELETED %s" % found[0][1])
        self.reply(204)

    def send_draft(self, m):
        self.read_body()
        if not self.authorized():
            return
        mailbox, draft = m.group(1), m.group(2)
        if not self.enter(mailbox):
            return
        try:
            if self.answer_scripted(mailbox):
                return
            d = self.graph.take_draft(mailbox, draft, keep=True)
            if d is None:
                self.refuse(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                return
            if not d["recipients"]:
                self.refuse(400, "ErrorInvalidRecipients", "At least one recipient is required, but none were found.")
                return
            self.graph.take_draft(mailbox, draft)
            if self.graph.args.delay:
                time.sleep(self.graph.args.delay)
            self.graph.record(mailbox, d["mime"], d["recipients"], "draft", not d["delete_after_submit"])
            self.graph.log("SENT mailbox=%s recipients=%d draft=%s" % (mailbox, len(d["recipients"]), draft))
            self.reply(202)
        finally:
            self.graph.leave(mailbox)

    def send_mail(self, mailbox, token, body, draft=False):
        if self.answer_scripted(mailbox):
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "text/plain":
            self.refuse(415, "UnsupportedMediaType", "A MIME message must be sent as text/plain.")
            return
        try:
            mime = base64.b64decode(re.sub(rb"\s+", b"", body), validate=True)
        except (binascii.Error, ValueError):
            self.refuse(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
            return
        try:
            message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(mime, headersonly=True)
        except Exception:  # noqa: BLE001 - any parse failure is a refusal
            message = None
        if message is None or not message.keys():
            self.refuse(400, "ErrorMimeContentInvalid", "The MIME content is not a valid message.")
            return
        if self.graph.args.send_as:
            senders = [addr.lower() for _, addr in email.utils.getaddresses(message.get_all("From", []))]
            allowed = {mailbox.lower()} | {a.lower() for a in self.graph.args.send_as}
            if not senders or any(a not in allowed for a in senders):
                self.refuse(403, "ErrorSendAsDenied", "The user account which was used to submit this request "
                            "does not have the right to send mail on behalf of the specified sending account.")
                return
        recipients = [addr for _, addr in email.utils.getaddresses(
            message.get_all("To", []) + message.get_all("Cc", []) + message.get_all("Bcc", [])) if addr]
        if not recipients and not draft:
            self.refuse(400, "ErrorInvalidRecipients", "At least one recipient is required, but none were found.")
            return
        if draft:
            # Graph makes the draft; it is sent (and its recipients checked again) by .../send.
            made = self.graph.add_draft(mailbox, mime, recipients)
            self.graph.log("DRAFT mailbox=%s id=%s token=%s" % (mailbox, made, short_hash(token)))
            self.reply(201, {"id": made, "isDraft": True})
            return
        if self.graph.args.delay:
            time.sleep(self.graph.args.delay)
        self.graph.record(mailbox, mime, recipients)
        self.graph.log("SENT mailbox=%s recipients=%d token=%s" % (mailbox, len(recipients), short_hash(token)))
        self.reply(202)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--token-scopes", required=True, help="the fake identity platform's token-scopes.txt")
    p.add_argument("--mailbox", action="append", default=[], help="a mailbox that exists (default: any)")
    p.add_argument("--max-concurrent", type=int, default=4)
    p.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024)
    p.add_argument("--retry-after", type=int, default=1)
    p.add_argument("--send-as", action="append", default=[])
    p.add_argument("--no-mail-readwrite", action="store_true", help="the app lacks Mail.ReadWrite")
    p.add_argument("--delay", type=float, default=0.0)
    return p.parse_args()


def main():
    args = parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.graph = Graph(args)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_atomically(os.path.join(args.state_dir, "ready"), b"%d\n" % httpd.server_address[1])
    httpd.serve_forever()
    httpd.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
