"""The operator verbs (Get-/Set-CASMailbox, Get-/Set-TransportConfig, ...)
run from the subrelay binary against a policy file found through --config,
in PowerShell spelling and in GNU spelling. Every edit is checked in the
file itself (parsed with tomllib), not only in the verb's output."""
import json
import os
import re
import tomllib
import warnings

import harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # verifies the hashes new-relayaccount writes

BLOCK = "Block Basic Auth"
SCANNER = "scanner@contoso.com"      # SmtpClientAuthenticationDisabled = False
PRINTER = "printer@contoso.com"      # True, authentication policy "Block Basic Auth"
FAX = "fax@contoso.com"              # unset
MFP = "mfp@contoso.com"              # unset
ALL = [SCANNER, PRINTER, FAX, MFP]
NEW_PASSWORD = "New-Relay-Passw0rd!815"


def base_policy():
    return harness.policy_toml(
        org={"smtp_client_authentication_disabled": True},
        authentication_policies=[{"name": BLOCK, "allow_basic_auth_smtp": False}],
        mailboxes=[
            {"identity": SCANNER, "password": "Scanner-Passw0rd!4711",
             "smtp_client_authentication_disabled": False, "allowed_senders": [SCANNER, "*@contoso.com"]},
            {"identity": PRINTER, "password": "Printer-Passw0rd!4712",
             "smtp_client_authentication_disabled": True, "authentication_policy": BLOCK},
            {"identity": FAX, "password": "Fax-Passw0rd!4713"},
            {"identity": MFP, "password": "Mfp-Passw0rd!4714"},
        ])


format_list_blocks = harness.format_list_blocks


