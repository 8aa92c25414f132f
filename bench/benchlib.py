"""Shared helpers for the benchmarks: dependencies, ports, processes, the
systems under test (subrelay, a private Postfix instance, smtp-sink) and
their CPU and memory accounting. Everything runs on loopback."""

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ACCOUNT = "scanner@bench.test"
ACCOUNT_LOCAL, ACCOUNT_REALM = ACCOUNT.split("@")
RECIPIENT = "someone@example.com"
UPSTREAM_MAILBOX = "relay@bench.test"

NEEDED = {  # program -> Debian package
    "/usr/sbin/smtp-sink": "postfix",
    "/usr/sbin/postfix": "postfix",
    "/usr/sbin/saslpasswd2": "sasl2-bin",
    "/usr/bin/openssl": "openssl",
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_packages():
    """Installs what the benchmark needs (idempotent: nothing happens when
    everything is there). Postfix's own service is never started."""
    missing = sorted({pkg for prog, pkg in NEEDED.items() if not os.path.exists(prog)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise BenchError("missing packages %s: run as root or install them first" % " ".join(missing))
    log("installing %s ..." % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                   env=env, check=True, stdout=subprocess.DEVNULL)
    for prog in NEEDED:
        if not os.path.exists(prog):
            raise BenchError("%s still missing after installing packages" % prog)


def raise_fd_limit(want):
    """Raises this process's open-file limit (children inherit it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want  # only root may raise it
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))
    except (ValueError, OSError) as e:
        raise BenchError("cannot raise the open-file limit to %d (hard limit %s): %s" % (want, hard, e))
    return want


def check_port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are not "busy"
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        raise BenchError("port 127.0.0.1:%d is busy; stop whatever listens there or pass --base-port" % port)
    finally:
        s.close()


def wait_for_port(port, proc=None, timeout=15.0, what="server", logfile=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError("%s exited with status %s%s" % (what, proc.returncode, tail_hint(logfile)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.settimeout(5.0)
                banner = s.recv(512)
                if banner.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError("%s did not answer on 127.0.0.1:%d within %.0f s%s" % (what, port, timeout, tail_hint(logfile)))


def tail_hint(logfile, lines=15):
    if not logfile or not os.path.exists(logfile):
        return ""
    with open(logfile, "r", errors="replace") as f:
        text = f.read().splitlines()[-lines:]
    return "\n--- %s (last lines) ---\n%s" % (logfile, "\n".join(text)) if text else ""


def make_cert(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return cert, key


def random_password():
    return base64.b64encode(os.urandom(12)).decode().replace("/", "x").replace("+", "y").rstrip("=")


# ---------------------------------------------------------------- /proc

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # the command name may contain spaces: split after the closing ')'
    rest = data[data.rindex(")") + 2:].split()
    return rest  # rest[0] is field 3 (state)


def ppid_of(pid):
    return int(_stat_fields(pid)[1])


def process_tree(root):
    """root and all its descendants that are alive now."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            children.setdefault(ppid_of(int(name)), []).append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(root):
    """utime+stime of root and its live descendants, plus the CPU of
    descendants already reaped by root (cutime+cstime of root; Postfix's
    master reaps its daemons)."""
    total = 0
    for pid in process_tree(root):
        try:
            f = _stat_fields(pid)
        except OSError:
            continue
        total += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
        if pid == root:
            total += int(f[13]) + int(f[14])  # cutime, cstime (fields 16, 17)
    return total / CLK_TCK


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """Samples the summed PSS of a process tree (shared pages counted once)
    while a measurement runs; peak() is the largest sum seen."""

    def __init__(self, root, interval=0.25):
        self.root, self.interval = root, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        total = sum(pss_kib(p) for p in process_tree(self.root))
        self.peak_kib = max(self.peak_kib, total)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


# ---------------------------------------------------------------- processes

class Managed:
    """A child process stopped (TERM, then KILL) on cleanup."""

    def __init__(self):
        self.proc = None

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Sink(Managed):
    """smtp-sink, counting messages (each received '.') in its -c output."""

    def __init__(self, port, workdir):
        super().__init__()
        self.port = port
        self.out = os.path.join(workdir, "sink-%d.out" % port)

    def start(self):
        check_port_free(self.port)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self._f = open(self.out, "wb")
        self.proc = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-4", "-m", "1000"] + user +
                                     ["127.0.0.1:%d" % self.port, "1000"],
                                     stdout=self._f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, what="smtp-sink", logfile=self.out)
        return self

    _re = re.compile(rb"mesg=(\d+)")

    def count(self):
        with open(self.out, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256))
            found = self._re.findall(f.read())
        return int(found[-1]) if found else 0

    def stop(self):
        super().stop()
        if getattr(self, "_f", None):
            self._f.close()
            self._f = None


class Subrelay(Managed):
    """subrelay as a relay to the sink: STARTTLS submission with AUTH PLAIN
    accounts (or, with auth=False, a [[binding]] for 127.0.0.1), a spool on
    disk, upstream plain SMTP without authentication."""

    def __init__(self, binary, workdir, port, sink_port, cert, key, pw_hash,
                 max_connections=1000, auth=True, upstream_connections=20, retry_initial_seconds=5):
        super().__init__()
        self.binary, self.port = binary, port
        self.dir = tempfile.mkdtemp(prefix="subrelay.", dir=workdir)
        self.logfile = os.path.join(self.dir, "subrelay.log")
        binding = "" if auth else (
            '\n[[binding]]\nnetwork = "127.0.0.1"\nidentity = "%s"\n' % ACCOUNT)
        with open(os.path.join(self.dir, "subrelay.toml"), "w") as f:
            f.write("""[server]
hostname = "relay.bench.test"
submission = ["127.0.0.1:%d"]
max_connections = %d
# The load generator is one address opening every connection.
max_connections_per_client = 0
max_connection_rate_per_client = 0

[tls]
cert_file = "%s"
key_file = "%s"

[policy]
file = "policy.toml"

[spool]
dir = "spool"

[upstream]
kind = "smtp"
host = "127.0.0.1"
port = %d
tls = "none"
auth = "none"
mailbox = "%s"
max_connections_per_mailbox = %d
max_messages_per_minute = 0
retry_initial_seconds = %d

[log]
level = "info"
""" % (port, max_connections, cert, key, sink_port, UPSTREAM_MAILBOX, upstream_connections,
       retry_initial_seconds))
        with open(os.path.join(self.dir, "policy.toml"), "w") as f:
            f.write("""[organization]
smtp_client_authentication_disabled = true
max_messages_per_minute = 0
max_recipients_per_day = 0

[[mailbox]]
identity = "%s"
password_hash = '%s'
smtp_client_authentication_disabled = false
allowed_senders = ["%s"]
%s""" % (ACCOUNT, pw_hash, ACCOUNT, binding))

    @property
    def config(self):
        return os.path.join(self.dir, "subrelay.toml")

    def start(self):
        check_port_free(self.port)
        r = subprocess.run([self.binary, "check-config", "--config", self.config],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError("subrelay check-config failed:\n%s%s" % (r.stdout, r.stderr))
        self._f = open(self.logfile, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                     stdout=self._f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, what="subrelay", logfile=self.logfile)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError("subrelay exited with status %s%s" % (self.proc.returncode, tail_hint(self.logfile)))

    def restart(self):
        """A new process on the same configuration and spool."""
        super().stop()
        self._f.close()
        return self.start()

    def stop(self):
        super().stop()
        if getattr(self, "_f", None):
            self._f.close()
            self._f = None
        shutil.rmtree(self.dir, ignore_errors=True)


MASTER_CF = """\
# A private Postfix instance for the benchmark: no chroot, loopback only.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
proxywrite unix - - n -    1 proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A private Postfix instance (own config, queue and data directories)
    relaying everything to [127.0.0.1]:sink_port. With auth=True: STARTTLS
    (smtpd_tls_auth_only) and Cyrus SASL PLAIN/LOGIN against a sasldb with
    the same account; otherwise mynetworks = 127.0.0.0/8 and no AUTH."""

    def __init__(self, workdir, port, sink_port, cert, key, password, auth=True,
                 upstream_connections=20):
        self.port, self.auth = port, auth
        self.dir = tempfile.mkdtemp(prefix="postfix.", dir=workdir)
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.maillog = os.path.join(self.dir, "maillog")
        for d in (self.conf, self.queue, self.data):
            os.mkdir(d, 0o755)
        shutil.chown(self.data, "postfix", "postfix")
        sasl_dir = os.path.join(self.conf, "sasl")
        os.mkdir(sasl_dir, 0o755)
        sasldb = os.path.join(self.conf, "sasldb2")
        params = {
            "compatibility_level": "3.6",
            "config_directory": self.conf,
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.bench.test",
            "mydomain": "bench.test",
            "myorigin": "bench.test",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relay_domains": "",
            "relayhost": "[127.0.0.1]:%d" % sink_port,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "smtp_bind_address": "127.0.0.1",
            "mynetworks": "127.0.0.0/8",
            "smtpd_peername_lookup": "no",
            "smtp_tls_security_level": "none",
            "message_size_limit": "36700160",
            "default_destination_concurrency_limit": str(upstream_connections),
            "smtp_destination_concurrency_limit": str(upstream_connections),
            "biff": "no",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "smtputf8_enable": "no",
        }
        if auth:
            params.update({
                "smtpd_tls_security_level": "may",
                "smtpd_tls_cert_file": cert,
                "smtpd_tls_key_file": key,
                # Resumption as subrelay's defaults: a server-side session cache
                # (Debian's stock main.cf names the same database) and, with the
                # cache timeout above zero, session tickets whose keys tlsmgr
                # makes and rotates.
                "smtpd_tls_session_cache_database": "btree:%s/smtpd_scache" % self.data,
                "smtpd_tls_session_cache_timeout": "3600s",
                "smtpd_tls_auth_only": "yes",
                "smtpd_sasl_auth_enable": "yes",
                "smtpd_sasl_type": "cyrus",
                "smtpd_sasl_path": "smtpd",
                "cyrus_sasl_config_path": sasl_dir,
                "smtpd_sasl_security_options": "noanonymous",
                "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
                "smtpd_recipient_restrictions": "",
            })
        else:
            params.update({
                "smtpd_tls_security_level": "none",
                "smtpd_relay_restrictions": "permit_mynetworks, reject",
            })
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in params.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=port))
        with open(os.path.join(sasl_dir, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
                    "sasldb_path: %s\n" % sasldb)
        if auth:
            subprocess.run(["/usr/sbin/saslpasswd2", "-p", "-c", "-f", sasldb, "-u", ACCOUNT_REALM,
                            ACCOUNT_LOCAL], input=password.encode(), check=True)
            shutil.chown(sasldb, "postfix", "postfix")
            os.chmod(sasldb, 0o600)
        self.master_pid = None

    def _postfix(self, *args):
        return subprocess.run(["/usr/sbin/postfix", "-c", self.conf] + list(args),
                              capture_output=True, text=True, check=False)

    def start(self):
        check_port_free(self.port)
        # Postfix reports problems in its log file (stderr only on a terminal)
        r = self._postfix("start")
        if r.returncode != 0:
            raise BenchError("postfix start failed:\n%s%s%s" % (r.stdout, r.stderr, tail_hint(self.maillog)))
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.master_pid is None:
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        if self.master_pid is None:
            raise BenchError("postfix master did not write its pid file%s" % tail_hint(self.maillog))
        wait_for_port(self.port, what="postfix smtpd", logfile=self.maillog)
        return self

    @property
    def pid(self):
        return self.master_pid

    def check_alive(self):
        if self.master_pid is None or not os.path.exists("/proc/%d" % self.master_pid):
            raise BenchError("postfix master is gone%s" % tail_hint(self.maillog))

    def queue_size(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n

    def stop(self):
        if self.master_pid is not None:
            self._postfix("stop")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.path.exists("/proc/%d" % self.master_pid):
                time.sleep(0.05)
            if os.path.exists("/proc/%d" % self.master_pid):
                for p in process_tree(self.master_pid):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            self.master_pid = None
        shutil.rmtree(self.dir, ignore_errors=True)
