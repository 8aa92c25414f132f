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

Faults, each opt-in (for the delivery and crash tests):
  --max-auth-connections N   more than N authenticated connections of one
                             mailbox at a time: the AUTH that would be the
                             N+1st is answered "432 4.3.2 Concurrent
                             connections limit exceeded. ..." (as Exchange)
  --max-messages-per-minute N  more than N messages of one mailbox in a
                             sliding minute: MAIL gets "432 4.3.2 ... rate ..."
  --drop-data K              for the first K messages: reset the connection
                             after the first line of the message data (the
                             message is not stored)
  --tempfail-data K          4xx to the first K DATAs, then 250
  --reject-rcpt ADDR         550 5.1.1 for ADDR (repeatable)
  --tempfail-rcpt ADDR       450 4.2.0 for ADDR, every time (repeatable)
  --slow-rcpt ADDR           delay the reply to RCPT ADDR by --slow-seconds
  --slow-data                store the message, then delay the 250 by
                             --slow-seconds (a crash in between repeats it)
  --slow-count K             only the first K slow replies are slow (0: all)
  --stall                    accept connections and never say anything
  --no-auth                  no AUTH (a connector trusting the client's
                             address): MAIL without AUTH is accepted

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
import time

from aiosmtpd.smtp import SMTP, AuthResult

EXCHANGE_AUTH_FAILED = "535 5.7.3 Authentication unsuccessful"
EXCHANGE_NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."
EXCHANGE_CONCURRENCY = ("432 4.3.2 Concurrent connections limit exceeded. Visit "
                        "https://aka.ms/concurrent_connections for more information.")
RATE_LIMITED = "432 4.3.2 Message submission rate limit exceeded for this mailbox, try again later"
RCPT_TEMPFAIL = "450 4.2.0 Mailbox temporarily unavailable, try again later"


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
        self.tempfail_rcpt = {a.lower() for a in args.tempfail_rcpt}
        self.drop_data_left = args.drop_data
        self.slow_rcpt = {a.lower() for a in args.slow_rcpt}
        self.slow_data = args.slow_data
        self.slow_seconds = args.slow_seconds
        self.slow_left = args.slow_count if args.slow_count > 0 else None  # None: always slow
        self.no_auth = args.no_auth
        self.max_auth_connections = args.max_auth_connections
        self.max_messages_per_minute = args.max_messages_per_minute
        self.authenticated = {}      # mailbox -> authenticated connections now
        self.accepted_at = {}        # mailbox -> [monotonic times of accepted messages]
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
            # fault counters (opt-in flags)
            "rcpt_tempfailed": 0,
            "data_dropped": 0,
            "slow_replies": 0,
            "concurrency_refused": 0,
            "max_authenticated_per_mailbox": 0,
            "rate_limited": 0,
            "stalled_connections": 0,
        }
        self.next_id = 1
        self.save()

    def bump(self, key, by=1):
        self.counters[key] += by
        if key == "current_connections":
            self.counters["max_concurrent_connections"] = max(
                self.counters["max_concurrent_connections"], self.counters[key])
        self.save()

    def take_slow(self):
        """True if this reply is to be slow (and counts it)."""
        if self.slow_left is not None:
            if self.slow_left <= 0:
                return False
            self.slow_left -= 1
        self.bump("slow_replies")
        return True

    def auth_slot(self, mailbox):
        """Takes one authenticated-connection slot of `mailbox`; False when
        --max-auth-connections are already in use."""
        now = self.authenticated.get(mailbox, 0)
        if self.max_auth_connections and now >= self.max_auth_connections:
            self.bump("concurrency_refused")
            return False
        self.authenticated[mailbox] = now + 1
        if now + 1 > self.counters["max_authenticated_per_mailbox"]:
            self.counters["max_authenticated_per_mailbox"] = now + 1
            self.save()
        return True

    def release_slot(self, mailbox):
        self.authenticated[mailbox] = max(0, self.authenticated.get(mailbox, 0) - 1)

    def over_rate(self, mailbox):
        if not self.max_messages_per_minute:
            return False
        now = time.monotonic()
        recent = [t for t in self.accepted_at.get(mailbox, []) if now - t < 60]
        self.accepted_at[mailbox] = recent
        return len(recent) >= self.max_messages_per_minute

    def note_accepted(self, mailbox):
        self.accepted_at.setdefault(mailbox, []).append(time.monotonic())

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
        self._release_slot()
        super().connection_lost(error)

    def _release_slot(self):
        mailbox = getattr(self, "_slot", None)
        if mailbox is not None:
            self._slot = None
            self.state.release_slot(mailbox)

    async def smtp_QUIT(self, arg):
        # Exchange stops counting a session once it said QUIT.
        if not arg:
            self._release_slot()
        await super().smtp_QUIT(arg)

    async def smtp_DATA(self, arg):
        # --drop-data: the connection breaks in the middle of the message.
        if self.state.drop_data_left > 0 and self.envelope.rcpt_tos and not arg and \
                (self.session.authenticated or self.state.no_auth):
            self.state.drop_data_left -= 1
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil()     # the first line of the message, no more
            self.state.bump("data_dropped")
            self.transport.abort()             # as a network failure would: reset, no reply
            return
        await super().smtp_DATA(arg)

    async def smtp_AUTH(self, arg):
        if self.state.no_auth:
            self.state.bump("auth_attempts")
            self.state.auth_log("FAIL AUTH sent to an upstream without AUTH")
        await super().smtp_AUTH(arg)

    async def check_auth_needed(self, caller_method):
        if self.state.no_auth:
            return False
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
        if not self.state.auth_slot(mailbox):
            self.state.auth_log("REFUSED XOAUTH2 mailbox=%s: concurrent connections limit" % mailbox)
            return AuthResult(success=False, handled=False, message=EXCHANGE_CONCURRENCY)
        self._slot = mailbox
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