class PolicyCli(harness.IntegrationCase):
    """A relay configuration (not started) whose policy file the verbs edit."""

    def setUp(self):
        super().setUp()
        self.relay = harness.Relay(os.path.join(self.workdir, "relay"), self.pki, [harness.scanner_account()],
                                   upstream_port=2525,
                                   token_url="https://127.0.0.1:4443/" + harness.TENANT + "/oauth2/v2.0/token")
        harness.write_policy(self.relay, base_policy())

    # -- helpers
    def cli(self, *args, stdin=b"", expect=0):
        code, out, err = harness.run_cli(list(args), config=self.relay.config_path, stdin=stdin)
        if expect is not None:
            self.assertEqual(code, expect, "subrelay %s exited %d (expected %d)\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), code, expect, out, err))
        return code, out, err

    def policy_bytes(self):
        with open(self.relay.policy_path, "rb") as f:
            return f.read()

    def policy(self):
        return tomllib.loads(self.policy_bytes().decode())

    def mailbox(self, identity):
        found = [m for m in self.policy().get("mailbox", []) if m["identity"].lower() == identity.lower()]
        self.assertLessEqual(len(found), 1, "identity %s appears twice in the file" % identity)
        return found[0] if found else None

    def disabled_in_file(self, identity):
        m = self.mailbox(identity)
        self.assertIsNotNone(m, "%s is not in the policy file" % identity)
        return m.get("smtp_client_authentication_disabled")

    def cas_json(self, *args):
        _, out, _ = self.cli("get-casmailbox", "--json", *args)
        data = json.loads(out)
        self.assertIsInstance(data, list, out)
        for entry in data:
            self.assertEqual(set(entry), {"Identity", "SmtpClientAuthenticationDisabled"}, entry)
        return data

    def assert_refused_unchanged(self, *args, expect_code=None, stdin=b""):
        before = self.policy_bytes()
        code, out, err = self.cli(*args, stdin=stdin, expect=None)
        if expect_code is None:
            self.assertNotEqual(code, 0, "subrelay %s should have failed:\n%s%s" % (" ".join(args), out, err))
        else:
            self.assertEqual(code, expect_code, "subrelay %s:\n%s%s" % (" ".join(args), out, err))
        self.assertTrue(err.strip(), "a refused edit must say why on stderr")
        self.assertEqual(self.policy_bytes(), before, "a refused edit changed the policy file")
        return out, err

    def assert_check_config_ok(self):
        _, out, err = self.cli("check-config")
        self.assertEqual(out.strip(), "ok", out + err)


class TransportAndOrganizationTest(PolicyCli):
    def transport_value(self):
        _, out, _ = self.cli("get-transportconfig")
        m = re.search(r"(?m)^SmtpClientAuthenticationDisabled\s*: (True|False)\s*$", out)
        self.assertIsNotNone(m, out)
        return m.group(1)

    def test_transportconfig_both_spellings(self):
        self.assertEqual(self.transport_value(), "True")
        steps = [
            (["-SmtpClientAuthenticationDisabled", "$false"], False),
            (["--smtp-client-authentication-disabled", "true"], True),
            (["-smtpclientauthenticationdisabled:$FALSE"], False),
            (["--smtp-client-authentication-disabled=TRUE"], True),
            (["-SMTPCLIENTAUTHENTICATIONDISABLED", "false"], False),
        ]
        for args, expected in steps:
            with self.subTest(args=args):
                self.cli("set-transportconfig", *args)
                self.assertIs(self.policy()["organization"]["smtp_client_authentication_disabled"], expected)
                self.assertEqual(self.transport_value(), "True" if expected else "False")
        # The mailboxes were not touched by organization edits.
        self.assertIs(self.disabled_in_file(SCANNER), False)
        self.assertIs(self.disabled_in_file(PRINTER), True)
        self.assertIsNone(self.disabled_in_file(FAX))
        self.assert_check_config_ok()

    def test_organizationconfig_both_spellings(self):
        self.cli("set-organizationconfig", "-DefaultAuthenticationPolicy", BLOCK, "-SecurityDefaults", "$true",
                 "-MaxMessagesPerMinute", "7", "-MaxRecipientsPerDay", "1234", "-MaxRecipientsPerMessage", "12")
        org = self.policy()["organization"]
        self.assertEqual(org.get("default_authentication_policy"), BLOCK)
        self.assertIs(org.get("security_defaults"), True)
        self.assertEqual((org.get("max_messages_per_minute"), org.get("max_recipients_per_day"),
                          org.get("max_recipients_per_message")), (7, 1234, 12))
        self.assertIs(org["smtp_client_authentication_disabled"], True, "an unrelated setting changed")
        _, out, _ = self.cli("get-organizationconfig")
        self.assertIn(BLOCK, out)
        self.assertRegex(out, r"(?m)^\w*SecurityDefaults\w*\s*: True\s*$")
        self.assertRegex(out, r"(?m)^\w*MaxMessagesPerMinute\w*\s*: 7\s*$")

        self.cli("set-organizationconfig", "--default-authentication-policy", "$null", "--security-defaults",
                 "false", "--max-messages-per-minute", "45", "--max-recipients-per-day=50")
        org = self.policy()["organization"]
        self.assertEqual(org.get("default_authentication_policy", ""), "")
        self.assertIs(org.get("security_defaults", False), False)
        self.assertEqual(org.get("max_messages_per_minute"), 45)
        self.assertEqual(org.get("max_recipients_per_day"), 50)
        self.assertEqual(org.get("max_recipients_per_message"), 12, "an option not given must not change")
        _, out, _ = self.cli("get-organizationconfig")
        self.assertRegex(out, r"(?m)^\w*SecurityDefaults\w*\s*: False\s*$")
        self.assertNotIn(BLOCK, out)
        self.assert_check_config_ok()


class CasMailboxTest(PolicyCli):
    def test_set_casmailbox_both_spellings(self):
        steps = [
            (["-Identity", FAX, "-SmtpClientAuthenticationDisabled", "$false"], False),
            (["--identity", FAX, "--smtp-client-authentication-disabled", "null"], None),
            (["-identity:" + FAX, "-smtpclientauthenticationdisabled:$true"], True),
            (["--identity=" + FAX, "--smtp-client-authentication-disabled=false"], False),
            (["-Identity", FAX.upper(), "-SmtpClientAuthenticationDisabled", "$NULL"], None),
            (["-SmtpClientAuthenticationDisabled", "true", "-Identity", FAX], True),
        ]
        for args, expected in steps:
            with self.subTest(args=args):
                self.cli("set-casmailbox", *args)
                self.assertIs(self.disabled_in_file(FAX), expected)
                self.assertEqual(self.cas_json("-Identity", FAX),
                                 [{"Identity": FAX, "SmtpClientAuthenticationDisabled": expected}])
        # Only the named mailbox changed.
        self.assertIs(self.disabled_in_file(SCANNER), False)
        self.assertIs(self.disabled_in_file(PRINTER), True)
        self.assertIsNone(self.disabled_in_file(MFP))
        self.assert_check_config_ok()

    def test_get_casmailbox_format_list(self):
        _, out, _ = self.cli("get-casmailbox")
        blocks = format_list_blocks(out)
        self.assertEqual(blocks, [
            {"Identity": SCANNER, "SmtpClientAuthenticationDisabled": "False"},
            {"Identity": PRINTER, "SmtpClientAuthenticationDisabled": "True"},
            {"Identity": FAX, "SmtpClientAuthenticationDisabled": ""},
            {"Identity": MFP, "SmtpClientAuthenticationDisabled": ""},
        ])
        # The colons line up, as Format-List prints them.
        self.assertIn("Identity                         : %s" % SCANNER, out.splitlines())
        _, out, _ = self.cli("get-casmailbox", "-Identity", PRINTER)
        self.assertEqual(format_list_blocks(out), [{"Identity": PRINTER, "SmtpClientAuthenticationDisabled": "True"}])

    def test_verb_names_any_case(self):
        _, lower, _ = self.cli("get-casmailbox", "--json")
        _, mixed, _ = self.cli("Get-CASMailbox", "-JSON")
        self.assertEqual(json.loads(mixed), json.loads(lower))
        self.cli("Set-CASMailbox", "-Identity", MFP, "-SmtpClientAuthenticationDisabled", "$false")
        self.assertIs(self.disabled_in_file(MFP), False)

    def test_get_casmailbox_json(self):
        self.assertEqual(self.cas_json(), [
            {"Identity": SCANNER, "SmtpClientAuthenticationDisabled": False},
            {"Identity": PRINTER, "SmtpClientAuthenticationDisabled": True},
            {"Identity": FAX, "SmtpClientAuthenticationDisabled": None},
            {"Identity": MFP, "SmtpClientAuthenticationDisabled": None},
        ])
        _, out, _ = self.cli("get-casmailbox", "-Json", "--identity", SCANNER)
        self.assertEqual(json.loads(out), [{"Identity": SCANNER, "SmtpClientAuthenticationDisabled": False}])

    def test_get_casmailbox_filters(self):
        cases = [
            ("SmtpClientAuthenticationDisabled -eq $true", [PRINTER]),
            ("SmtpClientAuthenticationDisabled -eq $false", [SCANNER]),
            ("SmtpClientAuthenticationDisabled -eq $null", [FAX, MFP]),
            ("{SmtpClientAuthenticationDisabled -eq $true}", [PRINTER]),
            ("SmtpClientAuthenticationDisabled -ne $true", [SCANNER, FAX, MFP]),
            ("SmtpClientAuthenticationDisabled -ne $null", [SCANNER, PRINTER]),
        ]
        for spelling in ("-Filter", "--filter"):
            for text, expected in cases:
                with self.subTest(spelling=spelling, filter=text):
                    got = [e["Identity"] for e in self.cas_json(spelling, text)]
                    self.assertEqual(got, expected)
        # The Format-List output filters the same way.
        _, out, _ = self.cli("get-casmailbox", "-ResultSize", "unlimited", "-Filter",
                             "SmtpClientAuthenticationDisabled -eq $null")
        self.assertEqual([b["Identity"] for b in format_list_blocks(out)], [FAX, MFP])
        # A filter it cannot read is a usage error, not an empty answer.
        code, out, err = self.cli("get-casmailbox", "-Filter", "Nonsense -like 'x'", expect=None)
        self.assertNotEqual(code, 0, out)

    def test_result_size(self):
        self.assertEqual([e["Identity"] for e in self.cas_json("-ResultSize", "2")], [SCANNER, PRINTER])
        self.assertEqual([e["Identity"] for e in self.cas_json("--result-size", "1")], [SCANNER])
        self.assertEqual([e["Identity"] for e in self.cas_json("-ResultSize", "Unlimited")], ALL)

    def test_unknown_identity(self):
        code, out, err = self.cli("get-casmailbox", "-Identity", "ghost@contoso.com", expect=1)
        self.assertIn("couldn't be found", out + err)
        self.assertIn("ghost@contoso.com", out + err)
        _, err = self.assert_refused_unchanged("set-casmailbox", "-Identity", "ghost@contoso.com",
                                               "-SmtpClientAuthenticationDisabled", "$true", expect_code=1)
        self.assertIn("couldn't be found", err)

    def test_missing_value_mentions_quoting(self):
        # What an unquoted $false becomes in a POSIX shell: nothing at all.
        for args in (["set-casmailbox", "-Identity", FAX, "-SmtpClientAuthenticationDisabled"],
                     ["set-casmailbox", "-SmtpClientAuthenticationDisabled", "-Identity", FAX],
                     ["set-casmailbox", "--identity", FAX, "--smtp-client-authentication-disabled"],
                     ["set-transportconfig", "-SmtpClientAuthenticationDisabled"],
                     ["set-authenticationpolicy", "-Identity", BLOCK, "-AllowBasicAuthSmtp"]):
            with self.subTest(args=args):
                _, err = self.assert_refused_unchanged(*args, expect_code=2)
                self.assertRegex(err.lower(), r"quot", "the error should tell to quote the value: %r" % err)
        # A value that is not a boolean at all.
        for value in ("maybe", "", "1x"):
            with self.subTest(value=value):
                self.assert_refused_unchanged("set-casmailbox", "-Identity", FAX,
                                              "-SmtpClientAuthenticationDisabled", value)

    def test_bulk_from_file_with_missing_identity(self):
        path = os.path.join(self.workdir, "identities.txt")
        with open(path, "w") as f:
            f.write("%s\nghost@contoso.com\n%s\n" % (SCANNER, MFP))
        code, out, err = self.cli("set-casmailbox", "-FromFile", path, "-SmtpClientAuthenticationDisabled", "$true",
                                  expect=1)
        self.assertIn("ghost@contoso.com", err)
        self.assertIs(self.disabled_in_file(SCANNER), True, "the identities that exist must be changed")
        self.assertIs(self.disabled_in_file(MFP), True, "the identities that exist must be changed")
        self.assertIs(self.disabled_in_file(PRINTER), True)
        self.assertIsNone(self.disabled_in_file(FAX), "an identity not in the list changed")
        self.assertIsNone(self.mailbox("ghost@contoso.com"), "a missing identity must not be created")
        self.assert_check_config_ok()

    def test_bulk_from_stdin(self):
        stdin = ("%s\n%s\n" % (FAX, PRINTER)).encode()
        self.cli("set-casmailbox", "--from-file", "-", "--smtp-client-authentication-disabled", "false", stdin=stdin)
        self.assertIs(self.disabled_in_file(FAX), False)
        self.assertIs(self.disabled_in_file(PRINTER), False)
        self.assertIsNone(self.disabled_in_file(MFP))
        self.assertIs(self.disabled_in_file(SCANNER), False)
        # With a missing one: the others are changed, exit 1, the missing one named.
        stdin = ("nobody@fabrikam.com\n%s\n" % MFP).encode()
        code, out, err = self.cli("set-casmailbox", "--from-file", "-", "-SmtpClientAuthenticationDisabled", "$false",
                                  stdin=stdin, expect=1)
        self.assertIn("nobody@fabrikam.com", err)
        self.assertIs(self.disabled_in_file(MFP), False)
        self.assertEqual([e["SmtpClientAuthenticationDisabled"] for e in self.cas_json()], [False] * 4)


class RelayAccountTest(PolicyCli):
    def relay_account_identities(self, spelling="--json"):
        _, out, _ = self.cli("get-relayaccount", spelling)
        data = json.loads(out)
        self.assertIsInstance(data, list, out)
        return [v for entry in data for k, v in entry.items() if k.lower() == "identity"]

    def test_relayaccount_lifecycle_both_spellings(self):
        a, b = "new-a@contoso.com", "new-b@contoso.com"
        code, out, err = self.cli("new-relayaccount", "-Identity", a, "-PasswordStdin",
                                  "-AllowedSenders", "%s,*@fabrikam.com" % a, "-AllowedRecipientDomains", "contoso.com",
                                  "-UpstreamMailbox", "other@contoso.com", "-AuthenticationPolicy", BLOCK,
                                  stdin=(NEW_PASSWORD + "\n").encode())
        self.assertNotIn(NEW_PASSWORD, out + err, "the password must not be echoed")
        m = self.mailbox(a)
        self.assertIsNotNone(m)
        self.assertEqual(crypt.crypt(NEW_PASSWORD, m["password_hash"]), m["password_hash"],
                         "the stored hash does not verify the password given on stdin")
        self.assertEqual(m.get("allowed_senders"), [a, "*@fabrikam.com"])
        self.assertEqual(m.get("allowed_recipient_domains"), ["contoso.com"])
        self.assertEqual(m.get("upstream_mailbox"), "other@contoso.com")
        self.assertEqual(m.get("authentication_policy"), BLOCK)
        self.assertNotIn(NEW_PASSWORD, self.policy_bytes().decode())

        self.cli("new-relayaccount", "--identity", b, "--password-stdin", "--allowed-senders", b,
                 stdin=(NEW_PASSWORD + "-b\n").encode())
        m = self.mailbox(b)
        self.assertIsNotNone(m)
        self.assertEqual(crypt.crypt(NEW_PASSWORD + "-b", m["password_hash"]), m["password_hash"])
        self.assertEqual(self.relay_account_identities(), ALL + [a, b])
        self.assertEqual(self.relay_account_identities("-Json"), ALL + [a, b])
        _, out, _ = self.cli("get-relayaccount")
        for identity in ALL + [a, b]:
            self.assertIn(identity, out)

        # A second account with the same identity (any case) is refused.
        self.assert_refused_unchanged("new-relayaccount", "-Identity", a.upper(), "-PasswordStdin",
                                      stdin=b"Other-Passw0rd!\n")

        self.cli("set-relayaccount", "-Identity", a, "-MaxMessagesPerMinute", "5", "-MaxRecipientsPerDay", "100",
                 "-MaxRecipientsPerMessage", "3")
        m = self.mailbox(a)
        self.assertEqual((m.get("max_messages_per_minute"), m.get("max_recipients_per_day"),
                          m.get("max_recipients_per_message")), (5, 100, 3))
        self.cli("set-relayaccount", "--identity", a, "--allowed-recipient-domains", "$null",
                 "--allowed-senders", "*@contoso.com", "--authentication-policy", "$null",
                 "--max-messages-per-minute", "$null")
        m = self.mailbox(a)
        self.assertFalse(m.get("allowed_recipient_domains"), m)
        self.assertEqual(m.get("allowed_senders"), ["*@contoso.com"])
        self.assertFalse(m.get("authentication_policy"), m)
        self.assertNotIn("max_messages_per_minute", m)
        self.assertEqual(m.get("max_recipients_per_day"), 100, "an option not given must not change")
        self.assertEqual(crypt.crypt(NEW_PASSWORD, m["password_hash"]), m["password_hash"],
                         "set-relayaccount without a password option changed the password")

        self.cli("remove-relayaccount", "-Identity", a)
        self.assertIsNone(self.mailbox(a))
        self.cli("remove-relayaccount", "--identity", b)
        self.assertIsNone(self.mailbox(b))
        self.assertEqual(self.relay_account_identities(), ALL)
        self.assert_refused_unchanged("remove-relayaccount", "-Identity", a, expect_code=1)
        self.assert_check_config_ok()

    def test_generate_password_prints_a_working_password(self):
        _, out, err = self.cli("new-relayaccount", "--identity", "gen@contoso.com", "--generate-password")
        password = harness.generated_password(out)
        self.assertGreaterEqual(len(password), 16, out)
        m = self.mailbox("gen@contoso.com")
        self.assertEqual(crypt.crypt(password, m["password_hash"]), m["password_hash"])
        self.assertNotIn(password, err)
        self.assertNotIn(password, self.policy_bytes().decode())
        _, out2, _ = self.cli("new-relayaccount", "-Identity", "gen2@contoso.com", "-GeneratePassword")
        self.assertNotEqual(harness.generated_password(out2), password, "generated passwords must differ")

    def test_password_option_needed(self):
        self.assert_refused_unchanged("new-relayaccount", "-Identity", "nopass@contoso.com")


class AuthenticationPolicyTest(PolicyCli):
    def policies(self):
        return {p["name"]: p.get("allow_basic_auth_smtp", False) for p in self.policy().get("authentication_policy", [])}

    def test_authenticationpolicy_both_spellings(self):
        self.cli("new-authenticationpolicy", "-Name", "Allow Basic", "-AllowBasicAuthSmtp", "$true")
        self.cli("new-authenticationpolicy", "--name", "Second")
        self.assertEqual(self.policies(), {BLOCK: False, "Allow Basic": True, "Second": False})
        self.cli("set-authenticationpolicy", "-Identity", "Second", "-AllowBasicAuthSmtp:$true")
        self.cli("set-authenticationpolicy", "--identity", "Allow Basic", "--allow-basic-auth-smtp", "false")
        self.assertEqual(self.policies(), {BLOCK: False, "Allow Basic": False, "Second": True})
        _, out, _ = self.cli("get-authenticationpolicy")
        for name in (BLOCK, "Allow Basic", "Second"):
            self.assertIn(name, out)
        self.assertRegex(out, r"(?m)^AllowBasicAuthSmtp\s*: True\s*$")
        self.assert_refused_unchanged("new-authenticationpolicy", "-Name", "second")  # names are case-insensitive
        self.cli("remove-authenticationpolicy", "-Identity", "Second")
        self.cli("remove-authenticationpolicy", "--identity", "Allow Basic")
        self.assertEqual(self.policies(), {BLOCK: False})
        self.assert_refused_unchanged("remove-authenticationpolicy", "-Identity", "Second", expect_code=1)
        self.assert_check_config_ok()


class RelayBindingTest(PolicyCli):
    def bindings(self):
        return {b["network"]: (b["identity"], b.get("listeners")) for b in self.policy().get("binding", [])}

    def test_relaybinding_both_spellings(self):
        self.cli("new-relaybinding", "-Network", "10.1.20.0/24", "-Identity", PRINTER)
        self.cli("new-relaybinding", "--network", "2001:db8::/48", "--identity", SCANNER,
                 "--listeners", "submission,submissions")
        self.assertEqual(self.bindings(), {"10.1.20.0/24": (PRINTER, None),
                                           "2001:db8::/48": (SCANNER, ["submission", "submissions"])})
        _, out, _ = self.cli("get-relaybinding")
        for text in ("10.1.20.0/24", "2001:db8::/48", PRINTER, SCANNER):
            self.assertIn(text, out)
        self.assert_refused_unchanged("new-relaybinding", "-Network", "10.1.20.0/33", "-Identity", PRINTER)
        self.assert_refused_unchanged("new-relaybinding", "-Network", "10.1.20.0/24", "-Identity", SCANNER)  # taken
        self.cli("remove-relaybinding", "-Network", "10.1.20.0/24")
        self.assertEqual(list(self.bindings()), ["2001:db8::/48"])
        self.cli("remove-relaybinding", "--network", "2001:db8::/48")
        self.assertEqual(self.bindings(), {})
        self.assert_refused_unchanged("remove-relaybinding", "-Network", "192.0.2.0/24", expect_code=1)
        self.assert_check_config_ok()


class RefusedEditTest(PolicyCli):
    def test_edits_that_would_make_the_file_invalid(self):
        cases = [
            ["new-relaybinding", "-Network", "192.0.2.7", "-Identity", "nobody@contoso.com"],
            ["remove-authenticationpolicy", "-Identity", BLOCK],            # the printer uses it
            ["set-organizationconfig", "-DefaultAuthenticationPolicy", "No Such Policy"],
            ["set-relayaccount", "-Identity", FAX, "--authentication-policy", "No Such Policy"],
            ["set-relayaccount", "-Identity", FAX, "--allowed-senders", "not an address"],
            ["new-relayaccount", "-Identity", "not an address", "--generate-password"],
        ]
        for args in cases:
            with self.subTest(args=args):
                self.assert_refused_unchanged(*args)
        self.assert_check_config_ok()

    def test_edit_of_an_invalid_file_is_refused(self):
        with open(self.relay.policy_path, "a") as f:
            f.write("\n[[mailbox]]\nidentity = \"broken@contoso.com\"\nsmtp_client_authentication_disabled = \"no\"\n")
        _, err = self.assert_refused_unchanged("set-casmailbox", "-Identity", FAX, "-SmtpClientAuthenticationDisabled",
                                               "$true")
        self.assertIn("smtp_client_authentication_disabled", err)


class ExplainAndCheckTest(PolicyCli):
    def explain(self, *args):
        _, out, err = self.cli("explain", *args)
        lines = [l.strip() for l in out.splitlines()]  # the steps may be indented under a heading
        effective = [i for i, l in enumerate(lines) if l.startswith("Effective:")]
        self.assertEqual(len(effective), 1, out)
        self.assertGreater(effective[0], 0, "the decision steps come before the Effective: line:\n" + out)
        return out, lines[effective[0]]

    def test_explain(self):
        out, effective = self.explain(SCANNER)
        self.assertRegex(effective, r"^Effective: enabled")
        self.assertIn("Mailbox: SmtpClientAuthenticationDisabled = False", out)
        out, effective = self.explain(PRINTER)
        self.assertRegex(effective, r"^Effective: disabled")
        self.assertIn(BLOCK, out)
        out, effective = self.explain(FAX)
        self.assertRegex(effective, r"^Effective: disabled")
        self.assertIn("Organization: SmtpClientAuthenticationDisabled = True", out)

        allowed, _ = self.explain(SCANNER, "--from", "anyone@contoso.com")
        refused, _ = self.explain(SCANNER, "--from", "ceo@fabrikam.com")
        self.assertIn("ceo@fabrikam.com", refused)
        self.assertRegex(refused.lower(), r"not allowed|not permitted|denied|refused|no\b|false")
        self.assertNotEqual(allowed.replace("anyone@contoso.com", "X"), refused.replace("ceo@fabrikam.com", "X"),
                            "explain must say whether the sender is allowed")
        refused_ps, _ = self.explain(SCANNER, "-From", "ceo@fabrikam.com")
        self.assertEqual(refused_ps, refused, "-From and --from must mean the same")
        # --client shows whether a binding applies to that address.
        self.cli("new-relaybinding", "-Network", "127.0.0.2", "-Identity", SCANNER)
        bound, _ = self.explain(SCANNER, "--client", "127.0.0.2")
        unbound, _ = self.explain(SCANNER, "-Client", "10.9.9.9")
        self.assertRegex(bound, r"(?im)^.*binding.*127\.0\.0\.2")
        self.assertNotRegex(unbound, r"(?im)^.*binding 127\.0\.0\.2")
        code, out, err = self.cli("explain", "ghost@contoso.com", expect=1)
        self.assertIn("ghost@contoso.com", out + err)

    def test_check_config_validates_policy(self):
        self.assert_check_config_ok()
        with open(self.relay.policy_path, "a") as f:
            f.write("\n[[binding]]\nnetwork = \"10.0.0.0/99\"\nidentity = \"%s\"\n" % SCANNER)
        code, out, err = self.cli("check-config", expect=1)
        lines = (out + err).splitlines()
        pattern = r"^%s: binding\[\d+\]\.network: \S" % re.escape(self.relay.policy_path)
        self.assertTrue(any(re.match(pattern, l) for l in lines), "no line matching %r in:\n%s" % (pattern, out + err))



class AuditTrailTest(PolicyCli):
    """Every change an admin verb makes is appended to audit.log in the spool
    directory (who, the cmdlet that makes the same change, the object before
    and after), and search-adminauditlog shows it, like Search-AdminAuditLog.
    No password or hash is ever in it."""

    def audit_path(self):
        return os.path.join(self.relay.spool_dir, "audit.log")

    def audit_entries(self):
        with open(self.audit_path()) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_each_change_is_recorded_with_its_cmdlet(self):
        self.cli("set-casmailbox", "-Identity", FAX, "-SmtpClientAuthenticationDisabled", "$false")
        self.cli("set-transportconfig", "--smtp-client-authentication-disabled", "false")
        self.cli("new-relayaccount", "-Identity", "new@contoso.com", "--password-stdin",
                 "--allowed-senders", "new@contoso.com,*@contoso.com", stdin=(NEW_PASSWORD + "\n").encode())
        self.cli("set-relayaccount", "-Identity", "new@contoso.com", "--password-stdin",
                 stdin=(NEW_PASSWORD + "2\n").encode())
        self.cli("new-relaybinding", "-Network", "10.1.20.0/24", "-Identity", "new@contoso.com")
        self.cli("remove-relaybinding", "-Network", "10.1.20.0/24")
        # Nothing changes: nothing is recorded.
        self.cli("set-casmailbox", "-Identity", FAX, "-SmtpClientAuthenticationDisabled", "$false")

        entries = self.audit_entries()
        self.assertEqual([e["what"] for e in entries], [
            "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false" % FAX,
            "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
            "New-RelayAccount -Identity new@contoso.com -PasswordStdin -AllowedSenders new@contoso.com,*@contoso.com",
            "Set-RelayAccount -Identity new@contoso.com -PasswordStdin",
            "New-RelayBinding -Network 10.1.20.0/24 -Identity new@contoso.com",
            "Remove-RelayBinding -Network 10.1.20.0/24",
        ])
        fax = entries[0]
        self.assertEqual((fax["kind"], fax["object"]), ("Mailbox", FAX))
        self.assertIsNone(fax["before"]["SmtpClientAuthenticationDisabled"])
        self.assertIs(fax["after"]["SmtpClientAuthenticationDisabled"], False)
        self.assertEqual(entries[1]["after"], {"SmtpClientAuthenticationDisabled": False})
        self.assertIsNone(entries[2]["before"])
        self.assertIs(entries[2]["after"]["HasPassword"], True)
        self.assertIs(entries[3]["after"]["PasswordChanged"], True)
        self.assertIsNone(entries[5]["after"])
        import pwd
        me = pwd.getpwuid(os.getuid()).pw_name
        for e in entries:
            self.assertIn(e["who"], (me, os.environ.get("SUDO_USER", me) + " (sudo)"))
            self.assertGreater(e["time"], 1700000000)

        text = open(self.audit_path()).read()
        self.assertNotIn(NEW_PASSWORD, text)
        self.assertNotIn("$y$", text, "a hash in the audit log")
        self.assertNotIn("$6$", text, "a hash in the audit log")
        mode = os.stat(self.audit_path()).st_mode & 0o777
        self.assertEqual(mode & 0o007, 0, "the audit log is readable by others: %o" % mode)

    def test_search_adminauditlog_filters_and_shows(self):
        self.cli("set-casmailbox", "-Identity", FAX, "-SmtpClientAuthenticationDisabled", "$false")
        self.cli("set-casmailbox", "-Identity", MFP, "-SmtpClientAuthenticationDisabled", "$true")
        _, out, _ = self.cli("search-adminauditlog", "-Identity", MFP.upper())
        [block] = format_list_blocks(out)
        self.assertEqual(block["CmdletName"], "Set-CASMailbox")
        self.assertEqual(block["CmdletParameters"], "-Identity %s -SmtpClientAuthenticationDisabled $true" % MFP)
        self.assertEqual(block["ObjectModified"], MFP)
        self.assertEqual(block["ModifiedProperties"], "SmtpClientAuthenticationDisabled: null -> true")
        self.assertRegex(block["RunDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        _, out, _ = self.cli("search-adminauditlog", "--json")
        entries = json.loads(out)
        self.assertEqual([e["object"] for e in entries], [FAX, MFP])
        _, out, _ = self.cli("search-adminauditlog", "--since", "2999-01-01", "--json")
        self.assertEqual(json.loads(out), [])
        _, out, _ = self.cli("search-adminauditlog", "--since", "2000-01-01T00:00:00Z", "--json")
        self.assertEqual(len(json.loads(out)), 2)
        code, _, err = self.cli("search-adminauditlog", "--since", "yesterday", expect=2)
        self.assertIn("--since takes a UTC date or time", err)

    def test_bulk_changes_are_recorded_per_account(self):
        listing = os.path.join(self.workdir, "identities.txt")
        with open(listing, "w") as f:
            f.write("%s\n%s\n" % (FAX, MFP))
        self.cli("set-casmailbox", "--from-file", listing, "-SmtpClientAuthenticationDisabled", "$false")
        self.assertEqual([e["what"] for e in self.audit_entries()], [
            "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false" % FAX,
            "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false" % MFP,
        ])

    def test_a_change_that_cannot_be_recorded_is_not_made(self):
        # The spool directory is a file: audit.log cannot be opened.
        os.makedirs(os.path.dirname(self.relay.spool_dir), exist_ok=True)
        if os.path.isdir(self.relay.spool_dir):
            os.rmdir(self.relay.spool_dir)
        with open(self.relay.spool_dir, "w") as f:
            f.write("not a directory\n")
        before = self.policy_bytes()
        _, _, err = self.cli("set-casmailbox", "-Identity", FAX, "-SmtpClientAuthenticationDisabled", "$false",
                             expect=1)
        self.assertIn("audit log", err)
        self.assertEqual(self.policy_bytes(), before, "the policy changed without a record")
