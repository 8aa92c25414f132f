"""Policy edits that fail safe, with the real binary: an empty policy file or
a directory in its place is an error (the running relay keeps its policy,
check-config says what is wrong), a file written in place in two steps is
never applied half-way, a reload that removes most accounts needs a
complete file and is logged as a warning, and revoking an account (or its
binding) reaches the sessions already open."""
import os
import re
import shutil
import signal

import harness
from harness import REPLY_DISABLED_MAILBOX, REPLY_NOT_AUTHENTICATED

PASSWORD = "Device-Passw0rd!2718"
# What an open session gets at MAIL once its account is disabled: the AUTH
# refusal's text, with the code of a refused MAIL.
REPLY_DISABLED_MAILBOX_AT_MAIL = "550" + REPLY_DISABLED_MAILBOX[3:]
RELOADED = rb"policy reloaded \(([^)]*)\): (\d+) account\(s\)"


def account(identity, **values):
    values = dict(values)
    values.setdefault("password", PASSWORD)
    return dict({"identity": identity}, **values)


class PolicySafety(harness.IntegrationCase):
    def start_with_policy(self, **policy):
        """A relay writing to a directory (no upstream needed) with this policy."""
        relay = self.make_relay([], kind="directory")
        harness.write_policy(relay, harness.policy_toml(**policy))
        self.start_relay(relay)
        return relay

    def log_since(self, offset):
        return self.relay.log()[offset:]

    def wait_log(self, offset, pattern, what, timeout=15):
        """Waits for `pattern` (bytes regex) in the log written after `offset`; returns the match."""
        found = []

        def check():
            m = re.search(pattern, self.log_since(offset), re.M)
            if m:
                found.append(m)
            return m
        harness.wait_for(check, timeout=timeout, interval=0.05, what=what)
        return found[-1]

    def policy_error(self, message):
        """The log line `FILE: message`, as a bytes regex."""
        return re.escape(self.relay.policy_path.encode()) + b": " + re.escape(message.encode())

    def assert_auth_ok(self, identity, why):
        self.assertRegex(harness.auth_reply(self.relay, identity, PASSWORD), r"^235 2\.7\.0 ", why)

    def reloads(self, offset):
        """(why, accounts) of every policy reload logged after `offset`."""
        return [(m.group(1).decode(), int(m.group(2))) for m in re.finditer(RELOADED, self.log_since(offset))]


# ---------------------------------------------------------------- empty file, directory

