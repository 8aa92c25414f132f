"""Helpers for the integration tests: fixtures as subprocesses, the real
subrelay binary with a config written per test, a raw SMTP dialogue helper
and a poller.

The binary comes from the SUBRELAY_BINARY environment variable (run_tests.py
sets it from --binary).
"""
import base64
import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import pki as pki_module

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "Xq8~client.secret-VALUE_do-not-log~7Hn2pQ"
UPSTREAM_MAILBOX = "relay@contoso.com"
RELAY_HOSTNAME = "relay.example.test"

REPLY_BAD_CREDENTIALS = "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect."
REPLY_DISABLED_MAILBOX = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
                          "for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.")
REPLY_DISABLED_TENANT = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
                         "for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")
REPLY_NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."
REPLY_SEND_AS_DENIED = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"

DEFAULT_TIMEOUT = 30.0

SCANNER_ID = "scanner@contoso.com"
SCANNER_PASSWORD = "Scanner-Passw0rd!4711"


# ---------------------------------------------------------------- basics

def binary():
    path = os.environ.get("SUBRELAY_BINARY")
    if not path:
        raise RuntimeError("SUBRELAY_BINARY is not set (run through run_tests.py --binary PATH)")
    return path


_THREAD_SANITIZER = {}


def under_thread_sanitizer():
    """Whether the relay under test was built with ThreadSanitizer, whose
    shadow memory grows with the memory the program touches: a relay's RSS
    says little about the relay there, and the tests that measure it check
    their bound in the other builds only (the ASan+UBSan suite runs the same
    tests in the same `make test`)."""
    path = binary()
    if path not in _THREAD_SANITIZER:
        with open(path, "rb") as f:
            _THREAD_SANITIZER[path] = b"__tsan_init" in f.read()
    return _THREAD_SANITIZER[path]


def run_root():
    """One directory per test run; run_tests.py removes it when all passed."""
    root = os.environ.get("SUBRELAY_IT_ROOT")
    if not root:
        root = tempfile.mkdtemp(prefix="subrelay-it-")
        os.environ["SUBRELAY_IT_ROOT"] = root
    return root


_PKI = None


def shared_pki():
    global _PKI
    if _PKI is None:
        _PKI = pki_module.make_pki(os.path.join(run_root(), "pki"))
    return _PKI


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


@contextlib.contextmanager
def small_asan_quarantine():
    """For a relay started inside it whose memory a test measures: AddressSanitizer
    keeps freed memory in a quarantine of up to 256 MiB (and TLS frees and takes
    back a record buffer for every 16 KiB record), which would fill with the
    traffic of the test alone. A small one keeps the measurement about the relay.
    Other builds ignore the variable."""
    before = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = (before + ":" if before else "") + "quarantine_size_mb=1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = before


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def tail(path, lines=60):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return "(no %s)\n" % path


def split_leading_received(data):
    """Splits the leading Received: header fields (with their folded
    continuation lines) off a message. Returns (list_of_fields, rest)."""
    fields = []
    pos = 0
    while data[pos:pos + 9].lower() == b"received:":
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        end += 2
        while data[end:end + 1] in (b" ", b"\t"):
            nxt = data.find(b"\r\n", end)
            if nxt < 0:
                break
            end = nxt + 2
        fields.append(data[pos:end])
        pos = end
    return fields, data[pos:]


def dot_stuff(message):
    """The message as a client sends it after 354, terminator included
    (message must end in CRLF)."""
    assert message.endswith(b"\r\n")
    stuffed = re.sub(rb"(?m)^\.", b"..", message)  # (?m)^ also matches after a bare LF: fine here
    return stuffed + b".\r\n"


def submit_on(d, sender, rcpt="alice@example.org", subject="test"):
    """One message on an open dialogue (EHLO done, AUTH done if needed):
    the reply to MAIL if it is not 250, else the reply to the data."""
    d.send("MAIL FROM:<%s>" % sender)
    reply = d.read_reply()[-1]
    if not reply.startswith("250"):
        return reply
    d.send("RCPT TO:<%s>" % rcpt)
    d.expect("250 *")
    d.send("DATA")
    d.expect("354 *")
    d.send_raw(dot_stuff(make_message(sender, rcpt, subject)))
    return d.read_reply()[-1]


def make_message(sender, recipient, subject, body_lines=None, extra_headers=()):
    """A CRLF message with a unique Message-ID; bytes."""
    token = os.urandom(6).hex()
    lines = [
        "From: <%s>" % sender,
        "To: <%s>" % recipient,
        "Subject: %s" % subject,
        "Date: Sat, 28 Nov 2026 12:00:00 +0000",
        "Message-ID: <%s.%s@scanner.contoso.test>" % (token, subject.replace(" ", "-")),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ] + list(extra_headers) + [""]
    body = body_lines if body_lines is not None else [
        "Scan of document %s" % token,
        ".a line that starts with a dot",
        "..two dots",
        "trailing spaces   ",
        "",
        "tab\there, umlaut \u00fc",
    ]
    return ("\r\n".join(lines + body) + "\r\n").encode("utf-8")


