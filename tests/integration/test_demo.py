"""`make demo`'s script (scripts/demo) with the built relay: it starts on its
embedded configuration, prints the demo account's password and the web
console's address with a one-time console password; the console takes that
password and shows the account, and a message sent with the account's
password lands in the outbox. Run in the test's own directory, on free ports."""
import os
import re
import smtplib
import ssl
import urllib.parse

import harness

SCRIPT = os.path.join(harness.HERE, "..", "..", "scripts", "demo")


class DemoTest(harness.IntegrationCase):
    def test_the_demo_prints_the_console_and_relays(self):
        demo_dir = os.path.join(self.workdir, "demo")
        log = os.path.join(self.workdir, "demo.log")
        env = dict(os.environ, SUBRELAY_DEMO_DIR=demo_dir, SUBRELAY_DEMO_SUBMISSION_PORT="0",
                   SUBRELAY_DEMO_SUBMISSIONS_PORT="0", SUBRELAY_DEMO_CONSOLE_PORT="0")
        p = harness.Process(["sh", SCRIPT, harness.binary()], log, env=env)
        self._processes.append(p)
        self.log_files.append(log)

        def text():
            with open(log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        harness.wait_for(lambda: " ready as " in text() or not p.running(), what="the demo relay")
        out = text()
        self.assertTrue(p.running(), out)
        account = re.search(r"account:\s+(\S+)", out).group(1)
        password = re.search(r"\n\s+password:\s+(\S+)", out).group(1)
        console = re.search(r"console:\s+http://127\.0\.0\.1:\d+/\s+user: (\S+)\s+password: (\S+)", out)
        self.assertIsNotNone(console, out)
        console_user, console_password = console.groups()
        self.assertRegex(console_password, r"^[A-Za-z0-9]{24}$")
        admin_port = int(re.search(r"admin listening on 127\.0\.0\.1:(\d+) \(.*the web console", out).group(1))
        smtp_port = int(re.search(r"listening on 127\.0\.0\.1:(\d+) \(STARTTLS\)", out).group(1))
        # Only hashes are kept.
        for name in ("policy.toml", "admin-users.toml"):
            with open(os.path.join(demo_dir, name), encoding="utf-8") as f:
                kept = f.read()
            self.assertNotIn(password, kept)
            self.assertNotIn(console_password, kept)

        # The console takes the printed password and shows the demo account.
        def request(method, path, body=None, headers=None):
            return harness.http_request(admin_port, method, path, body, headers)
        _, headers, _ = request("GET", "/signin")
        token = re.search(r"subrelay_signin=([0-9a-f]+)", dict(headers)["Set-Cookie"]).group(1)
        status, headers, _ = request("POST", "/signin", urllib.parse.urlencode(
            {"csrf": token, "user": console_user, "password": console_password}),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "subrelay_signin=" + token})
        self.assertEqual(status, 303)
        session = [v.split(";")[0] for k, v in headers if k == "Set-Cookie" and v.startswith("subrelay_session=")]
        status, _, page = request("GET", "/users", headers={"Cookie": session[0]})
        self.assertEqual(status, 200)
        self.assertIn(account, page)
        self.assertIn('<td class="state on">Enabled</td><td>Mailbox</td>', page)

        # A message with the printed account password lands in the outbox.
        context = ssl.create_default_context(cafile=os.path.join(demo_dir, "cert.pem"))
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            s.starttls(context=context)
            s.login(account, password)
            s.sendmail(account, ["someone@example.com"], "From: %s\r\nSubject: demo\r\n\r\nhello\r\n" % account)
        outbox = os.path.join(demo_dir, "outbox")
        harness.wait_for(lambda: any(n.endswith(".eml") for n in os.listdir(outbox)), what="a message in the outbox")
        self.assertEqual(p.stop(), 0, text())
