"""The web console's users ([admin] users_file) managed with the subrelay
binary: new-adminuser, set-adminuser, remove-adminuser and get-adminuser,
each change recorded in the audit log. The users file is checked itself
(parsed with tomllib, its mode, its hashes verified with crypt), and no
password or hash ever appears in a verb's output or in the audit log."""
import json
import os
import re
import stat
import tomllib
import warnings

import harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # verifies the hashes the verbs write

PASSWORD = "Console-Passw0rd!2718"
NEW_PASSWORD = "Console-Passw0rd!3141"


format_list_blocks = harness.format_list_blocks


class AdminUsersCase(harness.IntegrationCase):
    """A relay configuration (not started) that names a console users file."""

    users_file_setting = "console-users.toml"

    def setUp(self):
        super().setUp()
        extra = {"admin": {"users_file": self.users_file_setting}} if self.users_file_setting else {}
        self.relay = harness.Relay(os.path.join(self.workdir, "relay"), self.pki, [harness.scanner_account()],
                                   upstream_port=2525, extra_sections=extra,
                                   token_url="https://127.0.0.1:4443/" + harness.TENANT + "/oauth2/v2.0/token")
        self.users_path = os.path.join(self.relay.workdir, "console-users.toml")
        self.outputs = []   # every stdout and stderr, searched for secrets

    def cli(self, *args, stdin=b"", expect=0):
        code, out, err = harness.run_cli(list(args), config=self.relay.config_path, stdin=stdin)
        self.outputs.append(out + err)
        if expect is not None:
            self.assertEqual(code, expect, "subrelay %s exited %d (expected %d)\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), code, expect, out, err))
        return code, out, err

    def users(self):
        with open(self.users_path, "rb") as f:
            return tomllib.load(f).get("user", [])

    def users_bytes(self):
        with open(self.users_path, "rb") as f:
            return f.read()

    def audit_path(self):
        return os.path.join(self.relay.spool_dir, "audit.log")

    def audit_entries(self):
        if not os.path.exists(self.audit_path()):
            return []
        with open(self.audit_path()) as f:
            return [json.loads(line) for line in f if line.strip()]

    def assert_mode_0600(self):
        mode = stat.S_IMODE(os.stat(self.users_path).st_mode)
        self.assertEqual(mode, 0o600, "the users file has mode %o" % mode)


class AdminUsersTest(AdminUsersCase):

    def test_the_verbs_end_to_end(self):
        # A generated password, printed once; an admin by default.
        _, out, _ = self.cli("new-adminuser", "-Identity", "alice", "--generate-password")
        generated = harness.generated_password(out)
        self.assertTrue(re.fullmatch(r"[A-Za-z0-9]{24}", generated), out)
        self.assert_mode_0600()
        [alice] = self.users()
        self.assertEqual((alice["name"], alice["role"]), ("alice", "admin"))
        self.assertEqual(crypt.crypt(generated, alice["password_hash"]), alice["password_hash"])
        self.assertNotIn(generated.encode(), self.users_bytes())

        # A password on standard input, GNU spelling, a reader.
        _, out, _ = self.cli("new-adminuser", "--identity", "bob@contoso.com", "--role", "reader",
                             "--password-stdin", stdin=(PASSWORD + "\n").encode())
        self.assertEqual(out, "")
        users = {u["name"]: u for u in self.users()}
        self.assertEqual(users["bob@contoso.com"]["role"], "reader")
        bob_hash = users["bob@contoso.com"]["password_hash"]
        self.assertEqual(crypt.crypt(PASSWORD, bob_hash), bob_hash)

        _, out, _ = self.cli("get-adminuser")
        self.assertEqual(format_list_blocks(out), [
            {"Name": "alice", "Role": "admin", "HasPassword": "True"},
            {"Name": "bob@contoso.com", "Role": "reader", "HasPassword": "True"},
        ])
        _, out, _ = self.cli("get-adminuser", "-Identity", "BOB@contoso.com", "--json")
        self.assertEqual(json.loads(out), [{"Name": "bob@contoso.com", "Role": "reader", "HasPassword": True}])

        # The role, then the password.
        self.cli("set-adminuser", "-Identity", "bob@contoso.com", "-Role", "admin")
        self.cli("set-adminuser", "bob@contoso.com", "--password-stdin", stdin=(NEW_PASSWORD + "\n").encode())
        bob = {u["name"]: u for u in self.users()}["bob@contoso.com"]
        self.assertEqual(bob["role"], "admin")
        self.assertEqual(crypt.crypt(NEW_PASSWORD, bob["password_hash"]), bob["password_hash"])
        self.assertNotEqual(bob["password_hash"], bob_hash)
        self.assert_mode_0600()

        self.cli("remove-adminuser", "-Identity", "ALICE")
        self.assertEqual([u["name"] for u in self.users()], ["bob@contoso.com"])
        self.assert_mode_0600()

        for text in self.outputs:
            self.assertNotIn("$y$", text, "a hash in a verb's output")
            self.assertNotIn(PASSWORD, text)
            self.assertNotIn(NEW_PASSWORD, text)

    def test_root_makes_the_file_readable_to_the_relays_group(self):
        """The relay reads the users file as its own user: a file root makes
        when the spool belongs to that user is root:its group 0640, as the
        package sets the policy file (0600 root:root would lock the relay out)."""
        if os.geteuid() != 0:
            self.skipTest("only root gives a file to a group")
        os.makedirs(self.relay.spool_dir, mode=0o700, exist_ok=True)
        os.chown(self.relay.spool_dir, 65534, 65534)
        self.cli("new-adminuser", "-Identity", "alice", "--password-stdin", stdin=(PASSWORD + "\n").encode())
        st = os.stat(self.users_path)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 65534, 0o640))
        self.cli("set-adminuser", "-Identity", "alice", "-Role", "reader")
        st = os.stat(self.users_path)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 65534, 0o640))

    def test_each_change_is_recorded_without_a_password_or_hash(self):
        self.cli("new-adminuser", "-Identity", "alice", "-Role", "admin", "--password-stdin",
                 stdin=(PASSWORD + "\n").encode())
        self.cli("set-adminuser", "-Identity", "alice", "-Role", "reader")
        self.cli("set-adminuser", "-Identity", "alice", "--password-stdin", stdin=(NEW_PASSWORD + "\n").encode())
        self.cli("set-adminuser", "-Identity", "alice", "-Role", "reader")   # nothing changes: no entry
        self.cli("remove-adminuser", "-Identity", "alice")

        entries = self.audit_entries()
        self.assertEqual([e["what"] for e in entries], [
            "New-AdminUser -Identity alice -Role admin -PasswordStdin",
            "Set-AdminUser -Identity alice -Role reader",
            "Set-AdminUser -Identity alice -PasswordStdin",
            "Remove-AdminUser -Identity alice",
        ])
        for e in entries:
            self.assertEqual((e["kind"], e["object"]), ("AdminUser", "alice"))
        self.assertIsNone(entries[0]["before"])
        self.assertEqual(entries[0]["after"], {"Name": "alice", "Role": "admin", "HasPassword": True})
        self.assertEqual(entries[1]["before"]["Role"], "admin")
        self.assertEqual(entries[1]["after"]["Role"], "reader")
        self.assertNotIn("PasswordChanged", entries[1]["after"])
        self.assertIs(entries[2]["after"]["PasswordChanged"], True)
        self.assertIsNone(entries[3]["after"])

        with open(self.audit_path()) as f:
            text = f.read()
        for secret in (PASSWORD, NEW_PASSWORD, "$y$", "password_hash"):
            self.assertNotIn(secret, text)
        mode = stat.S_IMODE(os.stat(self.audit_path()).st_mode)
        self.assertEqual(mode & 0o007, 0, "the audit log is readable by others: %o" % mode)

        # search-adminauditlog shows them like the policy's changes.
        _, out, _ = self.cli("search-adminauditlog", "-Identity", "alice")
        blocks = format_list_blocks(out)
        self.assertEqual([(b["CmdletName"], b["CmdletParameters"]) for b in blocks], [
            ("New-AdminUser", "-Identity alice -Role admin -PasswordStdin"),
            ("Set-AdminUser", "-Identity alice -Role reader"),
            ("Set-AdminUser", "-Identity alice -PasswordStdin"),
            ("Remove-AdminUser", "-Identity alice"),
        ])
        self.assertEqual([b["ModifiedProperties"] for b in blocks], [
            "(created)", 'Role: "admin" -> "reader"', "PasswordChanged: null -> true", "(removed)"])
        self.assertEqual({b["ObjectKind"] for b in blocks}, {"AdminUser"})
        _, out, _ = self.cli("search-adminauditlog", "--json")
        self.assertEqual(len(json.loads(out)), 4)
        for text in self.outputs:
            self.assertNotIn("$y$", text)

    def test_refusals_change_nothing(self):
        self.cli("new-adminuser", "-Identity", "alice", "--generate-password")
        before = self.users_bytes()
        entries = len(self.audit_entries())

        _, out, err = self.cli("new-adminuser", "-Identity", "Alice", "--generate-password", expect=1)
        self.assertEqual(out, "", "a password printed for a user that was not made")
        self.assertIn("An admin user with identity 'alice' already exists.", err)
        _, _, err = self.cli("set-adminuser", "-Identity", "carol", "-Role", "reader", expect=1)
        self.assertIn("The operation couldn't be performed because object 'carol' couldn't be found.", err)
        _, _, err = self.cli("remove-adminuser", "-Identity", "carol", expect=1)
        self.assertIn("object 'carol' couldn't be found", err)
        _, _, err = self.cli("get-adminuser", "-Identity", "carol", expect=1)
        self.assertIn("object 'carol' couldn't be found", err)
        _, _, err = self.cli("set-adminuser", "-Identity", "alice", expect=1)
        self.assertIn("nothing to change", err)
        _, _, err = self.cli("set-adminuser", "-Identity", "alice", "-Role", "owner", expect=1)
        self.assertIn("-Role must be admin or reader, not 'owner'.", err)
        _, _, err = self.cli("new-adminuser", "-Identity", "bad name", "--generate-password", expect=1)
        self.assertIn('"bad name" is not a valid name', err)
        _, _, err = self.cli("new-adminuser", "-Identity", "bob", expect=1)
        self.assertIn("--password-stdin", err)
        _, _, err = self.cli("new-adminuser", "-Identity", "bob", "--colour", "blue", expect=2)
        self.assertIn("unknown option '--colour'", err)

        self.assertEqual(self.users_bytes(), before)
        self.assertEqual(len(self.audit_entries()), entries)

    def test_a_users_file_that_does_not_load_is_reported_and_kept(self):
        with open(self.users_path, "w") as f:
            f.write('[[user]]\nname = "alice"\npassword_hash = "$y$j9T$abc$def"\nrole = "owner"\ncolour = 1\n')
        os.chmod(self.users_path, 0o600)
        before = self.users_bytes()
        expected = [
            '%s: user[0].role: expected "admin" or "reader", got "owner"' % self.users_path,
            "%s: user[0].colour: unknown key" % self.users_path,
        ]
        _, _, err = self.cli("get-adminuser", expect=1)
        self.assertEqual(err.splitlines(), expected)
        _, out, err = self.cli("new-adminuser", "-Identity", "bob", "--generate-password", expect=1)
        self.assertEqual(out, "")
        self.assertEqual(err.splitlines(), expected)
        self.assertEqual(self.users_bytes(), before)
        self.assertEqual(self.audit_entries(), [])
        # check-config reports the same lines.
        code, out, err = harness.run_cli(["check-config"], config=self.relay.config_path)
        self.assertEqual(code, 1, out + err)
        for line in expected:
            self.assertIn(line, err.splitlines())

    def test_check_config_accepts_a_valid_users_file(self):
        self.cli("new-adminuser", "-Identity", "alice", "--generate-password")
        _, out, _ = self.cli("check-config")
        self.assertEqual(out.strip(), "ok")


class AdminUsersNotSetTest(AdminUsersCase):
    """Without [admin] users_file there are no console users: the verbs say
    which key of which file to set, and make nothing."""

    users_file_setting = None

    def test_each_verb_names_the_config_and_the_key(self):
        for args in (("new-adminuser", "-Identity", "alice", "--generate-password"),
                     ("set-adminuser", "-Identity", "alice", "-Role", "reader"),
                     ("remove-adminuser", "-Identity", "alice"),
                     ("get-adminuser",)):
            _, out, err = self.cli(*args, expect=1)
            self.assertEqual(out, "", args)
            self.assertTrue(err.startswith("%s: admin.users_file: not set; " % self.relay.config_path),
                            "%s: %r" % (args[0], err))
        self.assertFalse(os.path.exists(self.users_path))
        self.assertEqual(self.audit_entries(), [])
