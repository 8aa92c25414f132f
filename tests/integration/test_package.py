"""The Debian package, as an admin meets it: scripts/build-deb builds it
(what `make deb` runs), lintian finds no error in it, `dpkg -i` installs it
on this machine (the subrelay system user, /etc/subrelay root:subrelay
0640, /var/spool/subrelay subrelay's with 0700, the unit, the manual pages),
`subrelay check-config` passes on the shipped configuration as the subrelay
user, the installed relay runs as that user and takes a message into the
shipped `directory` upstream, `dpkg -r` keeps the configuration and the
spool, and only `dpkg --purge` removes them.

It changes the machine (a package, a user): the tests run as root on a
test machine. Its own ctest label, package (`ctest -L package`); it builds
the relay once more, so it takes minutes."""
import glob
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

import harness

SOURCE = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PACKAGE = "subrelay"
ETC = "/etc/subrelay"
SPOOL = "/var/spool/subrelay"
ACCOUNT = "scanner@contoso.com"
PASSWORD = "Package-Passw0rd!815"


def run(argv, check=True, **kwargs):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=kwargs.pop("timeout", 300), **kwargs)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


def installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], check=False)
    return r.returncode == 0 and "installed" in r.stdout.split()


def owner_and_mode(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)


def statoverride(path):
    return run(["dpkg-statoverride", "--list", path], check=False).stdout.strip()


