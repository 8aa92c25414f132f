"""The web console on the admin listener, driven in Debian's chromium
(headless, through chromedriver and python3-selenium): sign in, Active users,
an account's flyout, Manage email apps with its three values, Org settings,
Mail flow and the Audit log; then what the relay does with each change, seen
by a real SMTP client. Readers cannot save; a form without its CSRF token is
refused; the pages work with JavaScript off. A screenshot of each page is
written under the test's directory (and into SUBRELAY_SCREENSHOT_DIR when
set, which is how the README's pictures are made)."""
import json
import os
import re
import shutil
import urllib.parse

import harness
from harness import SCANNER_ID, SCANNER_PASSWORD

PRINTER_ID = "printer@contoso.com"
PRINTER_PASSWORD = "Printer-Passw0rd!0815"
ADMIN = "alice"
ADMIN_PASSWORD = "Console-Admin-Pass-1"
READER = "rita"
READER_PASSWORD = "Console-Reader-Pass-2"

MAILBOX_REFUSAL = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                   "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.")
TENANT_REFUSAL = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                  "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")


class ConsoleCase(harness.IntegrationCase):
    def start_console_relay(self, full_stack=False):
        accounts = [harness.scanner_account(), harness.Account(PRINTER_ID, PRINTER_PASSWORD)]
        extra = {"admin": {"users_file": "admin-users.toml"}}
        if full_stack:
            relay = self.full_stack(accounts, admin=True, extra_sections=extra)
        else:
            relay = self.make_relay(accounts, kind="directory", admin=True, extra_sections=extra)
        for name, password, role in ((ADMIN, ADMIN_PASSWORD, "admin"), (READER, READER_PASSWORD, "reader")):
            code, out, err = harness.run_cli(["new-adminuser", "-Identity", name, "-Role", role, "--password-stdin"],
                                             config=relay.config_path, stdin=(password + "\n").encode())
            self.assertEqual(code, 0, err)
        if not full_stack:
            self.start_relay(relay)
        self.base = "http://127.0.0.1:%d" % relay.admin_port
        return relay

    # -- the browser
    def browser(self, javascript=True):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = harness.require_tool("chromium")
        profile = os.path.join(self.workdir, "chromium-%d" % len(self.log_files))
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1440,900", "--no-first-run", "--user-data-dir=" + profile):
            options.add_argument(arg)
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        log = os.path.join(self.workdir, "chromedriver.log")
        self.log_files.append(log)
        service = Service(executable_path=harness.require_tool("chromedriver"), log_path=log)
        driver = webdriver.Chrome(service=service, options=options)
        self.addCleanup(driver.quit)
        return driver

    def screenshot(self, driver, name):
        out = os.path.join(self.workdir, "screenshots")
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, name + ".png")
        self.assertTrue(driver.save_screenshot(path), "no screenshot of " + name)
        self.assertGreater(os.path.getsize(path), 10000, name + ".png is too small to show the page")
        extra = os.environ.get("SUBRELAY_SCREENSHOT_DIR")
        if extra:
            os.makedirs(extra, exist_ok=True)
            shutil.copyfile(path, os.path.join(extra, name + ".png"))

    def find(self, driver, css):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(driver, harness.DEFAULT_TIMEOUT).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def click_through(self, driver, element):
        """Clicks a link or a form's button and waits for the next page to replace this one."""
        from selenium.common.exceptions import WebDriverException

        old = driver.find_element("tag name", "html")
        element.click()

        def replaced():
            # A stale element, or (chromedriver) a node no longer in the document.
            try:
                old.is_enabled()
                return False
            except WebDriverException:
                return True
        harness.wait_for(replaced, what="the next page")

    def sign_in(self, driver, user, password):
        driver.get(self.base + "/")
        self.find(driver, "input[name=user]").send_keys(user)
        self.find(driver, "input[name=password]").send_keys(password)
        self.click_through(driver, self.find(driver, "#signin"))
        self.find(driver, "table#users")

    def open_email_apps(self, driver, identity):
        self.click_through(driver, self.find(driver, "a.name[href='/users/%s']" % urllib.parse.quote(identity, safe="")))
        self.click_through(driver, self.find(driver, "aside.flyout a[role=tab][href$='tab=mail']"))
        self.click_through(driver, self.find(driver, "#manage-email-apps"))
        return self.find(driver, "form#email-apps")

    def save_email_apps(self, driver):
        self.click_through(driver, driver.find_element("css selector", "form#email-apps button[type=submit]"))
        self.find(driver, ".notice")

    # -- what the relay and its files say
    def audit(self):
        path = os.path.join(self.relay.workdir, "spool", "audit.log")
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def policy_changes(self):
        """The audit log's records of policy objects (not of console users)."""
        return [e for e in self.audit() if e["kind"] != "AdminUser"]

    def policy_text(self):
        with open(self.relay.policy_path, encoding="utf-8") as f:
            return f.read()

    def post_form(self, path, fields, cookie):
        status, _, body = harness.http_request(self.relay.admin_port, "POST", path, urllib.parse.urlencode(fields),
                                               {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        return status, body

    def session_cookie(self, driver):
        c = driver.get_cookie("subrelay_session")
        self.assertIsNotNone(c, "no session cookie after sign-in")
        return "subrelay_session=" + c["value"], c


class ManageEmailAppsTest(ConsoleCase):
    def test_unchecking_authenticated_smtp_refuses_the_mailbox(self):
        relay = self.start_console_relay()
        self.assertTrue(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD).startswith("235 "))
        driver = self.browser()
        driver.get(self.base + "/users")
        self.find(driver, "form button#signin")
        self.screenshot(driver, "sign-in")
        self.sign_in(driver, ADMIN, ADMIN_PASSWORD)
        rows = driver.find_element("css selector", "table#users").text
        self.assertIn(SCANNER_ID, rows)
        self.assertIn(PRINTER_ID, rows)
        self.screenshot(driver, "active-users")

        self.click_through(driver, self.find(driver, "a.name[href='/users/%s']" % urllib.parse.quote(SCANNER_ID, safe="")))
        self.find(driver, "aside.flyout dl.props")
        self.screenshot(driver, "account-flyout")
        self.click_through(driver, self.find(driver, "aside.flyout a[role=tab][href$='tab=mail']"))
        self.click_through(driver, self.find(driver, "#manage-email-apps"))
        box = self.find(driver, "#smtp-auth")
        self.assertTrue(box.is_selected())
        self.assertIn("Enabled for this mailbox, which overrides the organization's Disabled.",
                      driver.find_element("css selector", "#explanation").text)
        self.screenshot(driver, "manage-email-apps")
        box.click()
        self.assertFalse(box.is_selected())
        self.save_email_apps(driver)

        self.assertEqual(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD), MAILBOX_REFUSAL)
        self.assertIn("smtp_client_authentication_disabled = true", self.policy_text())
        last = self.audit()[-1]
        self.assertEqual(last["who"], ADMIN + " (console)")
        self.assertEqual(last["what"],
                         "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $true" % SCANNER_ID)
        self.assertEqual(last["before"]["SmtpClientAuthenticationDisabled"], False)
        self.assertEqual(last["after"]["SmtpClientAuthenticationDisabled"], True)
        # The same change as the CLI reads it back.
        code, out, err = harness.run_cli(["get-casmailbox", "-Identity", SCANNER_ID], config=relay.config_path)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"SmtpClientAuthenticationDisabled\s*:\s*True")

    def test_use_the_organization_setting_follows_the_organization(self):
        relay = self.start_console_relay()
        driver = self.browser()
        self.sign_in(driver, ADMIN, ADMIN_PASSWORD)
        self.open_email_apps(driver, SCANNER_ID)
        follow = self.find(driver, "#follow-org")
        box = driver.find_element("css selector", "#smtp-auth")
        follow.click()
        # The script greys the box out and shows the organization's value (disabled).
        harness.wait_for(lambda: not box.is_enabled(), what="the Authenticated SMTP box greyed out")
        self.assertFalse(box.is_selected())
        self.save_email_apps(driver)
        self.assertIn("Follows the organization's setting: Disabled.",
                      driver.find_element("css selector", "#explanation").text)
        self.assertEqual(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD), TENANT_REFUSAL)
        self.assertEqual(self.audit()[-1]["what"],
                         "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $null" % SCANNER_ID)

        # The organization turns SMTP AUTH on: the account follows, the printer too.
        self.click_through(driver, self.find(driver, "nav a[href='/org']"))
        org_box = self.find(driver, "#org-smtp-auth")
        self.assertFalse(org_box.is_selected())
        self.screenshot(driver, "org-settings")
        org_box.click()
        self.click_through(driver, driver.find_element("css selector", "form#org-smtp button[type=submit]"))
        self.find(driver, ".notice")
        self.assertTrue(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD).startswith("235 "))
        self.assertTrue(harness.auth_reply(relay, PRINTER_ID, PRINTER_PASSWORD).startswith("235 "))
        self.assertEqual(self.audit()[-1]["what"], "Set-TransportConfig -SmtpClientAuthenticationDisabled $false")

        # Checked again: $false, which outlasts the organization turning it off.
        self.open_email_apps_from_nav(driver, SCANNER_ID)
        follow = self.find(driver, "#follow-org")
        follow.click()
        box = driver.find_element("css selector", "#smtp-auth")
        harness.wait_for(lambda: box.is_enabled(), what="the Authenticated SMTP box enabled")
        if not box.is_selected():
            box.click()
        self.save_email_apps(driver)
        code, _, err = harness.run_cli(["set-transportconfig", "-SmtpClientAuthenticationDisabled", "true"],
                                       config=relay.config_path)
        self.assertEqual(code, 0, err)
        relay.process.signal(__import__("signal").SIGHUP)
        harness.wait_for(lambda: harness.auth_reply(relay, PRINTER_ID, PRINTER_PASSWORD) == TENANT_REFUSAL,
                         what="the printer refused after the organization's change")
        self.assertTrue(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD).startswith("235 "))
        whats = [e["what"] for e in self.audit()]
        self.assertIn("Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false" % SCANNER_ID, whats)

    def open_email_apps_from_nav(self, driver, identity):
        self.click_through(driver, self.find(driver, "nav a[href='/users']"))
        return self.open_email_apps(driver, identity)

    def test_the_flyout_works_with_javascript_off(self):
        relay = self.start_console_relay()
        driver = self.browser(javascript=False)
        self.sign_in(driver, ADMIN, ADMIN_PASSWORD)
        self.open_email_apps(driver, PRINTER_ID)
        # Following the organization: without the script the box stays as served (greyed out).
        follow = self.find(driver, "#follow-org")
        self.assertTrue(follow.is_selected())
        follow.click()  # now the mailbox's own setting...
        self.save_email_apps(driver)
        # ...which, with the box greyed out when served, is unchecked: $true.
        self.assertEqual(self.audit()[-1]["what"],
                         "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $true" % PRINTER_ID)
        box = self.find(driver, "#smtp-auth")
        self.assertTrue(box.is_enabled())
        box.click()
        self.save_email_apps(driver)
        self.assertEqual(self.audit()[-1]["what"],
                         "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false" % PRINTER_ID)
        self.assertTrue(harness.auth_reply(relay, PRINTER_ID, PRINTER_PASSWORD).startswith("235 "))


