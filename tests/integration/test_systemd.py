"""The relay under systemd: conf/systemd/subrelay.service passes
`systemd-analyze verify`, carries the hardening the issue asks for with an
exposure below 2.0 in `systemd-analyze security`, and the daemon speaks
Type=notify: READY=1 once every listener accepts, STATUS= with the queue,
RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 at SIGTERM."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

import harness

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "systemd", "subrelay.service")

REQUIRED = [
    "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=subrelay",
    "AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
    "ReadWritePaths=/var/spool/subrelay", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
    "MemoryDenyWriteExecute=yes",
]


class UnitFileTest(harness.IntegrationCase):
    def local_unit(self):
        """The unit with ExecStart naming the binary under test (verify
        checks that the command exists)."""
        with open(UNIT) as f:
            text = f.read()
        path = os.path.join(self.workdir, "subrelay.service")
        with open(path, "w") as f:
            f.write(text.replace("/usr/sbin/subrelay", os.path.abspath(harness.binary())))
        return text, path

    def test_the_unit_verifies_and_is_hardened(self):
        text, path = self.local_unit()
        lines = {line.strip() for line in text.splitlines()}
        self.assertEqual([r for r in REQUIRED if r not in lines], [])
        tool = harness.require_tool("systemd-analyze")
        verify = subprocess.run([tool, "verify", "--man=no", path], capture_output=True, text=True, timeout=120)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        security = subprocess.run([tool, "security", "--offline=true", path], capture_output=True, text=True,
                                  timeout=120)
        m = re.search(r"Overall exposure level for subrelay\.service: (\d+\.\d+)", security.stdout)
        self.assertIsNotNone(m, security.stdout + security.stderr)
        print("  systemd-analyze security: exposure %s" % m.group(1))
        self.assertLess(float(m.group(1)), 2.0, security.stdout)


class NotifyTest(harness.IntegrationCase):
    def test_readiness_status_reload_and_stop_reach_the_service_manager(self):
        # A socket path is short (108 bytes): not under the test's directory.
        short = tempfile.mkdtemp(prefix="subrelay-notify-")
        self.addCleanup(shutil.rmtree, short, True)
        path = os.path.join(short, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(harness.DEFAULT_TIMEOUT)
        self.addCleanup(sock.close)
        relay = self.make_relay([harness.scanner_account()], kind="directory")
        os.environ["NOTIFY_SOCKET"] = path
        try:
            relay.start(wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        self._track(relay)

        def until(field):
            """Every datagram up to the one holding `field`."""
            seen = []
            while True:
                message = sock.recv(4096).decode()
                seen.append(message)
                if field in message.split("\n"):
                    return seen

        until("READY=1")
        # Ready means ready: both listeners accept at this moment.
        self.assertTrue(harness.port_accepts(relay.submission_port))
        self.assertTrue(harness.port_accepts(relay.submissions_port))
        self.assertIn("STATUS=0 message(s) queued", "\n".join(until("STATUS=0 message(s) queued")))

        os.kill(relay.process.pid, signal.SIGHUP)
        self.assertIn("RELOADING=1", "\n".join(until("READY=1")))
        os.kill(relay.process.pid, signal.SIGTERM)
        until("STOPPING=1")
        self.assertEqual(relay.process.wait(), 0)
