// The admin verbs end to end through run_cli, on temporary config and
// policy files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/password.hpp"
#include "policy/policy.hpp"
#include "relay/cli/cli.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
namespace policy = subrelay::policy;

namespace {

struct result {
    int status;
    std::string out;
    std::string err;
};

constexpr const char* some_hash = "$y$j9T$abcdefghijklmnop$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

class admin : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-admin");
        config_ = (dir_ / "relay.toml").string();
        policy_ = (dir_ / "policy.toml").string();
        std::ofstream(config_) << "[server]\n"
                                  "submission = [\"127.0.0.1:2587\"]\n"
                                  "submissions = [\"127.0.0.1:2465\"]\n"
                                  "[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n"
                                  "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n"
                                  "mailbox = \"relay@contoso.com\"\n";
        policy::policy_file p;
        p.mailboxes.push_back(account("scanner@contoso.com", false));
        p.mailboxes.push_back(account("printer@contoso.com", std::nullopt));
        p.mailboxes.push_back(account("legacy@contoso.com", true));
        p.mailboxes.push_back(account("copier@contoso.com", std::nullopt));
        write_policy(p);
    }
    void TearDown() override { fs::remove_all(dir_); }

    static policy::mailbox account(std::string identity, std::optional<bool> disabled) {
        policy::mailbox m;
        m.identity = std::move(identity);
        m.password_hash = some_hash;
        m.smtp_client_authentication_disabled = disabled;
        return m;
    }

    void write_policy(const policy::policy_file& p) { std::ofstream(policy_) << policy::to_toml(p); }

    policy::policy_file read_policy() {
        auto loaded = policy::load_file(policy_);
        EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
        return loaded.policy;
    }

    std::string policy_text() {
        std::ifstream in(policy_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    const policy::mailbox* find(const policy::policy_file& p, const std::string& identity) {
        for (const auto& m : p.mailboxes)
            if (m.identity == identity) return &m;
        return nullptr;
    }

    std::optional<bool> disabled(const std::string& identity) {
        auto p = read_policy();
        const auto* m = find(p, identity);
        EXPECT_NE(m, nullptr) << identity;
        return m ? m->smtp_client_authentication_disabled : std::nullopt;
    }

    // Runs a verb with --config appended.
    result run(std::vector<std::string> args, const std::string& input = "") {
        args.push_back("--config");
        args.push_back(config_);
        std::istringstream in(input);
        std::ostringstream out, err;
        int status = subrelay::relay::run_cli(args, in, out, err);
        return {status, out.str(), err.str()};
    }

    // The Identity values of a Format-List output, in order.
    static std::vector<std::string> identities(const std::string& out) {
        std::vector<std::string> ids;
        std::istringstream lines(out);
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind("Identity ", 0) == 0) ids.push_back(line.substr(line.find(": ") + 2));
        }
        return ids;
    }

    fs::path dir_;
    std::string config_;
    std::string policy_;
};

using ids = std::vector<std::string>;

// ---- help, usage, config errors ----------------------------------------------

TEST_F(admin, every_verb_has_help_and_the_main_usage_lists_them) {
    auto main = run({"--help"});
    for (const char* verb :
         {"get-transportconfig", "set-transportconfig", "get-organizationconfig", "set-organizationconfig",
          "get-casmailbox", "set-casmailbox", "new-relayaccount", "set-relayaccount", "remove-relayaccount",
          "get-relayaccount", "new-authenticationpolicy", "set-authenticationpolicy", "remove-authenticationpolicy",
          "get-authenticationpolicy", "new-relaybinding", "remove-relaybinding", "get-relaybinding", "explain"}) {
        auto r = run({verb, "--help"});
        EXPECT_EQ(r.status, 0) << verb;
        EXPECT_EQ(r.out.rfind(std::string("usage: subrelay ") + verb, 0), 0u) << verb;
        EXPECT_NE(main.out.find(std::string("  ") + verb + " "), std::string::npos) << verb;
    }
}