class GuardTest(ConsoleCase):
    def test_a_reader_cannot_save(self):
        relay = self.start_console_relay()
        driver = self.browser()
        self.sign_in(driver, READER, READER_PASSWORD)
        self.open_email_apps(driver, SCANNER_ID)
        save = driver.find_element("css selector", "form#email-apps button[type=submit]")
        self.assertFalse(save.is_enabled(), "a reader's Save changes must be disabled")
        # The form sent anyway, with the reader's session and token: refused.
        cookie, _ = self.session_cookie(driver)
        csrf = driver.find_element("css selector", "form#email-apps input[name=csrf]").get_attribute("value")
        before = self.policy_text()
        status, body = self.post_form("/users/%s/email-apps" % urllib.parse.quote(SCANNER_ID, safe=""),
                                      {"csrf": csrf}, cookie)
        self.assertEqual(status, 403)
        self.assertIn("Readers can see everything and change nothing.", body)
        self.assertEqual(self.policy_text(), before)
        self.assertTrue(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD).startswith("235 "))
        self.assertEqual(self.policy_changes(), [])

    def test_a_form_without_the_csrf_token_is_refused(self):
        relay = self.start_console_relay()
        driver = self.browser()
        self.sign_in(driver, ADMIN, ADMIN_PASSWORD)
        self.open_email_apps(driver, SCANNER_ID)
        driver.execute_script("document.querySelector('form#email-apps input[name=csrf]').remove();")
        self.find(driver, "#smtp-auth").click()
        self.click_through(driver, driver.find_element("css selector", "form#email-apps button[type=submit]"))
        self.assertIn("The form was refused", driver.find_element("css selector", "main h1").text)
        self.assertTrue(harness.auth_reply(relay, SCANNER_ID, SCANNER_PASSWORD).startswith("235 "))
        self.assertEqual(self.policy_changes(), [])
        # A request from elsewhere with the session cookie but no token: refused too.
        cookie, attrs = self.session_cookie(driver)
        self.assertTrue(attrs.get("httpOnly"))
        self.assertEqual(attrs.get("sameSite"), "Strict")
        status, _ = self.post_form("/org/smtp-auth", {"smtp_auth": "on"}, cookie)
        self.assertEqual(status, 403)
        self.assertIn("smtp_client_authentication_disabled = true", self.policy_text())

    def test_wrong_passwords_and_headers(self):
        relay = self.start_console_relay()
        driver = self.browser()
        driver.get(self.base + "/signin")
        self.find(driver, "input[name=user]").send_keys(ADMIN)
        self.find(driver, "input[name=password]").send_keys("not-the-password")
        self.click_through(driver, self.find(driver, "#signin"))
        self.assertIn("Your account or password is incorrect.", driver.find_element("css selector", ".error").text)
        self.assertIsNone(driver.get_cookie("subrelay_session"))
        # A name that would start a forged log line is logged on one line.
        status, headers, _ = harness.http_request(relay.admin_port, "GET", "/signin")
        token = re.search(r"subrelay_signin=([0-9a-f]+)", dict(headers)["Set-Cookie"]).group(1)
        status, _, _ = harness.http_request(
            relay.admin_port, "POST", "/signin",
            urllib.parse.urlencode({"csrf": token, "user": "evil\ninfo forged", "password": "x"}),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "subrelay_signin=" + token})
        self.assertEqual(status, 403)
        log = relay.log().decode("utf-8", "replace")
        self.assertIn("console: sign-in as 'alice' from 127.0.0.1 failed", log)
        self.assertIn("console: sign-in as 'evil?info forged' from 127.0.0.1 failed", log)
        self.assertNotIn("\ninfo forged", log)
        self.assertNotIn("not-the-password", log)
        status, headers, _ = relay.admin_request("/signin")
        self.assertEqual(status, 200)
        self.assertIn("frame-ancestors 'none'", headers["content-security-policy"])
        self.assertEqual(headers["x-frame-options"], "DENY")
        self.assertEqual(headers["cache-control"], "no-store")
        # /metrics is still served beside the console.
        status, _, body = relay.admin_request("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("subrelay_", body)


class PagesTest(ConsoleCase):
    def test_add_user_reset_password_mail_flow_and_audit_log(self):
        relay = self.start_console_relay(full_stack=True)
        driver = self.browser()
        self.sign_in(driver, ADMIN, ADMIN_PASSWORD)
        self.click_through(driver, self.find(driver, "a.command[href='/users/new']"))
        self.find(driver, "input[name=identity]").send_keys("mfp@contoso.com")
        self.click_through(driver, driver.find_element("css selector", "form#add-user button[type=submit]"))
        password = self.find(driver, "#new-password").text.strip()
        self.assertRegex(password, r"^[A-Za-z0-9]{24}$")
        self.assertTrue(harness.auth_reply(relay, "mfp@contoso.com", password).startswith("235 "))
        self.assertNotIn(password, self.policy_text())

        # Reset the printer's password, typed twice.
        driver.get(self.base + "/users/%s/password" % urllib.parse.quote(PRINTER_ID, safe=""))
        self.find(driver, "input[name=mode][value=typed]").click()
        driver.find_element("css selector", "input[name=password]").send_keys("Typed-Password-9")
        driver.find_element("css selector", "input[name=password2]").send_keys("Typed-Password-9")
        self.click_through(driver, driver.find_element("css selector", "form#password button[type=submit]"))
        self.find(driver, ".notice")

        # A message through the relay, then Mail flow and the audit log.
        harness.smtplib_send(relay, harness.make_message(SCANNER_ID, "bob@example.org", "console"),
                             ["bob@example.org"])
        self.upstream.wait_messages(1)
        self.click_through(driver, self.find(driver, "nav a[href='/mailflow']"))
        tokens = self.find(driver, "table#tokens").text
        self.assertIn("default", tokens)
        self.assertIn("client credentials", tokens)
        self.screenshot(driver, "mail-flow")
        self.click_through(driver, self.find(driver, "nav a[href='/users']"))
        rows = self.find(driver, "table#users").text
        scanner_row = [line for line in rows.splitlines() if line.startswith(SCANNER_ID)]
        self.assertTrue(scanner_row and scanner_row[0].endswith(" 1"), rows)
        self.click_through(driver, self.find(driver, "nav a[href='/audit']"))
        table = self.find(driver, "table#audit").text
        self.assertIn("New-RelayAccount -Identity mfp@contoso.com", table)
        self.assertIn("Set-RelayAccount -Identity %s -PasswordStdin" % PRINTER_ID, table)
        self.screenshot(driver, "audit-log")
        audit_text = open(os.path.join(relay.workdir, "spool", "audit.log"), encoding="utf-8").read()
        self.assertNotIn(password, audit_text)
        self.assertNotIn("Typed-Password-9", audit_text)
        self.assertNotIn("$y$", audit_text)
        # The printer follows the organization (disabled): the new password
        # gets as far as that refusal, the old one not.
        self.assertEqual(harness.auth_reply(relay, PRINTER_ID, PRINTER_PASSWORD),
                         "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.")
        self.assertEqual(harness.auth_reply(relay, PRINTER_ID, "Typed-Password-9"), TENANT_REFUSAL)


class HttpsTest(ConsoleCase):
    def test_off_loopback_the_console_speaks_only_https(self):
        """An admin listener on a non-loopback address with the console
        serves HTTPS with the SMTP listeners' certificate; plain HTTP gets
        nothing, and the session cookie is Secure."""
        import socket

        accounts = [harness.scanner_account()]
        relay = self.make_relay(accounts, kind="directory", admin=True,
                                extra_sections={"admin": {"users_file": "admin-users.toml", "listen": "0.0.0.0:0"}})
        code, _, err = harness.run_cli(["new-adminuser", "-Identity", ADMIN, "--password-stdin"],
                                       config=relay.config_path, stdin=(ADMIN_PASSWORD + "\n").encode())
        self.assertEqual(code, 0, err)
        self.start_relay(relay)
        [port] = re.findall(rb"admin listening on 0\.0\.0\.0:(\d+) \(.*the web console; HTTPS\)", relay.log())
        port = int(port)

        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /signin HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertNotIn(b"HTTP/1.1 200", answer)
        self.assertNotIn(b"Sign in", answer)

        def https(method, path, body=None, headers=None):
            return harness.http_request(port, method, path, body, headers, relay.client_tls_context(), "localhost")

        status, headers, body = https("GET", "/signin")
        self.assertEqual(status, 200)
        cookie = dict((k.lower(), v) for k, v in headers)["set-cookie"]
        self.assertIn("; Secure", cookie)
        token = re.search(r"subrelay_signin=([0-9a-f]+)", cookie).group(1)
        status, headers, _ = https("POST", "/signin",
                                   body=urllib.parse.urlencode({"csrf": token, "user": ADMIN, "password": ADMIN_PASSWORD}),
                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                            "Cookie": "subrelay_signin=" + token})
        self.assertEqual(status, 303)
        session = [v for k, v in headers if k.lower() == "set-cookie" and v.startswith("subrelay_session=")]
        self.assertTrue(session and "; Secure" in session[0] and "HttpOnly" in session[0], headers)
        status, _, body = https("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("subrelay_", body)


class UsersFileTest(ConsoleCase):
    def test_a_hand_edit_of_the_users_file_is_recorded_as_the_files(self):
        """The running relay records a hand edit of the console's users file
        in the audit log (who "file", the cmdlet that makes it) and a verb's
        change once, as the verb's; the console follows the file at once."""
        relay = self.start_console_relay()
        users_path = os.path.join(relay.workdir, "admin-users.toml")
        with open(users_path, encoding="utf-8") as f:
            text = f.read()
        edited = re.sub(r'(name = "rita"\npassword_hash = [^\n]+\nrole = )"reader"', r'\1"admin"', text)
        self.assertNotEqual(edited, text)
        with open(users_path, "w", encoding="utf-8") as f:
            f.write(edited)

        def by_file():
            return [e for e in self.audit() if e["kind"] == "AdminUser" and e["who"] == "file"]
        harness.wait_for(lambda: by_file(), what="the hand edit in the audit log")
        [entry] = by_file()
        self.assertEqual(entry["what"], "Set-AdminUser -Identity rita -Role admin")
        self.assertEqual((entry["before"]["Role"], entry["after"]["Role"]), ("reader", "admin"))
        self.assertIn("console users edited by hand (%s): Set-AdminUser -Identity rita -Role admin" % users_path,
                      relay.log().decode("utf-8", "replace"))

        # A verb's change: recorded by the verb, not again as the file's. A
        # later hand edit, once recorded, shows that the relay has read the
        # verb's file by then.
        code, _, err = harness.run_cli(["set-adminuser", "-Identity", "rita", "-Role", "reader"],
                                       config=relay.config_path)
        self.assertEqual(code, 0, err)
        with open(users_path, "a", encoding="utf-8") as f:
            f.write('\n[[user]]\nname = "zed"\npassword_hash = \'$6$salt$%s\'\nrole = "reader"\n' % ("x" * 86))
        harness.wait_for(lambda: len(by_file()) == 2, what="the second hand edit in the audit log")
        self.assertEqual([e["what"] for e in by_file()],
                         ["Set-AdminUser -Identity rita -Role admin", "New-AdminUser -Identity zed -Role reader -PasswordStdin"])
        verb = [e for e in self.audit() if e["what"] == "Set-AdminUser -Identity rita -Role reader"]
        self.assertEqual(len(verb), 1, self.audit())
        self.assertNotEqual(verb[0]["who"], "file")

        # The console follows the file: rita is a reader again.
        driver = self.browser()
        self.sign_in(driver, READER, READER_PASSWORD)
        self.assertIn("rita (reader)", driver.find_element("css selector", "header .who").text)