def recorded_messages(state_dir):
    """What a fake upstream (SMTP or Graph) recorded: [(NNN.eml bytes, NNN.json dict)] in arrival order."""
    out = []
    for name in sorted(os.listdir(state_dir)):
        if re.fullmatch(r"\d{3}\.json", name):
            meta = read_json(os.path.join(state_dir, name))
            with open(os.path.join(state_dir, name[:-5] + ".eml"), "rb") as f:
                out.append((f.read(), meta))
    return out


# ---------------------------------------------------------------- processes

class Process:
    """A child process with stdout+stderr going to a log file."""

    def __init__(self, argv, log_path, cwd=None, env=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=cwd, env=env)
        self.exit_expected = False   # set once the test asked it to end

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.exit_expected = True
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout=DEFAULT_TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is not None:
                self._log.close()

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """SIGTERM, then SIGKILL if it does not exit. Returns the exit code."""
        self.exit_expected = True
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()
        return self.proc.returncode

    def kill(self):
        self.exit_expected = True
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=DEFAULT_TIMEOUT)
        self._log.close()
        return self.proc.returncode


class FakeToken:
    """The fake identity platform (fake_token.py) as a child process.

    Every keyword beyond the first ones is opt-in and maps to one of
    fake_token.py's flags; the defaults give the plain client-secret
    endpoint the relay tests have always used."""

    OPTION_DEFAULTS = {
        "errors": (), "expires_in": 3599, "client_cert": None, "refresh_token": None,
        "confidential_refresh": False, "revoke_refresh_token": False,
        "device_interval": 1, "device_pending": 0, "device_slow_down": False,
        "slow_down_increment": 5, "device_outcome": "success",
        "google_service_account": None, "google_subjects": (), "google_client_id": None,
        "google_client_secret": None, "google_refresh_token": None,
    }
    # Options whose value is a secret or token: passed to the fake in a file.
    FILE_OPTIONS = {"refresh_token": "--refresh-token-file",
                    "google_client_secret": "--google-client-secret-file",
                    "google_refresh_token": "--google-refresh-token-file"}

    def __init__(self, workdir, pki, port=None, client_secret=CLIENT_SECRET, fail_first=0,
                 **options):
        self.state_dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.pki = pki
        self.port = port or free_port()
        self.secret_file = None
        if client_secret is not None:
            self.secret_file = self._write_file("expected-client-secret", client_secret)
        self.fail_first = fail_first
        unknown = set(options) - set(self.OPTION_DEFAULTS)
        if unknown:
            raise TypeError("unknown fake token options: %s" % sorted(unknown))
        self.options = dict(self.OPTION_DEFAULTS, **options)
        self.process = None

    def _write_file(self, name, text):
        path = os.path.join(self.state_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @property
    def base_url(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s/%s/oauth2/v2.0/token" % (self.base_url, TENANT)

    @property
    def devicecode_url(self):
        return "%s/%s/oauth2/v2.0/devicecode" % (self.base_url, TENANT)

    @property
    def google_url(self):
        return self.base_url + "/token"

    def option_argv(self):
        argv = []
        for name, value in self.options.items():
            if value == self.OPTION_DEFAULTS[name]:
                continue
            if name in self.FILE_OPTIONS:
                argv += [self.FILE_OPTIONS[name], self._write_file("initial-" + name, value)]
            elif name == "errors":
                argv += ["--errors", value if isinstance(value, str) else ",".join(map(str, value))]
            elif name == "google_subjects":
                for subject in value:
                    argv += ["--google-subject", subject]
            elif isinstance(value, bool):
                argv.append("--" + name.replace("_", "-"))
            else:
                argv += ["--" + name.replace("_", "-"), str(value)]
        return argv

    def start(self):
        ready = os.path.join(self.state_dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        leaf = self.pki.leaf("token")
        argv = [PYTHON, os.path.join(HERE, "fake_token.py"),
                "--port", str(self.port), "--cert", leaf.cert, "--key", leaf.key,
                "--state-dir", self.state_dir, "--tenant", TENANT,
                "--client-id", CLIENT_ID, "--fail-first", str(self.fail_first)]
        if self.secret_file:
            argv += ["--client-secret-file", self.secret_file]
        argv += self.option_argv()
        self.process = Process(argv, os.path.join(self.state_dir, "fake_token.stderr"))
        wait_for(lambda: os.path.exists(ready) or not self.process.running(), what="token endpoint")
        if not self.process.running():
            raise RuntimeError("fake token endpoint did not start:\n" + tail(self.process.log_path))
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    LEGACY_COUNTERS = ("requests", "issued", "refused", "unavailable")

    def counters(self, full=False):
        """The four totals (requests, issued, refused, unavailable) as they
        always were; full=True adds grants, issued_by_grant, refusals (by
        reason), device_poll_violations, device_codes_issued, hung, scripted."""
        counters = read_json(os.path.join(self.state_dir, "token-counters.json"), {})
        if full:
            return counters
        return {k: v for k, v in counters.items() if k in self.LEGACY_COUNTERS}

    def refusals(self):
        """{reason: count} of refused and unavailable answers."""
        return self.counters(full=True).get("refusals", {})

    def current_refresh_token(self):
        """The Microsoft refresh token the fake honours now (None before any)."""
        state = read_json(os.path.join(self.state_dir, "refresh-state.json"), {})
        return state.get("current")

    def write_control(self, revoke=False, google_revoke=False, errors=()):
        """Acts at the fake's next request: revoke the current Microsoft (or
        Google) refresh token, or append scripted errors. Replaces a control
        file the fake has not read yet."""
        control = {}
        if revoke:
            control["revoke"] = True
        if google_revoke:
            control["google_revoke"] = True
        if errors:
            control["errors"] = errors if isinstance(errors, str) else ",".join(map(str, errors))
        path = os.path.join(self.state_dir, "control.json")
        with open(path + ".tmp", "w") as f:
            json.dump(control, f)
        os.replace(path + ".tmp", path)

    def log(self):
        try:
            with open(os.path.join(self.state_dir, "token.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @property
    def tokens_file(self):
        return os.path.join(self.state_dir, "tokens.txt")

    def tokens(self):
        try:
            with open(self.tokens_file) as f:
                return [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            return []


class FakeUpstream:
    # Opt-in faults (fake_upstream.py describes them); the defaults change nothing.
    FAULT_DEFAULTS = {
        "tempfail_rcpt": (), "drop_data": 0, "slow_rcpt": (), "slow_data": False,
        "slow_seconds": 5.0, "slow_count": 1, "stall": False, "no_auth": False,
        "max_auth_connections": 0, "max_messages_per_minute": 0,
    }

    def __init__(self, workdir, pki, tokens_file, port=None, mailboxes=(UPSTREAM_MAILBOX,),
                 reject_rcpt=(), tempfail_data=0, **faults):
        self.state_dir = workdir
        self.tokens_file = tokens_file
        os.makedirs(workdir, exist_ok=True)
        self.pki = pki
        self.port = port or free_port()
        self.mailboxes = list(mailboxes)
        self.reject_rcpt = list(reject_rcpt)
        self.tempfail_data = tempfail_data
        unknown = set(faults) - set(self.FAULT_DEFAULTS)
        if unknown:
            raise TypeError("unknown fake upstream options: %s" % sorted(unknown))
        self.faults = dict(self.FAULT_DEFAULTS, **faults)
        self.process = None

    def fault_argv(self):
        argv = []
        for name, value in self.faults.items():
            flag = "--" + name.replace("_", "-")
            if value == self.FAULT_DEFAULTS[name]:
                continue
            if isinstance(value, bool):
                argv.append(flag)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    argv += [flag, v]
            else:
                argv += [flag, str(value)]
        return argv

    def start(self):
        ready = os.path.join(self.state_dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        leaf = self.pki.leaf("upstream")
        argv = [PYTHON, os.path.join(HERE, "fake_upstream.py"), "--port", str(self.port),
                "--cert", leaf.cert, "--key", leaf.key, "--state-dir", self.state_dir,
                "--tokens-file", self.tokens_file, "--tempfail-data", str(self.tempfail_data)]
        for m in self.mailboxes:
            argv += ["--mailbox", m]
        for r in self.reject_rcpt:
            argv += ["--reject-rcpt", r]
        argv += self.fault_argv()
        self.process = Process(argv, os.path.join(self.state_dir, "fake_upstream.stderr"))
        wait_for(lambda: os.path.exists(ready) or not self.process.running(), what="fake upstream")
        if not self.process.running():
            raise RuntimeError("fake upstream did not start:\n" + tail(self.process.log_path))
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    def counters(self):
        return read_json(os.path.join(self.state_dir, "counters.json"), {})

    def auth_log(self):
        try:
            with open(os.path.join(self.state_dir, "auth.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def messages(self):
        """[(eml bytes, envelope dict)] in arrival order."""
        return recorded_messages(self.state_dir)

    def wait_messages(self, count, timeout=DEFAULT_TIMEOUT):
        return wait_for(lambda: len(self.messages()) >= count and self.messages(), timeout=timeout,
                        what="%d message(s) at the fake upstream" % count)


class FakeGraph:
    """The fake Microsoft Graph (fake_graph.py) as a child process. It picks
    its own port and writes it into its ready file; it accepts the tokens
    the fake identity platform issued for Graph (token-scopes.txt)."""

    def __init__(self, workdir, pki, token_scopes, mailboxes=(), max_concurrent=4,
                 max_request_bytes=4 * 1024 * 1024, retry_after=1, delay=0.0, send_as=(), mail_readwrite=True):
        self.state_dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.pki = pki
        self.token_scopes = token_scopes
        self.mailboxes = list(mailboxes)
        self.send_as = list(send_as)   # checked (Exchange's Send As) when not empty
        self.mail_readwrite = mail_readwrite  # False: drafts are refused (the app lacks Mail.ReadWrite)
        self.options = {"max_concurrent": max_concurrent, "max_request_bytes": max_request_bytes,
                        "retry_after": retry_after, "delay": delay}
        self.process = None
        self.port = None

    def start(self):
        ready = os.path.join(self.state_dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        leaf = self.pki.leaf("graph")
        argv = [PYTHON, os.path.join(HERE, "fake_graph.py"), "--cert", leaf.cert, "--key", leaf.key,
                "--state-dir", self.state_dir, "--token-scopes", self.token_scopes]
        for m in self.mailboxes:
            argv += ["--mailbox", m]
        for a in self.send_as:
            argv += ["--send-as", a]
        if not self.mail_readwrite:
            argv.append("--no-mail-readwrite")
        for name, value in self.options.items():
            argv += ["--" + name.replace("_", "-"), str(value)]
        self.process = Process(argv, os.path.join(self.state_dir, "fake_graph.stderr"))
        wait_for(lambda: os.path.exists(ready) or not self.process.running(), what="fake Graph")
        if not self.process.running():
            raise RuntimeError("fake Graph did not start:\n" + tail(self.process.log_path))
        with open(ready) as f:
            self.port = int(f.read().strip())
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def counters(self):
        return read_json(os.path.join(self.state_dir, "counters.json"), {})

    def script_errors(self, errors):
        """{mailbox: [error, ...]}: answered, one per request, instead of sending."""
        # Whole or not at all: the fake reads it at each request.
        path = os.path.join(self.state_dir, "control.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"errors": errors}, f)
        os.replace(path + ".tmp", path)

    def messages(self):
        """[(eml bytes, {"mailbox", "recipients"})] in arrival order."""
        return recorded_messages(self.state_dir)


# ---------------------------------------------------------------- subrelay

_HASH_CACHE = {}


def hash_password(password):
    if password not in _HASH_CACHE:
        result = subprocess.run([binary(), "hash-password"], input=(password + "\n").encode(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if result.returncode != 0:
            raise RuntimeError("subrelay hash-password failed (%d): %s"
                               % (result.returncode, result.stderr.decode(errors="replace")))
        hashed = result.stdout.decode().strip()
        if not hashed.startswith("$"):
            raise RuntimeError("subrelay hash-password printed %r, not a crypt hash" % hashed)
        _HASH_CACHE[password] = hashed
    return _HASH_CACHE[password]


def toml_string(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string for our values


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


class Account:
    def __init__(self, identity, password, disabled=None, allowed_senders=None, upstream_mailbox=None,
                 settings=None):
        self.identity = identity
        self.password = password
        self.disabled = disabled            # True / False / None (follow org)
        self.allowed_senders = allowed_senders
        self.upstream_mailbox = upstream_mailbox
        self.settings = settings or {}      # any other [[mailbox]] keys

    def toml(self):
        lines = ["[[mailbox]]", "identity = %s" % toml_string(self.identity),
                 "password_hash = %s" % toml_string(hash_password(self.password))]
        if self.disabled is not None:
            lines.append("smtp_client_authentication_disabled = %s" % toml_value(self.disabled))
        if self.allowed_senders is not None:
            lines.append("allowed_senders = %s" % toml_value(self.allowed_senders))
        if self.upstream_mailbox is not None:
            lines.append("upstream_mailbox = %s" % toml_string(self.upstream_mailbox))
        lines += ["%s = %s" % (k, toml_value(v)) for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"


class Relay:
    """The real subrelay binary with a config + policy written into workdir."""

    def __init__(self, workdir, pki, accounts, org_disabled=True, upstream_port=None, token_url=None,
                 kind="smtp", log_level=None, extra_sections=None, submission_port=None,
                 submissions_port=None, omit_sections=(), device_networks=(), admin=False):
        self.workdir = workdir
        # The admin listener (/metrics, /healthz, /readyz) on a free port;
        # off unless asked for (its default port would clash between relays).
        self.admin = admin
        os.makedirs(workdir, exist_ok=True)
        self.pki = pki
        self.accounts = {a.identity: a for a in accounts}
        self.org_disabled = org_disabled
        self.upstream_port = upstream_port
        self.token_url = token_url
        self.kind = kind
        self.log_level = log_level
        self.extra_sections = extra_sections or {}
        self.omit_sections = tuple(omit_sections)   # e.g. ("oauth",) with upstream.auth = "none"
        self.device_networks = list(device_networks)  # dicts, each a [[device_network]]
        self.submission_port = submission_port or free_port()
        self.submissions_port = submissions_port or free_port()
        # Two picks may return the same free port (nothing was bound between them).
        while self.submissions_port == self.submission_port and not submissions_port:
            self.submissions_port = free_port()
        self.config_path = os.path.join(workdir, "subrelay.toml")
        self.policy_path = os.path.join(workdir, "policy.toml")
        self.log_path = os.path.join(workdir, "subrelay.stderr")
        self.process = None
        self.starts = 0
        self.write_files()

    # -- files
    def config_text(self):
        sections = {
            "server": {
                "hostname": RELAY_HOSTNAME,
                "submission": ["127.0.0.1:%d" % self.submission_port],
                "submissions": ["127.0.0.1:%d" % self.submissions_port],
                "max_message_size": 36700160,
                "require_tls_for_auth": True,
                # Every test client is 127.0.0.1 (or 127.0.0.x): the per-client
                # limits are off unless a test is about them.
                "max_connections_per_client": 0,
                "max_connection_rate_per_client": 0,
            },
            "tls": {"cert_file": "relay-cert.pem", "key_file": "relay-key.pem"},
            # Many tests fail logins on purpose from one address, and many
            # log in at once.
            "auth": {"max_failures_per_client": 0, "lockout_threshold": 0, "max_waiting_logins": 0},
            "policy": {"file": "policy.toml"},
            "spool": {"dir": "spool"},
            "admin": {"listen": "127.0.0.1:0" if self.admin else ""},
        }
        if self.kind == "smtp":
            sections["upstream"] = {
                "kind": "smtp", "host": "127.0.0.1", "port": self.upstream_port, "tls": "starttls",
                "ca_file": "ca.pem", "mailbox": UPSTREAM_MAILBOX,
                "max_connections_per_mailbox": 3,
                "retry_initial_seconds": 1, "retry_max_seconds": 2,
            }
            sections["oauth"] = {
                "token_url": self.token_url, "client_id": CLIENT_ID,
                "client_secret_file": "client-secret",
                "scope": "https://outlook.office365.com/.default", "ca_file": "ca.pem",
            }
        else:
            sections["upstream"] = {"kind": "directory", "directory": "out"}
        if self.log_level:
            sections["log"] = {"level": self.log_level}
        for name, values in self.extra_sections.items():
            sections.setdefault(name, {}).update(values)
        for name in self.omit_sections:
            sections.pop(name, None)
        out = []
        for name, values in sections.items():
            out.append("[%s]" % name)
            for k, v in values.items():
                if v is not None:
                    out.append("%s = %s" % (k, toml_value(v)))
            out.append("")
        for values in self.device_networks:
            out.append("[[device_network]]")
            out += ["%s = %s" % (k, toml_value(v)) for k, v in values.items()]
            out.append("")
        return "\n".join(out)

    def policy_text(self):
        text = "[organization]\nsmtp_client_authentication_disabled = %s\n\n" % toml_value(self.org_disabled)
        return text + "\n".join(a.toml() for a in self.accounts.values())

    def write_files(self):
        shutil.copyfile(self.pki.ca_cert, os.path.join(self.workdir, "ca.pem"))
        leaf = self.pki.leaf("relay")
        shutil.copyfile(leaf.cert, os.path.join(self.workdir, "relay-cert.pem"))
        shutil.copyfile(leaf.key, os.path.join(self.workdir, "relay-key.pem"))
        os.chmod(os.path.join(self.workdir, "relay-key.pem"), 0o600)
        secret = os.path.join(self.workdir, "client-secret")
        with open(secret, "w") as f:
            f.write(CLIENT_SECRET)
        os.chmod(secret, 0o600)
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        with open(self.policy_path, "w") as f:
            f.write(self.policy_text())
        os.chmod(self.policy_path, 0o600)  # password hashes: as an operator keeps it

    # -- process
    def start(self, wait=True):
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(b"==== start %d ====\n" % self.starts)
        # SUBRELAY_WRAPPER, e.g. "valgrind -q", runs the relay under a tool.
        wrapper = os.environ.get("SUBRELAY_WRAPPER", "").split()
        self.process = Process(wrapper + [binary(), "serve", "--config", self.config_path],
                               self.log_path, cwd=self.workdir)
        if wait:
            # Ready means the listeners accept and start-up is over ("ready as"
            # is logged after the spool has been read for delivery).
            marker = b"==== start %d ====" % self.starts
            wait_for(lambda: not self.process.running() or
                     (port_accepts(self.submission_port) and port_accepts(self.submissions_port) and
                      b" ready as " in self.log().split(marker)[-1]),
                     what="subrelay listeners")
            if not self.process.running():
                raise AssertionError("subrelay exited with %s at start-up:\n%s"
                                     % (self.process.proc.returncode, tail(self.log_path)))
        return self

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """SIGTERM; returns the exit code (SIGKILL after timeout)."""
        if self.process is None:
            return None
        return self.process.stop(timeout)

    def kill(self):
        if self.process is not None:
            return self.process.kill()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    # -- the admin listener
    @property
    def admin_port(self):
        """The port the admin listener bound in the latest start (from its log line)."""
        marker = b"==== start %d ====" % self.starts
        found = re.findall(rb"admin listening on 127\.0\.0\.1:(\d+) ", self.log().split(marker)[-1])
        if not found:
            raise AssertionError("the relay logged no admin listener:\n" + tail(self.log_path))
        return int(found[-1])

    def admin_request(self, path, method="GET", timeout=30):
        """(status, headers {lower-case name: value}, body str) of one request to the admin listener."""
        status, headers, body = http_request(self.admin_port, method, path, timeout=timeout)
        return status, {k.lower(): v for k, v in headers}, body

    def metrics(self):
        """The /metrics text, parsed: {(name, ((label, value), ...)): float}, labels sorted."""
        status, _, body = self.admin_request("/metrics")
        if status != 200:
            raise AssertionError("/metrics answered %d" % status)
        return parse_metrics(body), body

    # -- the spool, read directly (safe while the relay runs: files are renamed into place)
    @property
    def spool_dir(self):
        configured = self.extra_sections.get("spool", {}).get("dir", "spool")
        return os.path.join(self.workdir, configured)   # an absolute dir stays as it is

    def _spool_names(self, sub):
        try:
            return sorted(n for n in os.listdir(os.path.join(self.spool_dir, sub)) if not n.startswith("."))
        except FileNotFoundError:
            return []

    def queued_ids(self):
        """Ids of the messages in spool/queue."""
        return self._spool_names("queue")

    def spool_tmp_files(self):
        """Names in spool/tmp (partial, never acknowledged messages)."""
        return self._spool_names("tmp")

    def state_files(self):
        """Names in spool/state (one per message tried at least once)."""
        return [n for n in self._spool_names("state") if not n.endswith(".tmp")]

    def queued_message(self, qid):
        """(envelope header text, message bytes) of a queued message."""
        with open(os.path.join(self.spool_dir, "queue", qid), "rb") as f:
            data = f.read()
        # The envelope header is LF-terminated lines ending in an empty line.
        head, _, body = data.partition(b"\n\n")
        return head.decode("utf-8", "replace"), body

    def queue_list(self):
        """`subrelay queue list --json` as a list of dicts, or None when the
        command is not available (callers then read the spool directly)."""
        code, out, _ = run_cli(["queue", "list", "--json"], config=self.config_path)
        if code != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    @property
    def out_dir(self):
        return os.path.join(self.workdir, "out")

    def directory_messages(self):
        """[(eml bytes, envelope dict)] from a directory upstream, by file name."""
        out = []
        if not os.path.isdir(self.out_dir):
            return out
        for name in sorted(os.listdir(self.out_dir)):
            if name.endswith(".json"):
                meta = read_json(os.path.join(self.out_dir, name))
                eml = os.path.join(self.out_dir, name[:-5] + ".eml")
                if meta is None or not os.path.exists(eml):
                    continue
                with open(eml, "rb") as f:
                    out.append((f.read(), meta, name[:-5]))
        return out

    # -- clients
    def client_tls_context(self):
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        return ctx

    def dialogue(self, implicit_tls=False, timeout=15):
        port = self.submissions_port if implicit_tls else self.submission_port
        d = Dialogue(socket.create_connection(("127.0.0.1", port), timeout=timeout),
                     self.client_tls_context())
        if implicit_tls:
            d.wrap_tls()
        return d

    def tls_dialogue(self, ehlo="scanner.contoso.test"):
        """EHLO, STARTTLS, EHLO again; returns the dialogue with the second
        EHLO reply's lines in d.ehlo_lines."""
        d = self.dialogue()
        d.expect("220 *")
        d.send("EHLO " + ehlo)
        d.expect("250 *")
        d.send("STARTTLS")
        d.expect("220 *")
        d.wrap_tls()
        d.send("EHLO " + ehlo)
        d.ehlo_lines = d.expect("250 *")
        return d

    def authenticated_dialogue(self, identity, password, ehlo="scanner.contoso.test"):
        """STARTTLS + AUTH PLAIN; returns the dialogue after the 235."""
        d = self.tls_dialogue(ehlo)
        d.send("AUTH PLAIN " + plain_credentials(identity, password))
        d.expect("235 *")
        return d

    def data_dialogue(self, identity, password, sender, recipients):
        """Authenticated, MAIL and RCPT accepted, DATA answered 354: ready for the message."""
        d = self.authenticated_dialogue(identity, password)
        d.send("MAIL FROM:<%s>" % sender)
        d.expect("250 *")
        for r in recipients:
            d.send("RCPT TO:<%s>" % r)
            d.expect("250 *")
        d.send("DATA")
        d.expect("354 *")
        return d


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse_metrics(text):
    """Samples of a Prometheus text exposition: {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = tuple(sorted((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                              for k, v in _LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    """The value of one series (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def plain_credentials(identity, password):
    return base64.b64encode(b"\0" + identity.encode() + b"\0" + password.encode()).decode()


def scanner_account(**kwargs):
    kwargs.setdefault("disabled", False)
    return Account(SCANNER_ID, SCANNER_PASSWORD, **kwargs)


def smtplib_send(relay, message, rcpts, sender=SCANNER_ID, identity=SCANNER_ID,
                 password=SCANNER_PASSWORD, implicit_tls=False, count=1):
    """Submits `message` `count` times over one connection with smtplib; a
    list of messages is submitted one after the other instead."""
    import smtplib
    ctx = relay.client_tls_context()
    if implicit_tls:
        s = smtplib.SMTP_SSL("127.0.0.1", relay.submissions_port, timeout=30, context=ctx)
        s.ehlo("scanner.contoso.test")
    else:
        s = smtplib.SMTP("127.0.0.1", relay.submission_port, timeout=30)
        s.ehlo("scanner.contoso.test")
        s.starttls(context=ctx)
        s.ehlo("scanner.contoso.test")
    try:
        s.login(identity, password)
        messages = message if isinstance(message, list) else [message] * count
        for m in messages:
            refused = s.sendmail(sender, rcpts, m)
            if refused:
                raise AssertionError("recipients refused: %r" % refused)
    finally:
        try:
            s.quit()
        except Exception:  # noqa: BLE001
            s.close()


def header_value(message, name):
    """The first header `name` of a message (bytes), without folding; str."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"(?im)^%s:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)" % re.escape(name), head)
    return re.sub(r"\r\n[ \t]+", " ", m.group(1)) if m else None


# ---------------------------------------------------------------- dialogue

class Dialogue:
    """Raw SMTP over a socket: send(line) and expect(pattern), in the style
    of maddy's tests. Patterns are fnmatch globs matched against the last
    line of one whole (possibly multi-line) reply."""

    def __init__(self, sock, tls_context=None):
        self.sock = sock
        self.tls_context = tls_context
        self.buffer = b""
        self.transcript = []

    def wrap_tls(self, server_hostname="localhost"):
        if self.buffer:
            raise AssertionError("unexpected bytes before the TLS handshake: %r" % self.buffer)
        self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.transcript.append("-- TLS %s" % self.sock.version())

    def tls_version(self):
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None

    def send(self, line):
        self.send_raw(line.encode() + b"\r\n")

    def send_raw(self, data):
        self.transcript.append("C: %r" % data[:200])
        self.sock.sendall(data)

    def read_line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; transcript:\n" + "\n".join(self.transcript))
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        text = line.decode("utf-8", "replace")
        self.transcript.append("S: " + text)
        return text

    def read_reply(self):
        """All lines of one reply."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if not re.match(r"^\d{3}[- ]", line + " "):
                raise AssertionError("malformed reply line %r" % line)
            if len(line) < 4 or line[3] == " ":
                return lines

    def expect(self, pattern):
        lines = self.read_reply()
        if not fnmatch.fnmatchcase(lines[-1], pattern):
            raise AssertionError("expected reply %r, got %r\ntranscript:\n%s"
                                 % (pattern, lines, "\n".join(self.transcript)))
        return lines

    def closed_by_peer(self, timeout=5):
        """True if the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- base test case

class IntegrationCase(unittest.TestCase):
    """Gives each test its own directory under the run root and stops every
    process it started (SIGKILL if SIGTERM does not do)."""

    def setUp(self):
        self.pki = shared_pki()
        name = self.id().split(".", 1)[-1].replace(".", "-")
        self.workdir = tempfile.mkdtemp(prefix=name + "-", dir=run_root())
        self.log_files = []
        self._processes = []
        self._relay_processes = []

    def tearDown(self):
        # A relay that died on its own (crash, abort) fails the test even if
        # its assertions passed; one still running must stop cleanly.
        problems = []
        for p in self._relay_processes:
            # A sanitizer's report (a race under ThreadSanitizer, a memory
            # error under AddressSanitizer) fails the test wherever it came.
            try:
                with open(p.log_path, "rb") as f:
                    logged = f.read()
            except OSError:
                logged = b""
            for sanitizer in (b"ThreadSanitizer", b"AddressSanitizer", b"runtime error:"):
                if sanitizer in logged:
                    problems.append("subrelay (pid %d) logged a %s report" % (p.pid, sanitizer.decode()))
            if p.exit_expected:
                continue
            if not p.running():
                problems.append("subrelay (pid %d) died during the test with status %s"
                                % (p.pid, p.proc.returncode))
                continue
            code = p.stop()
            if code != 0:
                problems.append("subrelay (pid %d) exited %s on SIGTERM at the end of the test"
                                % (p.pid, code))
        for p in reversed(self._processes):
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        if problems:
            self.fail("; ".join(problems) + "\n" + tail(self.relay.log_path, 15))

    def _track(self, fixture):
        self._processes.append(fixture.process)

    def start_token(self, **kwargs):
        t = FakeToken(os.path.join(self.workdir, "token"), self.pki, **kwargs)
        t.start()
        self._track(t)
        self.log_files += [t.process.log_path, os.path.join(t.state_dir, "token.log")]
        self.token = t
        return t

    def start_graph(self, **kwargs):
        g = FakeGraph(os.path.join(self.workdir, "graph"), self.pki,
                      os.path.join(self.workdir, "token", "token-scopes.txt"), **kwargs)
        g.start()
        self._track(g)
        self.log_files += [g.process.log_path, os.path.join(g.state_dir, "graph.log")]
        self.graph = g
        return g

    def make_upstream(self, **kwargs):
        u = FakeUpstream(os.path.join(self.workdir, "upstream"), self.pki,
                         os.path.join(self.workdir, "token", "tokens.txt"), **kwargs)
        self.upstream = u
        return u

    def start_upstream(self, upstream=None, **kwargs):
        u = upstream or self.make_upstream(**kwargs)
        u.start()
        self._track(u)
        self.log_files += [u.process.log_path, os.path.join(u.state_dir, "auth.log")]
        return u

    def make_relay(self, accounts, **kwargs):
        if kwargs.get("kind", "smtp") == "smtp":
            kwargs.setdefault("upstream_port", self.upstream.port)
            kwargs.setdefault("token_url", self.token.url)
        r = Relay(os.path.join(self.workdir, "relay"), self.pki, accounts, **kwargs)
        self.log_files.append(r.log_path)
        self.relay = r
        return r

    def start_relay(self, relay=None):
        r = relay or self.relay
        r.start()
        self._track(r)
        self._relay_processes.append(r.process)
        return r

    def full_stack(self, accounts, upstream_kwargs=None, **relay_kwargs):
        """Token endpoint + upstream + relay, all started."""
        self.start_token()
        self.start_upstream(**(upstream_kwargs or {}))
        relay = self.make_relay(accounts, **relay_kwargs)
        self.start_relay(relay)
        return relay

    # -- assertions shared by tests
    def assert_relayed(self, delivered, original, envelope_from, envelope_rcpts, meta=None):
        fields, rest = split_leading_received(delivered)
        self.assertEqual(len(fields), 1, "expected exactly one Received: header prepended, got %r"
                         % fields)
        self.assertIn(RELAY_HOSTNAME.encode(), fields[0],
                      "the Received: header should name the relay host")
        self.assertEqual(rest, original, "message bytes after the Received: header changed")
        if meta is not None:
            self.assertEqual(meta["mail_from"], envelope_from)
            self.assertEqual(meta["rcpt_tos"], list(envelope_rcpts))


# ---------------------------------------------------------------- accounting for messages

def message_id(message):
    """The Message-ID header of a message (bytes); str or None."""
    return header_value(message, "Message-ID")


def is_dsn(eml, meta):
    """True if an upstream message is a delivery status notification sent
    with the null sender (MAIL FROM:<>)."""
    ctype = (header_value(split_leading_received(eml)[1], "Content-Type") or "").lower()
    return meta.get("mail_from") in ("", "<>") and "multipart/report" in ctype


def account_for(relay, upstream, sent):
    """Where each sent message is: {message_id: {"delivered": copies at the
    upstream, "rcpts": [every recipient over those copies], "queued": files
    in the relay's spool/queue holding it (the original or a queued
    notice), "bounced": notices at the upstream naming it, "bounce_metas":
    their envelopes}}. `sent` is a list of message bytes with unique
    Message-IDs."""
    # The spool first, the upstream second: a message that leaves the spool
    # meanwhile is then seen at the upstream, never in neither place.
    queued = []
    for qid in relay.queued_ids():
        try:
            queued.append(relay.queued_message(qid)[1])
        except FileNotFoundError:
            pass   # delivered between listing and reading; counted at the upstream
    upstream_msgs = upstream.messages() if upstream is not None else []
    report = {}
    for message in sent:
        mid = message_id(message)
        entry = {"delivered": 0, "rcpts": [], "queued": 0, "bounced": 0, "bounce_metas": []}
        for eml, meta in upstream_msgs:
            if is_dsn(eml, meta):
                if mid.encode() in eml:
                    entry["bounced"] += 1
                    entry["bounce_metas"].append(meta)
            elif message_id(split_leading_received(eml)[1]) == mid:
                entry["delivered"] += 1
                entry["rcpts"] += meta["rcpt_tos"]
        entry["queued"] = sum(1 for body in queued if mid.encode() in body)
        report[mid] = entry
    return report


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError("required tool %r is not installed" % name)
    return path



# ---------------------------------------------------------------- policy files and the operator CLI

def policy_toml(org=None, mailboxes=(), authentication_policies=(), bindings=()):
    """The text of a full policy file. Each entry is a dict of file keys;
    a mailbox's "password" becomes its password_hash; None values are left out."""
    def table(header, values):
        lines = [header]
        for k, v in values.items():
            if k == "password" and v is not None:
                k, v = "password_hash", hash_password(v)
            if v is not None:
                lines.append("%s = %s" % (k, toml_value(v)))
        return "\n".join(lines) + "\n"

    org_values = {"smtp_client_authentication_disabled": True}
    org_values.update(org or {})
    parts = [table("[organization]", org_values)]
    parts += [table("[[authentication_policy]]", a) for a in authentication_policies]
    parts += [table("[[mailbox]]", m) for m in mailboxes]
    parts += [table("[[binding]]", b) for b in bindings]
    return "\n".join(parts)


def write_policy(relay, text):
    """Replaces a relay's policy file (atomically, as an editor that renames would)."""
    tmp = relay.policy_path + ".tmp-write"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, relay.policy_path)


def run_cli(args, config=None, stdin=b"", timeout=60):
    """Runs `subrelay VERB --config FILE ARGS...`; returns (code, stdout, stderr)."""
    argv = [binary()] + list(args[:1])
    if config is not None:
        argv += ["--config", config]
    argv += list(args[1:])
    result = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout)
    return (result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"))


def http_request(port, method, path, body=None, headers=None, context=None, host="127.0.0.1", timeout=30):
    """One HTTP request (HTTPS with an ssl context) to a local port; returns
    (status, [(header, value)...], body str)."""
    import http.client
    if context is not None:
        c = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def format_list_blocks(text):
    """PowerShell Format-List output as a list of {name: value} blocks."""
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        m = re.match(r"^(\w+)\s*: ?(.*)$", line)
        if m is None:
            raise AssertionError("not a Format-List line: %r in:\n%s" % (line, text))
        if m.group(1) in current:       # a new block without a blank line between
            blocks.append(current)
            current = {}
        current[m.group(1)] = m.group(2).rstrip()
    if current:
        blocks.append(current)
    return blocks


def connect_from(source_ip, port, host="127.0.0.1", timeout=15):
    """A TCP connection to host:port from a chosen local address (127/8 works on Linux)."""
    return socket.create_connection((host, port), timeout=timeout, source_address=(source_ip, 0))


def auth_reply(relay, identity, password):
    """The last line of the reply to AUTH PLAIN after STARTTLS (the session is closed)."""
    d = relay.tls_dialogue()
    try:
        d.send("AUTH PLAIN " + plain_credentials(identity, password))
        return d.read_reply()[-1]
    finally:
        d.close()


def generated_password(out):
    """The password new-relayaccount --generate-password printed."""
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    for line in lines:
        m = re.search(r"(?i)password\S*\s*[:=]\s*(\S+)\s*$", line)
        if m:
            return m.group(1)
    if len(lines) == 1 and " " not in lines[0]:
        return lines[0]
    raise AssertionError("cannot find the generated password in:\n" + out)


if __name__ == "__main__":
    sys.exit("this module holds helpers; run run_tests.py")
