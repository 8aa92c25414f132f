#!/usr/bin/python3
"""An Exchange-Online-like SMTP upstream for the integration tests.

Runs as its own process:

    fake_upstream.py --port P --cert C --key K --state-dir D --mailbox relay@contoso.com

Behaviour mirrored from smtp.office365.com:587:
  * STARTTLS is required before anything but EHLO/HELO/NOOP/QUIT/STARTTLS;
  * after STARTTLS, EHLO advertises "AUTH LOGIN XOAUTH2";
  * XOAUTH2: the string user=<mailbox>\\x01auth=Bearer <token>\\x01\\x01 is
    checked byte for byte; the mailbox must be one of --mailbox, the token one
    that the fake token endpoint issued (--tokens-file, one a line);
    failures answer "535 5.7.3 Authentication unsuccessful";
  * MAIL before AUTH: "530 5.7.57 Client not authenticated to send mail.".

State dir contents:
  ready              written once the port listens
  counters.json      connection/auth/message counters (replaced atomically)
  auth.log           one line per AUTH attempt with its outcome and reason
  NNN.eml            each message's DATA content, after dot-unstuffing
  NNN.json           its envelope: mail_from, rcpt_tos, mailbox, token, peer
"""
import argparse
import asyncio
import base64
import binascii
import json
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult

EXCHANGE_AUTH_FAILED = "535 5.7.3 Authentication unsuccessful"
EXCHANGE_NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class State:
    def __init__(self, args):
        self.dir = args.state_dir
        self.tokens_file = args.tokens_file or os.path.join(args.state_dir, "tokens.txt")
        self.mailboxes = set(args.mailbox)
        self.reject_rcpt = {a.lower() for a in args.reject_rcpt}
        self.tempfail_left = args.tempfail_data
        self.counters = {
            "connections": 0,
            "current_connections": 0,
            "max_concurrent_connections": 0,
            "starttls": 0,
            "auth_attempts": 0,
            "auth_xoauth2_ok": 0,
            "auth_failures": 0,
            "auth_initial_response": 0,
            "auth_other_mechanism": 0,
            "mail_without_auth": 0,
            "data_tempfailed": 0,
            "rcpt_rejected": 0,
            "messages": 0,
        }
        self.next_id = 1
        self.save()

    def bump(self, key, by=1):
        self.counters[key] += by
        if key == "current_connections":
            self.counters["max_concurrent_connections"] = max(
                self.counters["max_concurrent_connections"], self.counters[key])
        self.save()

    def save(self):
        write_atomically(os.path.join(self.dir, "counters.json"),
                         json.dumps(self.counters, sort_keys=True).encode())

    def auth_log(self, line):
        with open(os.path.join(self.dir, "auth.log"), "a") as f:
            f.write(line + "\n")

    def issued_tokens(self):
        try:
            with open(self.tokens_file) as f:
                return {line.strip() for line in f if line.strip()}
        except FileNotFoundError:
            return set()

    def store(self, envelope, session):
        number = "%03d" % self.next_id
        self.next_id += 1
        auth = session.auth_data or {}
        meta = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "mailbox": auth.get("mailbox"),
            "token": auth.get("token"),
            "initial_response": auth.get("initial_response"),
            "peer": list(session.peer) if session.peer else None,
            "helo": session.host_name,
        }
        write_atomically(os.path.join(self.dir, number + ".eml"), envelope.original_content)
        write_atomically(os.path.join(self.dir, number + ".json"),
                         json.dumps(meta, sort_keys=True).encode())
        self.bump("messages")
        return number


