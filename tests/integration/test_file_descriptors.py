"""server.max_connections against the file descriptor limit: 1,100 sockets
drove the relay to EMFILE, and a device's spool write failed. At start the
relay raises its soft limit to what max_connections needs, or refuses to
start, naming the numbers, when the hard limit is too low."""
import os
import resource
import subprocess

import harness


class FileDescriptorLimitTest(harness.IntegrationCase):
    def run_relay(self, soft, hard):
        self.start_token()
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()],
                                extra_sections={"server": {"max_connections": 3000}})
        relay.write_files()

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        log = open(relay.log_path, "ab")
        proc = subprocess.Popen([harness.binary(), "serve", "--config", relay.config_path], cwd=relay.workdir,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)
        self.addCleanup(log.close)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return relay, proc

    def test_a_hard_limit_too_low_stops_the_start_with_the_numbers(self):
        relay, proc = self.run_relay(1024, 1024)
        self.assertEqual(proc.wait(timeout=30), 1)
        self.assertIn("server.max_connections: 3000 connections need 3256 file descriptors, but the process "
                      "may open 1024 at most", relay.log().decode())

    def test_the_soft_limit_is_raised_to_what_is_needed(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < 4096:
            self.fail("this test needs a hard file descriptor limit of at least 4096 (it is %d)" % hard)
        relay, proc = self.run_relay(1024, 4096)
        harness.wait_for(lambda: proc.poll() is not None or b" ready as " in relay.log(), what="the relay")
        self.assertIsNone(proc.poll(), relay.log().decode()[-2000:])
        with open("/proc/%d/limits" % proc.pid) as f:
            line = next(l for l in f if l.startswith("Max open files"))
        self.assertEqual(line.split()[3:5], ["3256", "4096"], line)
        self.assertIn("file descriptor limit raised from 1024 to 3256", relay.log().decode())
        proc.terminate()
        self.assertEqual(proc.wait(timeout=30), 0)