TEST_F(admin, unknown_options_exit_2_with_usage) {
    auto r = run({"get-casmailbox", "--colour", "blue"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("subrelay get-casmailbox: unknown option '--colour'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("usage: subrelay get-casmailbox"), std::string::npos) << r.err;
    EXPECT_EQ(run({"set-transportconfig", "stray"}).status, 2);
}

TEST_F(admin, config_errors_are_reported_as_file_key_what) {
    std::ofstream(config_) << "[upstream]\nkind = \"directory\"\ncolour = 1\n";
    auto r = run({"get-casmailbox"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(config_ + ": upstream.colour: "), std::string::npos) << r.err;
}

TEST_F(admin, an_unreadable_policy_file_is_an_error) {
    fs::remove(policy_);
    auto r = run({"get-casmailbox"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(policy_), std::string::npos) << r.err;
}

// ---- transport and organization ---------------------------------------------

TEST_F(admin, transport_config_get_and_set_in_both_spellings) {
    auto g = run({"get-transportconfig"});
    ASSERT_EQ(g.status, 0) << g.err;
    EXPECT_EQ(g.out, "SmtpClientAuthenticationDisabled : True\n");

    auto s = run({"set-transportconfig", "-SmtpClientAuthenticationDisabled", "$false"});
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_EQ(s.out, "");
    EXPECT_FALSE(read_policy().org.smtp_client_authentication_disabled);
    EXPECT_EQ(run({"Get-TransportConfig"}).out, "SmtpClientAuthenticationDisabled : False\n");

    ASSERT_EQ(run({"set-transportconfig", "--smtp-client-authentication-disabled=TRUE"}).status, 0);
    EXPECT_TRUE(read_policy().org.smtp_client_authentication_disabled);

    // The organization value cannot be $null.
    auto n = run({"set-transportconfig", "-SmtpClientAuthenticationDisabled", "$null"});
    EXPECT_EQ(n.status, 2);
    EXPECT_TRUE(read_policy().org.smtp_client_authentication_disabled);
    // Nothing to set.
    EXPECT_EQ(run({"set-transportconfig"}).status, 1);
}

TEST_F(admin, organization_config) {
    auto g = run({"get-organizationconfig"});
    ASSERT_EQ(g.status, 0) << g.err;
    EXPECT_NE(g.out.find("SecurityDefaults            : False\n"), std::string::npos) << g.out;
    EXPECT_NE(g.out.find("MaxMessagesPerMinute        : 0\n"), std::string::npos) << g.out;

    auto missing = run({"set-organizationconfig", "-DefaultAuthenticationPolicy", "Block Basic Auth"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("object 'Block Basic Auth' couldn't be found"), std::string::npos) << missing.err;

    ASSERT_EQ(run({"new-authenticationpolicy", "-Name", "Block Basic Auth"}).status, 0);
    auto s =
        run({"set-organizationconfig", "-DefaultAuthenticationPolicy", "block basic auth", "-SecurityDefaults", "$true",
             "-MaxMessagesPerMinute", "10", "--max-recipients-per-day=unlimited", "-MaxRecipientsPerMessage:100"});
    ASSERT_EQ(s.status, 0) << s.err;
    auto org = read_policy().org;
    EXPECT_EQ(org.default_authentication_policy, "Block Basic Auth");  // as the policy spells it
    EXPECT_TRUE(org.security_defaults);
    EXPECT_EQ(org.max_messages_per_minute, 10u);
    EXPECT_EQ(org.max_recipients_per_day, 0u);
    EXPECT_EQ(org.max_recipients_per_message, 100u);

    auto j = run({"get-organizationconfig", "--json"});
    auto v = boost::json::parse(j.out).as_object();
    EXPECT_EQ(v.at("DefaultAuthenticationPolicy").as_string(), "Block Basic Auth");
    EXPECT_EQ(v.at("SecurityDefaults").as_bool(), true);

    ASSERT_EQ(run({"set-organizationconfig", "-DefaultAuthenticationPolicy", "$null"}).status, 0);
    EXPECT_EQ(read_policy().org.default_authentication_policy, "");
}

// ---- CAS mailbox -------------------------------------------------------------

TEST_F(admin, get_casmailbox_formats_like_powershell) {
    auto one = run({"get-casmailbox", "-Identity", "scanner@contoso.com"});
    ASSERT_EQ(one.status, 0) << one.err;
    EXPECT_EQ(one.out,
              "Identity                         : scanner@contoso.com\n"
              "SmtpClientAuthenticationDisabled : False\n");

    auto all = run({"get-casmailbox"});
    ASSERT_EQ(all.status, 0) << all.err;
    EXPECT_EQ(all.out,
              "Identity                         : scanner@contoso.com\n"
              "SmtpClientAuthenticationDisabled : False\n"
              "\n"
              "Identity                         : printer@contoso.com\n"
              "SmtpClientAuthenticationDisabled : \n"
              "\n"
              "Identity                         : legacy@contoso.com\n"
              "SmtpClientAuthenticationDisabled : True\n"
              "\n"
              "Identity                         : copier@contoso.com\n"
              "SmtpClientAuthenticationDisabled : \n");

    // Identity is also the positional parameter, and compares case-insensitively.
    EXPECT_EQ(identities(run({"get-casmailbox", "LEGACY@contoso.com"}).out), ids{"legacy@contoso.com"});
}

TEST_F(admin, get_casmailbox_unknown_identity) {
    auto r = run({"get-casmailbox", "-Identity", "nobody@contoso.com"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("get-casmailbox: The operation couldn't be performed because object 'nobody@contoso.com' "
                         "couldn't be found."),
              std::string::npos)
        << r.err;
}

TEST_F(admin, get_casmailbox_filters) {
    auto list = [&](const std::string& filter) {
        auto r = run({"get-casmailbox", "-ResultSize", "unlimited", "-Filter", filter});
        EXPECT_EQ(r.status, 0) << filter << ": " << r.err;
        return identities(r.out);
    };
    EXPECT_EQ(list("SmtpClientAuthenticationDisabled -eq $true"), ids{"legacy@contoso.com"});
    EXPECT_EQ(list("SmtpClientAuthenticationDisabled -eq $false"), ids{"scanner@contoso.com"});
    EXPECT_EQ(list("SmtpClientAuthenticationDisabled -eq $null"), (ids{"printer@contoso.com", "copier@contoso.com"}));
    EXPECT_EQ(list("SmtpClientAuthenticationDisabled -ne $true"),
              (ids{"scanner@contoso.com", "printer@contoso.com", "copier@contoso.com"}));
    EXPECT_EQ(list("SmtpClientAuthenticationDisabled -ne $false"),
              (ids{"printer@contoso.com", "legacy@contoso.com", "copier@contoso.com"}));
    EXPECT_EQ(list("SmtpClientAuthenticationDisabled -ne $null"), (ids{"scanner@contoso.com", "legacy@contoso.com"}));
    EXPECT_EQ(list("{SmtpClientAuthenticationDisabled -eq $true}"), ids{"legacy@contoso.com"});
    EXPECT_EQ(list("{ SmtpClientAuthenticationDisabled -eq $true }"), ids{"legacy@contoso.com"});
    EXPECT_EQ(list("\"SmtpClientAuthenticationDisabled -eq $true\""), ids{"legacy@contoso.com"});

    // "... -eq $true" in double quotes in a POSIX shell loses $true.
    auto lost = run({"get-casmailbox", "-Filter", "SmtpClientAuthenticationDisabled -eq "});
    EXPECT_EQ(lost.status, 1);
    EXPECT_NE(lost.err.find("the value after -eq is missing"), std::string::npos) << lost.err;
    EXPECT_EQ(run({"get-casmailbox", "-Filter", "Identity -eq $true"}).status, 1);
}

TEST_F(admin, get_casmailbox_result_size) {
    EXPECT_EQ(identities(run({"get-casmailbox", "-ResultSize", "2"}).out),
              (ids{"scanner@contoso.com", "printer@contoso.com"}));
    EXPECT_EQ(
        identities(
            run({"get-casmailbox", "--result-size=1", "-Filter", "SmtpClientAuthenticationDisabled -eq $null"}).out),
        ids{"printer@contoso.com"});
    EXPECT_EQ(run({"get-casmailbox", "-ResultSize", "0"}).status, 1);
    EXPECT_EQ(run({"get-casmailbox", "-ResultSize", "many"}).status, 1);
}

TEST_F(admin, get_casmailbox_json_parses_back) {
    auto r = run({"get-casmailbox", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto v = boost::json::parse(r.out);
    const auto& a = v.as_array();
    ASSERT_EQ(a.size(), 4u);
    EXPECT_EQ(a[0].at("Identity").as_string(), "scanner@contoso.com");
    EXPECT_EQ(a[0].at("SmtpClientAuthenticationDisabled").as_bool(), false);
    EXPECT_TRUE(a[1].at("SmtpClientAuthenticationDisabled").is_null());
    EXPECT_EQ(a[2].at("SmtpClientAuthenticationDisabled").as_bool(), true);

    auto f = run({"get-casmailbox", "-Filter", "SmtpClientAuthenticationDisabled -eq $true", "-Json"});
    EXPECT_EQ(boost::json::parse(f.out).as_array().size(), 1u);
    auto none = run({"get-casmailbox", "-Filter", "SmtpClientAuthenticationDisabled -eq $true", "--json", "-Identity",
                     "scanner@contoso.com"});
    EXPECT_EQ(none.out, "[]\n");
}

TEST_F(admin, set_casmailbox_as_in_microsofts_article) {
    auto r = run({"Set-CASMailbox", "-Identity", "printer@contoso.com", "-SmtpClientAuthenticationDisabled", "$false"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(disabled("printer@contoso.com"), std::optional<bool>(false));

    ASSERT_EQ(run({"set-casmailbox", "-identity", "PRINTER@CONTOSO.COM", "-smtpclientauthenticationdisabled", "$true"})
                  .status,
              0);
    EXPECT_EQ(disabled("printer@contoso.com"), std::optional<bool>(true));

    ASSERT_EQ(run({"set-casmailbox", "-Identity", "printer@contoso.com", "-SmtpClientAuthenticationDisabled", "$null"})
                  .status,
              0);
    EXPECT_EQ(disabled("printer@contoso.com"), std::nullopt);
}

TEST_F(admin, set_casmailbox_gnu_spelling_and_colon_form) {
    ASSERT_EQ(
        run({"set-casmailbox", "--identity", "copier@contoso.com", "--smtp-client-authentication-disabled", "false"})
            .status,
        0);
    EXPECT_EQ(disabled("copier@contoso.com"), std::optional<bool>(false));
    ASSERT_EQ(
        run({"set-casmailbox", "--identity=copier@contoso.com", "--smtp-client-authentication-disabled=NULL"}).status,
        0);
    EXPECT_EQ(disabled("copier@contoso.com"), std::nullopt);
    ASSERT_EQ(
        run({"set-casmailbox", "-Identity:copier@contoso.com", "-SmtpClientAuthenticationDisabled:$false"}).status, 0);
    EXPECT_EQ(disabled("copier@contoso.com"), std::optional<bool>(false));
    ASSERT_EQ(run({"set-casmailbox", "copier@contoso.com", "-SmtpClientAuthenticationDisabled:$true"}).status, 0);
    EXPECT_EQ(disabled("copier@contoso.com"), std::optional<bool>(true));
}

TEST_F(admin, set_casmailbox_with_an_expanded_away_false_is_refused_clearly) {
    const auto before = policy_text();
    // `-SmtpClientAuthenticationDisabled $false` unquoted: the shell drops $false.
    auto r = run({"set-casmailbox", "-Identity", "printer@contoso.com", "-SmtpClientAuthenticationDisabled"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("subrelay set-casmailbox: -SmtpClientAuthenticationDisabled needs a value: $true, $false or "
                         "$null (quote it: '$false', or write false)"),
              std::string::npos)
        << r.err;
    auto r2 = run({"set-casmailbox", "-SmtpClientAuthenticationDisabled", "-Identity", "printer@contoso.com"});
    EXPECT_EQ(r2.status, 2);
    EXPECT_NE(r2.err.find("-SmtpClientAuthenticationDisabled needs a value"), std::string::npos) << r2.err;
    auto r3 = run({"set-transportconfig", "-SmtpClientAuthenticationDisabled"});
    EXPECT_EQ(r3.status, 2);
    EXPECT_NE(r3.err.find("subrelay set-transportconfig: -SmtpClientAuthenticationDisabled needs a value: $true or "
                          "$false (quote it: '$false', or write false)"),
              std::string::npos)
        << r3.err;
    EXPECT_EQ(policy_text(), before);
}

TEST_F(admin, set_casmailbox_unknown_identity_changes_nothing) {
    const auto before = policy_text();
    auto r = run({"set-casmailbox", "-Identity", "nobody@contoso.com", "-SmtpClientAuthenticationDisabled", "$false"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found."),
              std::string::npos)
        << r.err;
    EXPECT_EQ(policy_text(), before);
    EXPECT_EQ(run({"set-casmailbox", "-Identity", "printer@contoso.com"}).status, 1);  // no setting
}

TEST_F(admin, set_casmailbox_from_a_file_with_a_missing_identity) {
    const auto list = (dir_ / "devices.txt").string();
    std::ofstream(list) << "# devices moving to OAuth\n"
                           "  printer@contoso.com  \r\n"
                           "\n"
                           "nobody@contoso.com\n"
                           "Copier@Contoso.com\r\n";
    auto r = run({"set-casmailbox", "--from-file", list, "-SmtpClientAuthenticationDisabled", "$false"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found."),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("changed 2, not found 1"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("printer@contoso.com"), std::string::npos) << r.err;
    EXPECT_EQ(disabled("printer@contoso.com"), std::optional<bool>(false));
    EXPECT_EQ(disabled("copier@contoso.com"), std::optional<bool>(false));
    EXPECT_EQ(disabled("legacy@contoso.com"), std::optional<bool>(true));  // not listed: untouched
}

TEST_F(admin, set_casmailbox_from_standard_input) {
    auto r = run({"set-casmailbox", "--from-file=-", "--smtp-client-authentication-disabled", "true"},
                 "scanner@contoso.com\nprinter@contoso.com\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(disabled("scanner@contoso.com"), std::optional<bool>(true));
    EXPECT_EQ(disabled("printer@contoso.com"), std::optional<bool>(true));
    EXPECT_EQ(
        run({"set-casmailbox", "--from-file", "-", "-SmtpClientAuthenticationDisabled", "$true"}, "# none\n").status,
        1);
    EXPECT_EQ(
        run({"set-casmailbox", "--from-file", (dir_ / "absent").string(), "-SmtpClientAuthenticationDisabled", "$true"})
            .status,
        1);
    // -Identity and --from-file together.
    EXPECT_EQ(run({"set-casmailbox", "-Identity", "scanner@contoso.com", "--from-file", "-",
                   "-SmtpClientAuthenticationDisabled", "$true"})
                  .status,
              1);
}

// ---- relay accounts ----------------------------------------------------------

TEST_F(admin, new_relayaccount_with_a_generated_password) {
    auto r = run({"new-relayaccount", "-Identity", "mfp@contoso.com", "--generate-password"});
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_FALSE(r.out.empty());
    ASSERT_EQ(r.out.back(), '\n');
    const auto password = r.out.substr(0, r.out.size() - 1);
    EXPECT_GE(password.size(), 20u);
    EXPECT_EQ(password.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    auto p = read_policy();
    const auto* m = find(p, "mfp@contoso.com");
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(subrelay::auth::verify_password(password, m->password_hash));
    EXPECT_EQ(r.err.find(password), std::string::npos);
    EXPECT_EQ(policy_text().find(password), std::string::npos);
    EXPECT_FALSE(m->smtp_client_authentication_disabled.has_value());

    auto dup = run({"new-relayaccount", "-Identity", "MFP@contoso.com", "--generate-password"});
    EXPECT_EQ(dup.status, 1);
    EXPECT_EQ(dup.out, "");  // no password printed for an account that was not created
    EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;
}

TEST_F(admin, new_relayaccount_with_a_password_on_stdin_and_settings) {
    ASSERT_EQ(run({"new-authenticationpolicy", "-Name", "Allow SMTP", "-AllowBasicAuthSmtp", "$true"}).status, 0);
    auto r = run({"new-relayaccount", "--identity", "fax@contoso.com", "--password-stdin",
                  "--smtp-client-authentication-disabled", "false", "--allowed-senders",
                  "fax@contoso.com,*@fax.contoso.com", "--allowed-recipient-domains", "contoso.com",
                  "--upstream-mailbox", "noreply@contoso.com", "--authentication-policy", "allow smtp"},
                 "s3cret pass\r\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    auto p = read_policy();
    const auto* m = find(p, "fax@contoso.com");
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(subrelay::auth::verify_password("s3cret pass", m->password_hash));
    EXPECT_EQ(m->smtp_client_authentication_disabled, std::optional<bool>(false));
    EXPECT_EQ(m->allowed_senders, (std::vector<std::string>{"fax@contoso.com", "*@fax.contoso.com"}));
    EXPECT_EQ(m->allowed_recipient_domains, std::vector<std::string>{"contoso.com"});
    EXPECT_EQ(m->upstream_mailbox, "noreply@contoso.com");
    EXPECT_EQ(m->authentication_policy, "Allow SMTP");
}

TEST_F(admin, new_relayaccount_errors) {
    const auto before = policy_text();
    EXPECT_EQ(run({"new-relayaccount", "-Identity", "a@contoso.com"}).status, 1);  // no password option
    EXPECT_EQ(run({"new-relayaccount", "-Identity", "a@contoso.com", "--password-stdin"}, "").status, 1);
    EXPECT_EQ(run({"new-relayaccount", "-Identity", "a@contoso.com", "--password-stdin", "--generate-password"}).status,
              1);
    EXPECT_EQ(run({"new-relayaccount", "-Identity", "not an address", "--generate-password"}).status, 1);
    auto ap = run(
        {"new-relayaccount", "-Identity", "a@contoso.com", "--generate-password", "--authentication-policy", "Nope"});
    EXPECT_EQ(ap.status, 1);
    EXPECT_EQ(ap.out, "");
    EXPECT_NE(ap.err.find("object 'Nope' couldn't be found"), std::string::npos) << ap.err;
    EXPECT_EQ(policy_text(), before);
}

TEST_F(admin, set_relayaccount_sets_and_clears) {
    auto r = run({"set-relayaccount", "-Identity", "scanner@contoso.com", "--max-messages-per-minute", "5",
                  "--max-recipients-per-day", "0", "-MaxRecipientsPerMessage", "20", "--allowed-senders",
                  "scanner@contoso.com,alerts@contoso.com"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto p = read_policy();
    const auto* m = find(p, "scanner@contoso.com");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->max_messages_per_minute, std::optional<std::uint32_t>(5));
    EXPECT_EQ(m->max_recipients_per_day, std::optional<std::uint32_t>(0));
    EXPECT_EQ(m->max_recipients_per_message, std::optional<std::uint32_t>(20));
    EXPECT_EQ(m->allowed_senders.size(), 2u);
    EXPECT_EQ(m->password_hash, some_hash);  // untouched without a password option

    ASSERT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com", "--max-messages-per-minute", "$null",
                   "-MaxRecipientsPerDay:null"})
                  .status,
              0);
    p = read_policy();
    m = find(p, "scanner@contoso.com");
    EXPECT_FALSE(m->max_messages_per_minute.has_value());
    EXPECT_FALSE(m->max_recipients_per_day.has_value());
    EXPECT_EQ(m->max_recipients_per_message, std::optional<std::uint32_t>(20));

    auto pw = run({"set-relayaccount", "-Identity", "scanner@contoso.com", "--password-stdin"}, "new one\n");
    ASSERT_EQ(pw.status, 0) << pw.err;
    p = read_policy();
    EXPECT_TRUE(subrelay::auth::verify_password("new one", find(p, "scanner@contoso.com")->password_hash));

    EXPECT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com"}).status, 1);  // nothing to change
    auto missing = run({"set-relayaccount", "-Identity", "nobody@contoso.com", "--max-recipients-per-day", "1"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("couldn't be found"), std::string::npos);
}

TEST_F(admin, get_relayaccount_shows_settings_but_never_the_hash) {
    ASSERT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com", "--max-messages-per-minute", "5",
                   "--allowed-senders", "scanner@contoso.com,*@scan.contoso.com"})
                  .status,
              0);
    auto r = run({"get-relayaccount", "-Identity", "scanner@contoso.com"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("Identity                         : scanner@contoso.com\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("PasswordSet                      : True\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("SmtpClientAuthenticationDisabled : False\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("AllowedSenders                   : {scanner@contoso.com, *@scan.contoso.com}\n"),
              std::string::npos)
        << r.out;
    // Empty in the file: the identity alone may be the sender.
    auto printer = run({"get-relayaccount", "printer@contoso.com"});
    EXPECT_NE(printer.out.find("AllowedSenders                   : {printer@contoso.com}\n"), std::string::npos)
        << printer.out;
    EXPECT_NE(r.out.find("MaxMessagesPerMinute             : 5\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("MaxRecipientsPerDay              : \n"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("$y$"), std::string::npos) << r.out;

    auto all = run({"get-relayaccount"});
    EXPECT_EQ(identities(all.out).size(), 4u);
    EXPECT_EQ(all.out.find("$y$"), std::string::npos);

    auto j = run({"get-relayaccount", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    EXPECT_EQ(j.out.find("$y$"), std::string::npos);
    const auto a = boost::json::parse(j.out).as_array();
    ASSERT_EQ(a.size(), 4u);
    EXPECT_EQ(a[0].at("PasswordSet").as_bool(), true);
    EXPECT_EQ(a[0].at("MaxMessagesPerMinute").as_int64(), 5);
    EXPECT_TRUE(a[0].at("MaxRecipientsPerDay").is_null());
    EXPECT_EQ(a[0].at("AllowedSenders").as_array().size(), 2u);
    EXPECT_TRUE(a[1].at("SmtpClientAuthenticationDisabled").is_null());
    EXPECT_FALSE(a[0].as_object().contains("PasswordHash"));

    EXPECT_EQ(run({"get-relayaccount", "-Identity", "nobody@contoso.com"}).status, 1);
}

TEST_F(admin, remove_relayaccount) {
    ASSERT_EQ(run({"remove-relayaccount", "-Identity", "Copier@contoso.com"}).status, 0);
    EXPECT_EQ(find(read_policy(), "copier@contoso.com"), nullptr);
    auto again = run({"remove-relayaccount", "-Identity", "copier@contoso.com"});
    EXPECT_EQ(again.status, 1);
    EXPECT_NE(again.err.find("couldn't be found"), std::string::npos);
}

TEST_F(admin, an_edit_the_policy_rejects_prints_its_errors_and_changes_nothing) {
    const auto before = policy_text();
    auto r = run({"set-relayaccount", "-Identity", "printer@contoso.com", "--allowed-senders", "not an address"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(policy_ + ": mailbox[1].allowed_senders[0]: "), std::string::npos) << r.err;
    EXPECT_EQ(policy_text(), before);
}

TEST_F(admin, creating_verbs_create_a_missing_policy_file) {
    fs::remove(policy_);
    EXPECT_EQ(
        run({"set-casmailbox", "-Identity", "a@contoso.com", "-SmtpClientAuthenticationDisabled", "$false"}).status, 1);
    EXPECT_FALSE(fs::exists(policy_));
    auto r = run({"new-relayaccount", "-Identity", "first@contoso.com", "--password-stdin"}, "pw\n");
    ASSERT_EQ(r.status, 0) << r.err;
    auto p = read_policy();
    ASSERT_EQ(p.mailboxes.size(), 1u);
    EXPECT_EQ(p.mailboxes[0].identity, "first@contoso.com");
    EXPECT_TRUE(p.org.smtp_client_authentication_disabled);
}

// ---- authentication policies -------------------------------------------------

TEST_F(admin, authentication_policies) {
    ASSERT_EQ(run({"new-authenticationpolicy", "-Name", "Block Basic Auth"}).status, 0);
    ASSERT_EQ(run({"New-AuthenticationPolicy", "Allow SMTP", "-AllowBasicAuthSmtp:$true"}).status, 0);
    auto p = read_policy();
    ASSERT_EQ(p.authentication_policies.size(), 2u);
    EXPECT_FALSE(p.authentication_policies[0].allow_basic_auth_smtp);  // Exchange's default
    EXPECT_TRUE(p.authentication_policies[1].allow_basic_auth_smtp);

    auto dup = run({"new-authenticationpolicy", "-Name", "block basic auth"});
    EXPECT_EQ(dup.status, 1);
    EXPECT_NE(dup.err.find("already exists"), std::string::npos);

    ASSERT_EQ(run({"set-authenticationpolicy", "-Identity", "Block Basic Auth", "-AllowBasicAuthSmtp", "true"}).status,
              0);
    EXPECT_TRUE(read_policy().authentication_policies[0].allow_basic_auth_smtp);
    EXPECT_EQ(run({"set-authenticationpolicy", "-Identity", "Nope", "-AllowBasicAuthSmtp", "true"}).status, 1);
    EXPECT_EQ(run({"set-authenticationpolicy", "-Identity", "Block Basic Auth", "-AllowBasicAuthSmtp"}).status, 2);

    auto g = run({"get-authenticationpolicy"});
    ASSERT_EQ(g.status, 0) << g.err;
    EXPECT_EQ(g.out,
              "Name               : Block Basic Auth\n"
              "AllowBasicAuthSmtp : True\n"
              "IsDefault          : False\n"
              "\n"
              "Name               : Allow SMTP\n"
              "AllowBasicAuthSmtp : True\n"
              "IsDefault          : False\n");
    auto j = boost::json::parse(run({"get-authenticationpolicy", "-Identity", "allow smtp", "--json"}).out).as_array();
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0].at("Name").as_string(), "Allow SMTP");
}

TEST_F(admin, remove_authenticationpolicy_refuses_while_in_use) {
    ASSERT_EQ(run({"new-authenticationpolicy", "-Name", "Legacy"}).status, 0);
    ASSERT_EQ(run({"set-relayaccount", "-Identity", "printer@contoso.com", "--authentication-policy", "Legacy"}).status,
              0);
    ASSERT_EQ(run({"set-relayaccount", "-Identity", "copier@contoso.com", "--authentication-policy", "legacy"}).status,
              0);
    auto r = run({"remove-authenticationpolicy", "-Identity", "Legacy"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("printer@contoso.com, copier@contoso.com"), std::string::npos) << r.err;
    EXPECT_EQ(read_policy().authentication_policies.size(), 1u);

    ASSERT_EQ(run({"set-relayaccount", "-Identity", "printer@contoso.com", "--authentication-policy", "$null"}).status,
              0);
    ASSERT_EQ(run({"set-relayaccount", "-Identity", "copier@contoso.com", "--authentication-policy=null"}).status, 0);
    ASSERT_EQ(run({"set-organizationconfig", "-DefaultAuthenticationPolicy", "Legacy"}).status, 0);
    auto d = run({"remove-authenticationpolicy", "-Identity", "Legacy"});
    EXPECT_EQ(d.status, 1);
    EXPECT_NE(d.err.find("organization's default"), std::string::npos) << d.err;

    ASSERT_EQ(run({"set-organizationconfig", "-DefaultAuthenticationPolicy", "$null"}).status, 0);
    ASSERT_EQ(run({"remove-authenticationpolicy", "-Identity", "Legacy"}).status, 0);
    EXPECT_TRUE(read_policy().authentication_policies.empty());
    EXPECT_EQ(run({"remove-authenticationpolicy", "-Identity", "Legacy"}).status, 1);
}

// ---- bindings ------------------------------------------------------------------

TEST_F(admin, relay_bindings) {
    auto r = run({"new-relaybinding", "-Network", "10.1.20.0/24", "-Identity", "SCANNER@contoso.com"});
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_EQ(run({"new-relaybinding", "--network=2001:db8::/48", "--identity", "printer@contoso.com", "--listeners",
                   "submission,127.0.0.1:2465"})
                  .status,
              0);
    auto p = read_policy();
    ASSERT_EQ(p.bindings.size(), 2u);
    EXPECT_EQ(p.bindings[0].identity, "scanner@contoso.com");
    EXPECT_EQ(p.bindings[1].listeners, (std::vector<std::string>{"submission", "127.0.0.1:2465"}));

    auto g = run({"get-relaybinding"});
    ASSERT_EQ(g.status, 0) << g.err;
    EXPECT_EQ(g.out,
              "Network   : 10.1.20.0/24\n"
              "Identity  : scanner@contoso.com\n"
              "Listeners : All\n"
              "\n"
              "Network   : 2001:db8::/48\n"
              "Identity  : printer@contoso.com\n"
              "Listeners : {submission, 127.0.0.1:2465}\n");
    auto j = boost::json::parse(run({"get-relaybinding", "--json"}).out).as_array();
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[1].at("Listeners").as_array().size(), 2u);

    auto dup = run({"new-relaybinding", "-Network", "10.1.20.0/24", "-Identity", "copier@contoso.com"});
    EXPECT_EQ(dup.status, 1);
    EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;
    EXPECT_EQ(run({"new-relaybinding", "-Network", "10.9.0.0/16", "-Identity", "nobody@contoso.com"}).status, 1);
    EXPECT_EQ(run({"new-relaybinding", "-Network", "10.9.0.0/99", "-Identity", "copier@contoso.com"}).status, 1);
    EXPECT_EQ(run({"new-relaybinding", "-Network", "not-a-net", "-Identity", "copier@contoso.com"}).status, 1);
    EXPECT_EQ(
        run({"new-relaybinding", "-Network", "10.9.0.0/16", "-Identity", "copier@contoso.com", "--listeners", "smtp"})
            .status,
        1);

    // The account cannot go while a binding uses it.
    auto refused = run({"remove-relayaccount", "-Identity", "scanner@contoso.com"});
    EXPECT_EQ(refused.status, 1);
    EXPECT_NE(refused.err.find("10.1.20.0/24"), std::string::npos) << refused.err;
    EXPECT_NE(find(read_policy(), "scanner@contoso.com"), nullptr);

    ASSERT_EQ(run({"remove-relaybinding", "-Network", "10.1.20.0/24"}).status, 0);
    EXPECT_EQ(read_policy().bindings.size(), 1u);
    EXPECT_EQ(run({"remove-relaybinding", "-Network", "10.1.20.0/24"}).status, 1);
    ASSERT_EQ(run({"remove-relayaccount", "-Identity", "scanner@contoso.com"}).status, 0);
}

// ---- the From: header check ----------------------------------------------------

TEST_F(admin, check_header_from_for_the_organization) {
    auto g = run({"get-organizationconfig"});
    ASSERT_EQ(g.status, 0) << g.err;
    EXPECT_NE(g.out.find("CheckHeaderFrom             : True\n"), std::string::npos) << "on by default\n" << g.out;

    auto s = run({"set-organizationconfig", "-CheckHeaderFrom", "$false"});
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_FALSE(read_policy().org.check_header_from);
    EXPECT_NE(policy_text().find("[organization]\nsmtp_client_authentication_disabled = true\ncheck_header_from = false\n"),
              std::string::npos)
        << policy_text();
    auto j = run({"get-organizationconfig", "--json"});
    EXPECT_EQ(boost::json::parse(j.out).as_object().at("CheckHeaderFrom").as_bool(), false) << j.out;

    ASSERT_EQ(run({"set-organizationconfig", "--check-header-from", "true"}).status, 0);
    EXPECT_TRUE(read_policy().org.check_header_from);
    EXPECT_EQ(policy_text().find("check_header_from"), std::string::npos) << "the default is not written";
    // The organization's value is $true or $false, never $null.
    EXPECT_NE(run({"set-organizationconfig", "-CheckHeaderFrom", "$null"}).status, 0);
    EXPECT_TRUE(read_policy().org.check_header_from);
}

TEST_F(admin, check_header_from_per_account) {
    auto unset = run({"get-relayaccount", "-Identity", "scanner@contoso.com"});
    ASSERT_EQ(unset.status, 0) << unset.err;
    EXPECT_NE(unset.out.find("CheckHeaderFrom                  : \n"), std::string::npos) << unset.out;

    ASSERT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com", "-CheckHeaderFrom", "$false"}).status, 0);
    auto p = read_policy();
    EXPECT_EQ(find(p, "scanner@contoso.com")->check_header_from, std::optional<bool>(false));
    EXPECT_EQ(find(p, "printer@contoso.com")->check_header_from, std::nullopt) << "other accounts untouched";
    auto off = run({"get-relayaccount", "-Identity", "scanner@contoso.com"});
    EXPECT_NE(off.out.find("CheckHeaderFrom                  : False\n"), std::string::npos) << off.out;
    auto j = run({"get-relayaccount", "-Identity", "scanner@contoso.com", "--json"});
    EXPECT_EQ(boost::json::parse(j.out).as_array().at(0).as_object().at("CheckHeaderFrom").as_bool(), false) << j.out;

    auto e = run({"explain", "scanner@contoso.com"});
    EXPECT_NE(e.out.find("Header From/Sender: not checked (account's CheckHeaderFrom)\n"), std::string::npos) << e.out;
    auto printer = run({"explain", "printer@contoso.com"});
    EXPECT_NE(printer.out.find("Header From/Sender: checked against the allowed senders (organization's "
                               "CheckHeaderFrom)\n"),
              std::string::npos)
        << printer.out;

    ASSERT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com", "--check-header-from", "true"}).status, 0);
    EXPECT_EQ(find(read_policy(), "scanner@contoso.com")->check_header_from, std::optional<bool>(true));
    ASSERT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com", "-CheckHeaderFrom:$null"}).status, 0);
    EXPECT_EQ(find(read_policy(), "scanner@contoso.com")->check_header_from, std::nullopt);
    EXPECT_EQ(policy_text().find("check_header_from"), std::string::npos) << "unset is not written";

    // At creation too.
    ASSERT_EQ(run({"new-relayaccount", "-Identity", "fax@contoso.com", "--generate-password", "-CheckHeaderFrom",
                   "$false"})
                  .status,
              0);
    EXPECT_EQ(find(read_policy(), "fax@contoso.com")->check_header_from, std::optional<bool>(false));
}

// ---- explain ---------------------------------------------------------------------

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// The indented step lines of explain's output.
std::vector<std::string> steps_of(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& line : lines_of(text))
        if (line.rfind("  ", 0) == 0) out.push_back(line.substr(2));
    return out;
}

TEST_F(admin, explain_a_disabled_mailbox) {
    auto r = run({"explain", "legacy@contoso.com", "--from", "legacy@contoso.com"});
    ASSERT_EQ(r.status, 0) << r.err;  // a report, even when refused
    auto steps = steps_of(r.out);
    ASSERT_FALSE(steps.empty()) << r.out;
    EXPECT_EQ(steps.back().rfind("Effective: disabled", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("Mailbox: SmtpClientAuthenticationDisabled = True"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("AUTH reply: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
                         "for the Mailbox."),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Sender legacy@contoso.com: allowed\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Limits: MaxMessagesPerMinute unlimited, MaxRecipientsPerDay 10000, MaxRecipientsPerMessage 500\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Upstream mailbox: relay@contoso.com\n"), std::string::npos) << r.out;
}

TEST_F(admin, explain_an_enabled_mailbox_senders_bindings_and_limits) {
    ASSERT_EQ(run({"new-relaybinding", "-Network", "10.1.20.0/24", "-Identity", "scanner@contoso.com", "--listeners",
                   "submissions"})
                  .status,
              0);
    ASSERT_EQ(run({"set-relayaccount", "-Identity", "scanner@contoso.com", "--max-recipients-per-message", "0"}).status,
              0);
    auto r = run({"explain", "-Identity", "scanner@contoso.com", "--from", "boss@contoso.com", "--client", "10.1.20.7",
                  "--listener", "submissions"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(steps_of(r.out).back(), "Effective: enabled") << r.out;
    EXPECT_EQ(r.out.find("AUTH reply"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Sender boss@contoso.com: refused (550 5.7.60 SMTP; Client does not have permissions to send "
                         "as this sender)\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Client 10.1.20.7 on submissions (127.0.0.1:2465): binding 10.1.20.0/24 (identity "
                         "scanner@contoso.com)\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("MaxRecipientsPerMessage unlimited"), std::string::npos) << r.out;

    auto other = run({"explain", "scanner@contoso.com", "--client", "10.1.20.7"});  // submission: not bound there
    EXPECT_NE(other.out.find("Client 10.1.20.7 on submission (127.0.0.1:2587): no binding\n"), std::string::npos)
        << other.out;
    auto by_address = run({"explain", "scanner@contoso.com", "--client", "10.1.20.7", "--listener", "127.0.0.1:2465"});
    EXPECT_NE(by_address.out.find(": binding 10.1.20.0/24"), std::string::npos) << by_address.out;
    EXPECT_EQ(run({"explain", "scanner@contoso.com", "--client", "10.1.20.300"}).status, 1);
    EXPECT_EQ(run({"explain", "scanner@contoso.com", "--client", "10.1.20.7", "--listener", "127.0.0.1:9"}).status, 1);
}

TEST_F(admin, explain_with_security_defaults_on) {
    ASSERT_EQ(run({"set-organizationconfig", "-SecurityDefaults", "$true"}).status, 0);
    auto r = run({"explain", "scanner@contoso.com"});  // mailbox $false does not override security defaults
    ASSERT_EQ(r.status, 0) << r.err;
    auto steps = steps_of(r.out);
    ASSERT_FALSE(steps.empty());
    EXPECT_EQ(steps.front(), "SecurityDefaults: True") << r.out;
    EXPECT_EQ(steps.back().rfind("Effective: disabled", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("AUTH reply: 535 5.7.139"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("security defaults"), std::string::npos) << r.out;
}

TEST_F(admin, explain_unknown_identity) {
    auto r = run({"explain", "nobody@contoso.com"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("object 'nobody@contoso.com' couldn't be found"), std::string::npos) << r.err;
    EXPECT_EQ(run({"explain"}).status, 1);
}

}  // namespace