class EmptyPolicyTest(PolicySafety):
    def start(self):
        return self.start_with_policy(org={"smtp_client_authentication_disabled": False},
                                      mailboxes=[account("dev@contoso.com")])

    def test_an_empty_file_is_an_error_and_the_previous_policy_stays(self):
        relay = self.start()
        self.assert_auth_ok("dev@contoso.com", "the relay should start with the account enabled")
        for how in ("rename", "in place"):
            with self.subTest(how=how):
                offset = len(relay.log())
                if how == "rename":
                    harness.write_policy(relay, "")
                else:
                    with open(relay.policy_path, "w"):
                        pass
                self.wait_log(offset, self.policy_error("the file is empty") + b"|" + RELOADED,
                              "the relay to notice the empty policy file")
                self.assertRegex(self.log_since(offset), self.policy_error("the file is empty"),
                                 "an empty policy file must be reported as `FILE: what is wrong`")
                self.assertEqual(self.reloads(offset), [], "an empty policy file must not be applied")
                self.assert_auth_ok("dev@contoso.com", "the previous policy must stay in force")
                # SIGHUP reads it at once: the same error, the same policy.
                offset = len(relay.log())
                relay.process.proc.send_signal(signal.SIGHUP)
                self.wait_log(offset, self.policy_error("the file is empty") + b"|" + RELOADED,
                              "the relay to read the empty policy file on SIGHUP")
                self.assertEqual(self.reloads(offset), [])
                self.assert_auth_ok("dev@contoso.com", "the previous policy must stay in force after SIGHUP")
        self.assertTrue(relay.process.running())

    def test_a_directory_instead_of_the_file_is_an_error_and_the_previous_policy_stays(self):
        relay = self.start()
        with open(relay.policy_path) as f:
            good = f.read()
        offset = len(relay.log())
        os.remove(relay.policy_path)
        os.mkdir(relay.policy_path)
        error = self.policy_error("is a directory, not a policy file")
        self.wait_log(offset, error + b"|" + RELOADED, "the relay to notice the directory")
        self.assertRegex(self.log_since(offset), error)
        self.assertEqual(self.reloads(offset), [], "a directory must not load as an empty policy")
        self.assert_auth_ok("dev@contoso.com", "the previous policy must stay in force")
        offset = len(relay.log())
        relay.process.proc.send_signal(signal.SIGHUP)
        self.wait_log(offset, error + b"|" + RELOADED, "the relay to read the directory on SIGHUP")
        self.assertEqual(self.reloads(offset), [])
        self.assert_auth_ok("dev@contoso.com", "the previous policy must stay in force after SIGHUP")
        # A file again: taken in as usual.
        shutil.rmtree(relay.policy_path)
        offset = len(relay.log())
        harness.write_policy(relay, good.replace("smtp_client_authentication_disabled = false",
                                                 "smtp_client_authentication_disabled = true", 1))
        self.wait_log(offset, RELOADED, "the relay to load the policy file again")
        self.assertEqual(harness.auth_reply(relay, "dev@contoso.com", PASSWORD),
                         harness.REPLY_DISABLED_TENANT)


class CheckConfigTest(PolicySafety):
    def check_config(self, relay):
        return harness.run_cli(["check-config"], config=relay.config_path)

    def test_check_config_reports_an_empty_file_and_a_directory(self):
        relay = self.make_relay([harness.Account("dev@contoso.com", PASSWORD)], kind="directory")
        code, out, err = self.check_config(relay)
        self.assertEqual((code, out.strip()), (0, "ok"), out + err)
        pattern = r"(?m)^%s: %%s" % re.escape(relay.policy_path)
        with open(relay.policy_path, "w"):
            pass
        code, out, err = self.check_config(relay)
        self.assertEqual(code, 1, "check-config must fail on an empty policy file:\n" + out + err)
        self.assertRegex(err, pattern % re.escape("the file is empty"))
        self.assertNotIn("ok", out.split())
        with open(relay.policy_path, "w") as f:
            f.write("# every account was here\n\n")
        code, out, err = self.check_config(relay)
        self.assertEqual(code, 1, "a file of comments only is empty too:\n" + out + err)
        self.assertRegex(err, pattern % re.escape("the file is empty"))
        os.remove(relay.policy_path)
        os.mkdir(relay.policy_path)
        code, out, err = self.check_config(relay)
        self.assertEqual(code, 1, "check-config must fail when the policy file is a directory:\n" + out + err)
        self.assertRegex(err, pattern % re.escape("is a directory, not a policy file"))

    def test_serve_refuses_to_start_with_an_empty_policy_file(self):
        relay = self.make_relay([], kind="directory")
        harness.write_policy(relay, "")
        relay.start(wait=False)
        self._track(relay)
        self.assertEqual(relay.process.proc.wait(timeout=30), 1, "subrelay serve must refuse an empty policy file")
        self.assertRegex(relay.log(), self.policy_error("the file is empty"))


# ---------------------------------------------------------------- torn writes

def many_accounts(names, disabled):
    """A policy text: the organization allows SMTP AUTH; each account's own
    switch comes after its password_hash, as CLI edits write it."""
    return harness.policy_toml(org={"smtp_client_authentication_disabled": False},
                               mailboxes=[account(n, smtp_client_authentication_disabled=disabled,
                                                  max_messages_per_minute=10) for n in names])