class PackageTest(harness.IntegrationCase):
    deb = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("the package tests install a package: run them as root on a test machine")
        build_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(harness.binary()))), "package")
        jobs = os.environ.get("SUBRELAY_PACKAGE_JOBS", str(os.cpu_count() or 1))
        r = run([os.path.join(SOURCE, "scripts", "build-deb"), build_dir, jobs], timeout=3000)
        cls.deb = r.stdout.strip().splitlines()[-1]
        assert os.path.isfile(cls.deb), r.stdout

    def setUp(self):
        super().setUp()
        if installed():
            run(["dpkg", "--purge", PACKAGE])

    def tearDown(self):
        try:
            if installed():
                run(["dpkg", "--purge", PACKAGE])
        finally:
            super().tearDown()

    def test_lintian_finds_no_error(self):
        lintian = harness.require_tool("lintian")
        r = run([lintian, "--fail-on", "error", "--tag-display-limit", "0", self.deb], check=False)
        # Its tags go to standard error when standard output is not a terminal.
        tags = [line for line in (r.stdout + r.stderr).splitlines() if re.match(r"[EWIPX]: ", line)]
        print("  lintian:\n" + "".join("    " + line + "\n" for line in tags))
        self.assertEqual([line for line in tags if line.startswith("E:")], [])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_the_package_lists_its_files_and_conffiles(self):
        files = run(["dpkg-deb", "--contents", self.deb]).stdout
        for path in ("./usr/sbin/subrelay", "./etc/subrelay/subrelay.toml", "./etc/subrelay/policy.toml",
                     "./lib/systemd/system/subrelay.service", "./usr/share/man/man8/subrelay.8.gz",
                     "./usr/share/man/man5/subrelay.toml.5.gz", "./usr/share/doc/subrelay/copyright",
                     "./usr/share/doc/subrelay/changelog.Debian.gz"):
            self.assertIn(path, files)
        self.assertNotIn("./var/spool", files, "the spool is made by the postinst, not shipped")
        workdir = os.path.join(self.workdir, "control")
        run(["dpkg-deb", "--control", self.deb, workdir])
        with open(os.path.join(workdir, "conffiles")) as f:
            self.assertEqual(f.read().split(), [ETC + "/subrelay.toml", ETC + "/policy.toml"])
        depends = run(["dpkg-deb", "--field", self.deb, "Depends"]).stdout
        for needed in ("libsasl2-modules", "ssl-cert", "adduser", "libsasl2-2", "libssl3"):
            self.assertIn(needed, depends)

    def test_install_run_remove_and_purge(self):
        run(["dpkg", "-i", self.deb])

        # What the postinst made.
        user = pwd.getpwnam("subrelay")
        self.assertLess(user.pw_uid, 1000, "a system user")
        self.assertIn("subrelay", grp.getgrnam("ssl-cert").gr_mem, "reads Debian's snakeoil key")
        self.assertEqual(owner_and_mode(SPOOL), ("subrelay", "subrelay", 0o700))
        for name in ("subrelay.toml", "policy.toml"):
            self.assertEqual(owner_and_mode(os.path.join(ETC, name)), ("root", "subrelay", 0o640))
        self.assertTrue(os.access("/usr/sbin/subrelay", os.X_OK))
        with open("/lib/systemd/system/subrelay.service") as f:
            self.assertIn("ExecStart=/usr/sbin/subrelay serve --config /etc/subrelay/subrelay.toml", f.read())
        for page, title in (("man8/subrelay.8.gz", "SUBRELAY"), ("man5/subrelay.toml.5.gz", "SUBRELAY.TOML")):
            text = run(["zcat", "/usr/share/man/" + page]).stdout
            self.assertRegex(text, r'(?mi)^\.TH "?%s"? "?[58]"?' % re.escape(title))

        # The shipped configuration, as the relay's user reads it.
        r = run(["setpriv", "--reuid=subrelay", "--regid=subrelay", "--init-groups",
                 "/usr/sbin/subrelay", "check-config"], check=False)
        self.assertEqual((r.returncode, r.stdout), (0, "ok\n"), r.stderr)

        # An account, added by root with the CLI: the policy stays readable
        # by the relay's user.
        r = run(["/usr/sbin/subrelay", "new-relayaccount", "-Identity", ACCOUNT, "--password-stdin",
                 "-SmtpClientAuthenticationDisabled", "false"], input=PASSWORD + "\n")
        self.assertEqual(owner_and_mode(ETC + "/policy.toml"), ("root", "subrelay", 0o640))

        # The installed relay, as the unit runs it (user subrelay), on the
        # shipped configuration with its listeners moved to free loopback
        # ports. A message lands in the shipped directory upstream.
        with open(ETC + "/subrelay.toml") as f:
            shipped = f.read()
        port, tls_port = harness.free_port(), harness.free_port()
        config = re.sub(r'(?m)^submission = .*$', 'submission = ["127.0.0.1:%d"]' % port, shipped)
        config = re.sub(r'(?m)^submissions = .*$', 'submissions = ["127.0.0.1:%d"]' % tls_port, config)
        config = re.sub(r'(?m)^listen = .*$', 'listen = ""', config)
        self.assertNotEqual(config, shipped)
        confdir = tempfile.mkdtemp(prefix="subrelay-package-")
        self.addCleanup(shutil.rmtree, confdir, True)
        os.chmod(confdir, 0o755)
        config_path = os.path.join(confdir, "subrelay.toml")
        with open(config_path, "w") as f:
            f.write(config)
        os.chmod(config_path, 0o644)
        log = os.path.join(self.workdir, "installed-relay.log")
        relay = harness.Process(["setpriv", "--reuid=subrelay", "--regid=subrelay", "--init-groups",
                                 "/usr/sbin/subrelay", "serve", "--config", config_path], log)
        self._processes.append(relay)
        harness.wait_for(lambda: not relay.running() or b" ready as " in open(log, "rb").read(),
                         what="the installed relay")
        self.assertTrue(relay.running(), harness.tail(log))
        swaks = harness.require_tool("swaks")
        r = run([swaks, "--server", "127.0.0.1:%d" % port, "--tls", "--auth", "LOGIN",
                 "--auth-user", ACCOUNT, "--auth-password", PASSWORD, "--from", ACCOUNT,
                 "--to", "someone@example.com", "--header", "Subject: from the package"], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<~ +250 2\.0\.0 Ok: queued as \w+")
        outbox = SPOOL + "/outbox"
        harness.wait_for(lambda: glob.glob(outbox + "/*.json"), what="the message in the outbox")
        eml = glob.glob(outbox + "/*.eml")
        self.assertEqual(len(eml), 1)
        self.assertEqual(owner_and_mode(eml[0])[0], "subrelay")
        with open(eml[0], "rb") as f:
            self.assertIn(b"Subject: from the package", f.read())
        self.assertEqual(relay.stop(), 0, harness.tail(log))

        # Installing the same package again keeps the edited conffile.
        run(["dpkg", "-i", self.deb])
        with open(ETC + "/policy.toml") as f:
            self.assertIn(ACCOUNT, f.read())
        self.assertEqual(owner_and_mode(ETC + "/policy.toml"), ("root", "subrelay", 0o640))

        # Remove: the program goes, the configuration and the spool (mail) stay.
        run(["dpkg", "-r", PACKAGE])
        self.assertFalse(os.path.exists("/usr/sbin/subrelay"))
        self.assertTrue(os.path.isfile(ETC + "/policy.toml"))
        self.assertEqual(len(glob.glob(outbox + "/*.eml")), 1, "remove keeps the spool")

        # Purge: nothing is left.
        run(["dpkg", "--purge", PACKAGE])
        self.assertFalse(os.path.exists(SPOOL))
        self.assertFalse(os.path.exists(ETC))
        for name in ("subrelay.toml", "policy.toml"):
            self.assertEqual(statoverride(os.path.join(ETC, name)), "")


if __name__ == "__main__":
    unittest.main()
