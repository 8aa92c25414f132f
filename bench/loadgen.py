#!/usr/bin/python3
"""SMTP submission load generator.

N concurrent connections share T messages of S bytes; each connection sends
its share one after the other (or, with --new-connection-per-message, opens a
fresh connection, with STARTTLS and AUTH if asked, for every message: the
printer pattern; --resume then offers the TLS session of the device's
previous connection, as a device that keeps it does). The latency of a
message is the time from writing the final "." of DATA to reading the 250
reply; the transaction time runs from writing MAIL to that 250 (no
pipelining). Prints one JSON object.

The printer pattern runs one thread per device with blocking sockets: the
handshake's cryptography runs without the interpreter lock, and a blocking
TLS socket costs less Python per connection than asyncio's TLS transport
(the load generator shares the cores with the system it measures).

The password comes from the environment variable LOADGEN_PASSWORD so it
never appears in a process listing.
"""

import argparse
import asyncio
import base64
import json
import os
import socket
import ssl
import sys
import threading
import time

TIMEOUT = 300.0  # seconds for any single reply


class SmtpError(Exception):
    pass


async def read_reply(reader):
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not line:
            raise SmtpError("connection closed by server")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    try:
        code = int(lines[-1][:3])
    except ValueError:
        raise SmtpError("malformed reply %r" % lines[-1][:80])
    return code, b"".join(lines).decode("utf-8", "replace").strip()


async def expect(reader, code, what):
    got, text = await read_reply(reader)
    if got != code:
        raise SmtpError("%s: expected %d, got %s" % (what, code, text.splitlines()[-1]))