class TornWriteTest(PolicySafety):
    def test_a_file_written_in_place_in_two_steps_is_never_applied_half_way(self):
        names = ["off%d@contoso.com" % i for i in range(6)]
        relay = self.start_with_policy(org={"smtp_client_authentication_disabled": False},
                                       mailboxes=[account(n, smtp_client_authentication_disabled=True,
                                                          max_messages_per_minute=10) for n in names])
        final = many_accounts(names + ["new@contoso.com"], True)
        # The first half ends just after off0's password_hash: before its
        # `smtp_client_authentication_disabled = true`. Applied, it would
        # enable off0, which neither the old nor the new file does.
        hash_line = re.search(r"(?m)^password_hash = .*\n", final)
        half, rest = final[:hash_line.end()], final[hash_line.end():]
        offset = len(relay.log())
        with open(relay.policy_path, "r+") as f:
            f.truncate(0)
            f.write(half)
            f.flush()
            os.fsync(f.fileno())
            # A poll sees the half-written file (or, before, a reload of it)...
            self.wait_log(offset, rb"policy file .* changed; |" + RELOADED,
                          "the relay to see the half-written policy file")
            # ...and the rest arrives before the next one.
            f.write(rest)
            f.flush()
            os.fsync(f.fileno())
        self.wait_log(offset, rb"policy reloaded \(file changed\): 7 account\(s\)", "the relay to load the whole file")
        self.assertEqual(self.reloads(offset), [("file changed", 7)],
                         "the half-written policy file was applied")
        self.assertEqual(harness.auth_reply(relay, "off0@contoso.com", PASSWORD), REPLY_DISABLED_MAILBOX)
        self.assertNotIn(b"auth ok: account=off0@contoso.com", relay.log())

    def test_a_file_cut_short_that_removes_most_accounts_is_not_applied(self):
        names = ["dev%d@contoso.com" % i for i in range(6)]
        relay = self.start_with_policy(org={"smtp_client_authentication_disabled": False},
                                       mailboxes=[account(n, smtp_client_authentication_disabled=False,
                                                          max_messages_per_minute=10) for n in names])
        final = many_accounts(names, False)
        # Cut in dev1's last line, "max_messages_per_minute = 10" read as "= 1":
        # valid TOML without its line end, and dev2 to dev5 are gone.
        second = [m.end() for m in re.finditer(r"(?m)^max_messages_per_minute = 1", final)][1]
        half, rest = final[:second], final[second:]
        offset = len(relay.log())
        with open(relay.policy_path, "r+") as f:
            f.truncate(0)
            f.write(half)
            f.flush()
            # The writer stalls: the file stays half-written over many polls.
            refusal = self.policy_error("would remove 4 of the 6 accounts in force and does not end with a "
                                        "complete last table")
            self.wait_log(offset, refusal + b"|" + RELOADED, "the relay to read the half-written file")
            self.assertEqual(self.reloads(offset), [], "the half-written policy file was applied")
            self.assertRegex(self.log_since(offset), refusal)
            self.assert_auth_ok("dev5@contoso.com", "the previous policy must stay in force")
            f.write(rest)
            f.flush()
        self.wait_log(offset, RELOADED, "the relay to load the whole file")
        self.assertEqual(self.reloads(offset), [("file changed", 6)])
        self.assert_auth_ok("dev5@contoso.com", "the whole file keeps dev5")

    def test_removing_most_accounts_on_purpose_is_applied_with_a_warning(self):
        names = ["dev%d@contoso.com" % i for i in range(6)]
        relay = self.start_with_policy(org={"smtp_client_authentication_disabled": False},
                                       mailboxes=[account(n) for n in names])
        offset = len(relay.log())
        harness.write_policy(relay, harness.policy_toml(org={"smtp_client_authentication_disabled": False},
                                                        mailboxes=[account(names[0])]))
        self.wait_log(offset, RELOADED, "the relay to load the smaller policy")
        self.assertEqual(self.reloads(offset), [("file changed", 1)])
        self.assertRegex(self.log_since(offset),
                         rb"(?m)^\S+ warning " + self.policy_error(
                             "more than half of the accounts were removed: 6 account(s) before, 1 after"))
        self.assertEqual(harness.auth_reply(relay, names[1], PASSWORD), harness.REPLY_BAD_CREDENTIALS)