def mailbox_of(session):
    return (session.auth_data or {}).get("mailbox") or "(unauthenticated)"


class StallProtocol(asyncio.Protocol):
    """--stall: takes the connection and never answers."""

    def __init__(self, state):
        self.state = state

    def connection_made(self, transport):
        self.state.bump("connections")
        self.state.bump("stalled_connections")
        self.transport = transport

    def data_received(self, data):
        pass


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = ["250-%s Hello [%s]" % (server.hostname, session.peer[0] if session.peer else "")]
        for line in responses[1:-1]:
            if line == "250-SMTPUTF8":
                continue  # Exchange lists it last
            if self.state.no_auth and line.startswith("250-AUTH"):
                continue
            out.append(line)
            if line.startswith("250-SIZE"):
                out.append("250-PIPELINING")
                out.append("250-DSN")
                out.append("250-ENHANCEDSTATUSCODES")
        out.append("250 SMTPUTF8" if server.enable_SMTPUTF8 else "250 HELP")
        return out

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.state.over_rate(mailbox_of(session)):
            self.state.bump("rate_limited")
            return RATE_LIMITED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.state.reject_rcpt:
            self.state.bump("rcpt_rejected")
            return "550 5.1.1 User unknown"
        if address.lower() in self.state.tempfail_rcpt:
            self.state.bump("rcpt_tempfailed")
            return RCPT_TEMPFAIL
        if address.lower() in self.state.slow_rcpt and self.state.take_slow():
            await asyncio.sleep(self.state.slow_seconds)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        if self.state.tempfail_left > 0:
            self.state.tempfail_left -= 1
            self.state.bump("data_tempfailed")
            return "451 4.3.0 Temporary server error. Please try again later"
        number = self.state.store(envelope, session)
        self.state.note_accepted(mailbox_of(session))
        if self.state.slow_data and self.state.take_slow():
            await asyncio.sleep(self.state.slow_seconds)
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
    parser.add_argument("--tempfail-rcpt", action="append", default=[])
    parser.add_argument("--drop-data", type=int, default=0)
    parser.add_argument("--slow-rcpt", action="append", default=[])
    parser.add_argument("--slow-data", action="store_true")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--slow-count", type=int, default=1)
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--max-auth-connections", type=int, default=0)
    parser.add_argument("--max-messages-per-minute", type=int, default=0)
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
        if args.stall:
            return StallProtocol(state)
        return ExchangeLikeSMTP(
            handler, state,
            hostname=args.hostname,
            ident="Microsoft ESMTP MAIL Service ready",
            tls_context=context,
            require_starttls=True,
            auth_required=not args.no_auth,
            auth_require_tls=True,
            auth_exclude_mechanism=["PLAIN", "LOGIN", "XOAUTH2"] if args.no_auth else ["PLAIN"],
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