class BlockingConnection:
    """One SMTP connection over a blocking socket (the printer pattern)."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = None
        self.file = self.sock.makefile("rb")

    def write(self, data):
        (self.tls or self.sock).sendall(data)

    def read_reply(self):
        lines = []
        while True:
            line = self.file.readline(1 << 16)
            if not line:
                raise SmtpError("connection closed by server")
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise SmtpError("malformed reply %r" % lines[-1][:80])
        return code, b"".join(lines).decode("utf-8", "replace").strip()

    def expect(self, code, what):
        got, text = self.read_reply()
        if got != code:
            raise SmtpError("%s: expected %d, got %s" % (what, code, text.splitlines()[-1]))

    def start_tls(self, context, session):
        self.file.close()
        self.tls = context.wrap_socket(self.sock, server_hostname="localhost", session=session)
        self.file = self.tls.makefile("rb")

    def close(self):
        try:
            self.file.close()
            if self.tls is not None:
                # close_notify: OpenSSL marks the session of a connection
                # closed without it as not resumable.
                self.tls.unwrap()
        except (OSError, ValueError, ssl.SSLError):
            pass
        self.sock.close()


def build_body(size):
    """The part of the message after the per-message headers: filler lines of
    76 characters up to about `size` bytes in all (never a leading dot)."""
    line = b"x" * 76 + b"\r\n"
    n = max(1, (size - 200) // len(line))
    return line * n


class Generator:
    def __init__(self, args):
        self.a = args
        self.body = build_body(args.size)
        self.date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        self.latencies = []    # final "." to 250
        self.transactions = []  # MAIL to the 250 after the final "."
        self.sent = 0
        self.failed = 0
        self.errors = []
        self.resumed = 0        # connections whose TLS session was resumed
        self.handshakes = 0     # TLS handshakes in all
        self.lock = threading.Lock()
        self.sslctx = self.client_context() if args.starttls else None
        self.auth_line = None
        if args.user:
            password = os.environ.get("LOADGEN_PASSWORD", "")
            token = base64.b64encode(b"\0" + args.user.encode() + b"\0" + password.encode())
            self.auth_line = b"AUTH PLAIN " + token + b"\r\n"
        self.mail_line = ("MAIL FROM:<%s> SIZE=%d\r\n" % (args.sender, len(self.body) + 200)).encode()
        self.rcpt_line = ("RCPT TO:<%s>\r\n" % args.recipient).encode()

    @staticmethod
    def client_context():
        # Verifies nothing, so it loads no CA store either (that costs more
        # than a handshake).
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def message_bytes(self, conn, seq):
        headers = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench %d.%d\r\nDate: %s\r\n"
                   "Message-ID: <%d.%d.%d.%s@loadgen.bench.test>\r\n\r\n"
                   % (self.a.sender, self.a.recipient, conn, seq, self.date,
                      os.getpid(), conn, seq, os.urandom(4).hex())).encode()
        return headers

    # -- the printer pattern: a thread per device, a connection per message

    def device(self, conn, count):
        # A session can only be offered through the context that made it: a
        # context per device, as each device is a client of its own.
        ctx = self.client_context() if self.a.starttls else None
        session = None
        for seq in range(count):
            try:
                c = BlockingConnection(self.a.host, self.a.port)
                try:
                    c.expect(220, "greeting")
                    c.write(b"EHLO loadgen.bench.test\r\n")
                    c.expect(250, "EHLO")
                    if ctx is not None:
                        c.write(b"STARTTLS\r\n")
                        c.expect(220, "STARTTLS")
                        c.start_tls(ctx, session if self.a.resume else None)
                        with self.lock:
                            self.handshakes += 1
                            self.resumed += 1 if c.tls.session_reused else 0
                        c.write(b"EHLO loadgen.bench.test\r\n")
                        c.expect(250, "EHLO after STARTTLS")
                    if self.auth_line is not None:
                        c.write(self.auth_line)
                        c.expect(235, "AUTH PLAIN")
                    t_mail = time.perf_counter()
                    c.write(self.mail_line)
                    c.expect(250, "MAIL")
                    c.write(self.rcpt_line)
                    c.expect(250, "RCPT")
                    c.write(b"DATA\r\n")
                    c.expect(354, "DATA")
                    c.write(self.message_bytes(conn, seq))
                    c.write(self.body)
                    c.write(b".\r\n")
                    t0 = time.perf_counter()
                    c.expect(250, "end of DATA")
                    t1 = time.perf_counter()
                    c.write(b"QUIT\r\n")
                    try:
                        c.read_reply()
                    except (OSError, SmtpError):
                        pass
                    if c.tls is not None:
                        session = c.tls.session  # with the tickets that came after the handshake
                finally:
                    c.close()
                with self.lock:
                    self.latencies.append(t1 - t0)
                    self.transactions.append(t1 - t_mail)
                    self.sent += 1
            except Exception as e:
                with self.lock:
                    self.fail(1, e)

    def run_devices(self):
        n, total = self.a.connections, self.a.messages
        shares = [total // n + (1 if i < total % n else 0) for i in range(n)]
        threads = [threading.Thread(target=self.device, args=(i, c)) for i, c in enumerate(shares)]
        self.start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.end = time.time()

    # -- connections that stay open

    async def open(self):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.a.host, self.a.port, limit=1 << 16), TIMEOUT)
        try:
            await expect(reader, 220, "greeting")
            writer.write(b"EHLO loadgen.bench.test\r\n")
            await expect(reader, 250, "EHLO")
            if self.sslctx is not None:
                writer.write(b"STARTTLS\r\n")
                await expect(reader, 220, "STARTTLS")
                await asyncio.wait_for(writer.start_tls(self.sslctx, server_hostname="localhost"), TIMEOUT)
                writer.write(b"EHLO loadgen.bench.test\r\n")
                await expect(reader, 250, "EHLO after STARTTLS")
            if self.auth_line is not None:
                writer.write(self.auth_line)
                await expect(reader, 235, "AUTH PLAIN")
        except BaseException:
            writer.close()
            raise
        return reader, writer

    async def send(self, reader, writer, conn, seq):
        t_mail = time.perf_counter()
        writer.write(self.mail_line)
        await expect(reader, 250, "MAIL")
        writer.write(self.rcpt_line)
        await expect(reader, 250, "RCPT")
        writer.write(b"DATA\r\n")
        await expect(reader, 354, "DATA")
        writer.write(self.message_bytes(conn, seq))
        writer.write(self.body)
        await writer.drain()
        writer.write(b".\r\n")
        t0 = time.perf_counter()
        await expect(reader, 250, "end of DATA")
        t1 = time.perf_counter()
        self.latencies.append(t1 - t0)
        self.transactions.append(t1 - t_mail)
        self.sent += 1

    async def quit(self, reader, writer):
        try:
            writer.write(b"QUIT\r\n")
            await asyncio.wait_for(read_reply(reader), 10)
        except Exception:
            pass
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 5)
        except Exception:
            pass

    def fail(self, n, e):
        self.failed += n
        if len(self.errors) < 5:
            self.errors.append("%s: %s" % (type(e).__name__, e))

    async def connection(self, conn, count):
        if count == 0:
            return
        done = 0
        try:
            reader, writer = await self.open()
            try:
                for seq in range(count):
                    await self.send(reader, writer, conn, seq)
                    done += 1
            finally:
                await self.quit(reader, writer)
        except Exception as e:
            self.fail(count - done, e)

    async def run(self):
        n, total = self.a.connections, self.a.messages
        shares = [total // n + (1 if i < total % n else 0) for i in range(n)]
        self.start = time.time()
        await asyncio.gather(*(self.connection(i, c) for i, c in enumerate(shares)))
        self.end = time.time()


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--messages", type=int, default=100, help="total, shared by the connections")
    p.add_argument("--size", type=int, default=4096, help="message size in bytes")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--user", help="AUTH PLAIN as this user (password in $LOADGEN_PASSWORD)")
    p.add_argument("--sender", default="scanner@bench.test")
    p.add_argument("--recipient", default="someone@example.com")
    p.add_argument("--new-connection-per-message", action="store_true")
    p.add_argument("--resume", action="store_true",
                   help="with --new-connection-per-message and --starttls: offer the device's last TLS session")
    a = p.parse_args()
    if a.connections < 1 or a.messages < 1:
        p.error("--connections and --messages must be at least 1")
    if a.resume and not (a.new_connection_per_message and a.starttls):
        p.error("--resume needs --new-connection-per-message and --starttls")
    g = Generator(a)
    cpu0 = time.process_time()
    if a.new_connection_per_message:
        g.run_devices()
    else:
        asyncio.run(g.run())
    cpu = time.process_time() - cpu0
    lat = sorted(g.latencies)
    txn = sorted(g.transactions)
    json.dump({
        "start": g.start, "end": g.end, "sent": g.sent, "failed": g.failed, "errors": g.errors,
        "p50_ms": None if not lat else percentile(lat, 0.50) * 1000,
        "p99_ms": None if not lat else percentile(lat, 0.99) * 1000,
        "max_ms": None if not lat else lat[-1] * 1000,
        "txn_p50_ms": None if not txn else percentile(txn, 0.50) * 1000,
        "txn_p99_ms": None if not txn else percentile(txn, 0.99) * 1000,
        "cpu_s": cpu,
        "tls_handshakes": g.handshakes, "tls_resumed": g.resumed,
    }, sys.stdout)
    sys.stdout.write("\n")
    return 0 if g.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