# ---------------------------------------------------------------- revocation reaches open sessions

class RevocationTest(PolicySafety):
    def cli(self, *args):
        code, out, err = harness.run_cli(list(args), config=self.relay.config_path)
        self.assertEqual(code, 0, "subrelay %s exited %d:\n%s%s" % (" ".join(args), code, out, err))

    def submit(self, d, sender, rcpt="alice@example.org"):
        return harness.submit_on(d, sender, rcpt, subject="revocation")

    def edit_and_wait(self, *args):
        offset = len(self.relay.log())
        self.cli(*args)
        self.wait_log(offset, RELOADED, "the relay to load the edited policy")

    def test_an_account_set_to_true_is_refused_on_its_open_session(self):
        relay = self.start_with_policy(org={"smtp_client_authentication_disabled": True},
                                       mailboxes=[account("dev@contoso.com", smtp_client_authentication_disabled=False)])
        d = relay.authenticated_dialogue("dev@contoso.com", PASSWORD)
        self.assertRegex(self.submit(d, "dev@contoso.com"), r"^250 2\.0\.0 ")
        self.edit_and_wait("set-casmailbox", "-Identity", "dev@contoso.com", "-SmtpClientAuthenticationDisabled",
                           "$true")
        self.assertEqual(self.submit(d, "dev@contoso.com"), REPLY_DISABLED_MAILBOX_AT_MAIL,
                         "an authenticated session must not send once its account is disabled")
        self.assertRegex(relay.log(), rb"MAIL refused: account=dev@contoso\.com may not send now")
        # A new session is refused at AUTH, as before.
        self.assertEqual(harness.auth_reply(relay, "dev@contoso.com", PASSWORD), REPLY_DISABLED_MAILBOX)
        # Enabled again: the open session sends again.
        self.edit_and_wait("set-casmailbox", "-Identity", "dev@contoso.com", "-SmtpClientAuthenticationDisabled",
                           "$false")
        self.assertRegex(self.submit(d, "dev@contoso.com"), r"^250 2\.0\.0 ")
        d.send("QUIT")
        d.expect("221 *")
        d.close()

    def bound_session(self):
        """A relay where 127.0.0.2 is bound to bound@contoso.com (enabled),
        and a session from there that has sent one message."""
        self.start_with_policy(org={"smtp_client_authentication_disabled": True},
                               mailboxes=[account("bound@contoso.com", smtp_client_authentication_disabled=False,
                                                  password=None)],
                               bindings=[{"network": "127.0.0.2/32", "identity": "bound@contoso.com"}])
        d = harness.Dialogue(harness.connect_from("127.0.0.2", self.relay.submission_port))
        d.expect("220 *")
        d.send("EHLO printer.contoso.test")
        d.expect("250 *")
        self.assertRegex(self.submit(d, "bound@contoso.com"), r"^250 2\.0\.0 ")
        return d

    def test_a_removed_binding_no_longer_covers_its_open_session(self):
        d = self.bound_session()
        self.edit_and_wait("remove-relaybinding", "-Network", "127.0.0.2/32")
        self.assertEqual(self.submit(d, "bound@contoso.com"), REPLY_NOT_AUTHENTICATED,
                         "a session must not send once the binding that covered it is removed")
        d.close()

    def test_a_bound_account_set_to_true_is_refused_on_its_open_session(self):
        d = self.bound_session()
        self.edit_and_wait("set-casmailbox", "-Identity", "bound@contoso.com", "-SmtpClientAuthenticationDisabled",
                           "$true")
        self.assertEqual(self.submit(d, "bound@contoso.com"), REPLY_DISABLED_MAILBOX_AT_MAIL)
        d.close()