class ExchangeLikeSMTP(SMTP):
    # Access tokens are long; Exchange accepts the XOAUTH2 line whole.
    line_length_limit = 16384

    def __init__(self, handler, state, **kwargs):
        self.state = state
        super().__init__(handler, **kwargs)

    def connection_made(self, transport):
        # Called again with the TLS transport after STARTTLS.
        if self.transport is None:
            self.state.bump("connections")
            self.state.bump("current_connections")
        else:
            self.state.bump("starttls")
        super().connection_made(transport)

    def connection_lost(self, error):
        # aiosmtpd calls this once per connection (the TLS layer forwards it).
        if not getattr(self, "_counted_lost", False):
            self._counted_lost = True
            self.state.bump("current_connections", -1)
        super().connection_lost(error)

    async def check_auth_needed(self, caller_method):
        if not self.session.authenticated:
            self.state.bump("mail_without_auth")
            await self.push(EXCHANGE_NOT_AUTHENTICATED)
            return True
        return False

    async def auth_LOGIN(self, _, args):
        # Basic authentication is switched off for this tenant: only XOAUTH2.
        self.state.bump("auth_attempts")
        self.state.bump("auth_other_mechanism")
        self.state.bump("auth_failures")
        self.state.auth_log("FAIL LOGIN basic authentication is not accepted")
        return AuthResult(success=False, handled=False, message=EXCHANGE_AUTH_FAILED)

    async def auth_XOAUTH2(self, _, args):
        self.state.bump("auth_attempts")
        initial_response = len(args) > 1
        if initial_response:
            self.state.bump("auth_initial_response")
            try:
                blob = base64.b64decode(args[1].encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                return self._fail("initial response is not base64")
        else:
            blob = await self.challenge_auth(b"", encode_to_b64=False)
            if blob is None or not isinstance(blob, bytes):
                self.state.bump("auth_failures")
                self.state.auth_log("FAIL XOAUTH2 aborted or not base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x01")
        if len(parts) != 4 or parts[2:] != [b"", b""]:
            return self._fail("not of the form user=...^Aauth=Bearer ...^A^A: %r" % blob[:80])
        if not parts[0].startswith(b"user=") or not parts[1].startswith(b"auth=Bearer "):
            return self._fail("bad field names: %r / %r" % (parts[0][:40], parts[1][:20]))
        mailbox = parts[0][len(b"user="):].decode("utf-8", "replace")
        token = parts[1][len(b"auth=Bearer "):].decode("ascii", "replace")
        if mailbox not in self.state.mailboxes:
            return self._fail("mailbox %r is not an allowed mailbox" % mailbox)
        if token not in self.state.issued_tokens():
            return self._fail("token of %d chars for %r was not issued by the token endpoint"
                              % (len(token), mailbox))
        self.state.bump("auth_xoauth2_ok")
        self.state.auth_log("OK XOAUTH2 mailbox=%s initial_response=%s" % (mailbox, initial_response))
        return AuthResult(success=True, handled=False,
                          message="235 2.7.0 Authentication successful",
                          auth_data={"mailbox": mailbox, "token": token,
                                     "initial_response": initial_response})

    def _fail(self, why):
        self.state.bump("auth_failures")
        self.state.auth_log("FAIL XOAUTH2 " + why)
        return AuthResult(success=False, handled=False, message=EXCHANGE_AUTH_FAILED)


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = ["250-%s Hello [%s]" % (server.hostname, session.peer[0] if session.peer else "")]
        for line in responses[1:-1]:
            if line == "250-SMTPUTF8":
                continue  # Exchange lists it last
            out.append(line)
            if line.startswith("250-SIZE"):
                out.append("250-PIPELINING")
                out.append("250-DSN")
                out.append("250-ENHANCEDSTATUSCODES")
        out.append("250 SMTPUTF8" if server.enable_SMTPUTF8 else "250 HELP")
        return out

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.state.reject_rcpt:
            self.state.bump("rcpt_rejected")
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        if self.state.tempfail_left > 0:
            self.state.tempfail_left -= 1
            self.state.bump("data_tempfailed")
            return "451 4.3.0 Temporary server error. Please try again later"
        number = self.state.store(envelope, session)
        return "250 2.0.0 OK <fake-%s@contoso.test> [Hostname=FAKE.contoso.test] Queued mail for delivery" % number


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--mailbox", action="append", default=[], required=True)
    parser.add_argument("--tokens-file", help="tokens the token endpoint issued (default STATE_DIR/tokens.txt)")
    parser.add_argument("--reject-rcpt", action="append", default=[])
    parser.add_argument("--tempfail-data", type=int, default=0)
    parser.add_argument("--hostname", default="FAKE.outlook.office365.test")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    os.makedirs(args.state_dir, exist_ok=True)
    state = State(args)
    handler = Handler(state)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return ExchangeLikeSMTP(
            handler, state,
            hostname=args.hostname,
            ident="Microsoft ESMTP MAIL Service ready",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=["PLAIN"],
            data_size_limit=157286400,
            enable_SMTPUTF8=True,
            loop=loop)

    server = loop.run_until_complete(loop.create_server(factory, host=args.host, port=args.port))
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    write_atomically(os.path.join(args.state_dir, "ready"), b"%d\n" % os.getpid())
    try:
        loop.run_until_complete(stop)
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


if __name__ == "__main__":
    main()
