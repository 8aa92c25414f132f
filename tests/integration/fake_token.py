#!/usr/bin/python3
"""A Microsoft-identity-platform-like OAuth2 token endpoint for the tests.

Runs as its own process:

    fake_token.py --port P --cert C --key K --state-dir D \\
        --client-id ID --client-secret-file F

Serves POST /<tenant>/oauth2/v2.0/token over HTTPS and checks exactly a
client-credentials grant: method POST, Content-Type
application/x-www-form-urlencoded, and the form fields grant_type,
client_id, client_secret and scope (each once, nothing else). On success
it issues a long random bearer token and appends it to tokens.txt in the
state dir (the fake upstream accepts only tokens listed there).

State dir contents:
  ready                  written once the port listens
  token-counters.json    requests / issued / refused (replaced atomically)
  token.log              one line per request: outcome and reason
  tokens.txt             issued tokens, one a line
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import secrets
import signal
import ssl
import sys
import threading
import urllib.parse
import uuid

REQUIRED_FIELDS = ("grant_type", "client_id", "client_secret", "scope")
SCOPE = "https://outlook.office365.com/.default"


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def make_token():
    """A JWT-shaped random token of about 1500 characters."""
    def b64url(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    header = b64url(b'{"typ":"JWT","nonce":"' + secrets.token_hex(16).encode() +
                    b'","alg":"RS256","x5t":"test","kid":"test"}')
    payload = b64url(secrets.token_bytes(800))
    signature = b64url(secrets.token_bytes(256))
    return "%s.%s.%s" % (header, payload, signature)


class Server:
    def __init__(self, args):
        self.dir = args.state_dir
        self.tenant = args.tenant
        self.client_id = args.client_id
        with open(args.client_secret_file) as f:
            self.client_secret = f.read().strip("\r\n")
        self.expires_in = args.expires_in
        self.fail_first = args.fail_first
        self.lock = threading.Lock()
        self.counters = {"requests": 0, "issued": 0, "refused": 0, "unavailable": 0}
        self.save()

    def save(self):
        write_atomically(os.path.join(self.dir, "token-counters.json"),
                         json.dumps(self.counters, sort_keys=True).encode())

    def bump(self, key):
        self.counters[key] += 1
        self.save()

    def log(self, line):
        with open(os.path.join(self.dir, "token.log"), "a") as f:
            f.write(line + "\n")

    def record_token(self, token):
        with open(os.path.join(self.dir, "tokens.txt"), "a") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())


def aad_error(status, error, code, description):
    now = datetime.datetime.now(datetime.timezone.utc)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
                             % (code, description, trace, correlation,
                                now.strftime("%Y-%m-%d %H:%M:%SZ")),
        "error_codes": [code],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
    }
    return status, body


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "FakeEntraID/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass  # token.log carries what matters; keep stderr quiet

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.end_headers()
        self.wfile.write(data)

    def _not_post(self):
        st = self.server.state
        with st.lock:
            st.bump("requests")
            st.bump("refused")
            st.log("REFUSED method %s %s" % (self.command, urllib.parse.urlsplit(self.path).path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._send(*aad_error(405, "invalid_request", 900561,
                              "The endpoint only accepts POST requests. Received a %s request."
                              % self.command))

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_post

    def do_POST(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with st.lock:
            st.bump("requests")
            status, body, why = self._decide(st, raw)
            if status == 200:
                st.bump("issued")
                st.record_token(body["access_token"])
                st.log("ISSUED token of %d chars" % len(body["access_token"]))
            else:
                st.bump("unavailable" if status >= 500 else "refused")
                st.log("REFUSED %d %s" % (status, why))
        self._send(status, body)

    def _decide(self, st, raw):
        expected_path = "/%s/oauth2/v2.0/token" % st.tenant
        if urllib.parse.urlsplit(self.path).path != expected_path:
            return 404, {"error": "not_found"}, "path %r" % self.path
        if st.fail_first > 0:
            st.fail_first -= 1
            return (*aad_error(503, "temporarily_unavailable", 50196,
                               "The server is temporarily unavailable."), "fail-first")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return (*aad_error(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'grant_type'."),
                    "content type %r" % self.headers.get("Content-Type"))
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                                           strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return (*aad_error(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'grant_type'."),
                    "body is not a url-encoded form")
        names = [k for k, _ in pairs]
        form = dict(pairs)
        for field in REQUIRED_FIELDS:
            if names.count(field) != 1:
                return (*aad_error(400, "invalid_request", 900144,
                                   "The request body must contain the following parameter: '%s'."
                                   % field), "field %s appears %d times" % (field, names.count(field)))
        extra = sorted(set(names) - set(REQUIRED_FIELDS))
        if extra:
            return (*aad_error(400, "invalid_request", 90014,
                               "Unexpected parameters in the request."), "extra fields %s" % extra)
        if form["grant_type"] != "client_credentials":
            return (*aad_error(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type '%s'." % form["grant_type"]),
                    "grant_type %r" % form["grant_type"])
        if form["client_id"] != st.client_id:
            return (*aad_error(400, "unauthorized_client", 700016,
                               "Application with identifier '%s' was not found in the directory '%s'."
                               % (form["client_id"], st.tenant)), "unknown client_id")
        if form["client_secret"] != st.client_secret:
            return (*aad_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the "
                               "request is the client secret value, not the client secret ID, for a "
                               "secret added to app '%s'." % st.client_id),
                    "wrong client_secret (%d chars)" % len(form["client_secret"]))
        if form["scope"] != SCOPE:
            return (*aad_error(400, "invalid_scope", 1002012,
                               "The provided value for scope %s is not valid. Client credential flows "
                               "must have a scope value with /.default suffixed to the resource "
                               "identifier (application ID URI)." % form["scope"]),
                    "scope %r" % form["scope"])
        token = make_token()
        return 200, {"token_type": "Bearer", "expires_in": st.expires_in,
                     "ext_expires_in": st.expires_in, "access_token": token}, "ok"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--tenant", default="contoso.onmicrosoft.com")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret-file", required=True)
    parser.add_argument("--expires-in", type=int, default=3599)
    parser.add_argument("--fail-first", type=int, default=0,
                        help="answer the first N requests 503 temporarily_unavailable")
    args = parser.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)

    httpd = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    httpd.state = Server(args)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_atomically(os.path.join(args.state_dir, "ready"), b"%d\n" % os.getpid())
    httpd.serve_forever()
    httpd.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
