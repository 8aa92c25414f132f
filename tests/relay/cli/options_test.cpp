// The one option parser (relay/cli/options.hpp): directly, and as verbs that
// are not admin cmdlets use it through run_cli.
#include "relay/cli/options.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "relay/cli/cli.hpp"
#include "tests/relay/temp_dir.hpp"

namespace cli = subrelay::relay;
namespace fs = std::filesystem;

namespace {

const std::vector<cli::option_spec> specs = {
    {"Identity", cli::value_kind::text},
    {"SmtpClientAuthenticationDisabled", cli::value_kind::tristate},
    {"SecurityDefaults", cli::value_kind::boolean},
    {"MaxRecipientsPerDay", cli::value_kind::nullable_count},
    {"ResultSize", cli::value_kind::count},
    {"Json", cli::value_kind::flag},
    {"AllowedSenders", cli::value_kind::list},
    {"Network", cli::value_kind::text},
    cli::config_option,
};

std::string parse(std::vector<std::string> args, cli::parsed_options& out, std::size_t positionals = 0) {
    args.insert(args.begin(), "verb");
    return cli::parse_options(args, specs, positionals, out);
}

TEST(options, names_normalise_from_both_spellings) {
    EXPECT_EQ(cli::normalise_option("-SmtpClientAuthenticationDisabled"), "smtpclientauthenticationdisabled");
    EXPECT_EQ(cli::normalise_option("--smtp-client-authentication-disabled"), "smtpclientauthenticationdisabled");
    EXPECT_EQ(cli::normalise_option("--smtp_client_authentication_disabled"), "smtpclientauthenticationdisabled");
    EXPECT_EQ(cli::normalise_option("-identity"), "identity");
    EXPECT_EQ(cli::normalise_option("IDENTITY"), "identity");
}

TEST(options, booleans) {
    for (const char* t : {"$true", "true", "TRUE", "$True"})
        EXPECT_EQ(cli::parse_boolean(t), std::optional<bool>(true)) << t;
    for (const char* f : {"$false", "false", "False", "$FALSE"})
        EXPECT_EQ(cli::parse_boolean(f), std::optional<bool>(false)) << f;
    for (const char* n : {"$null", "null", "NULL"}) {
        auto b = cli::parse_boolean(n);
        ASSERT_TRUE(b.has_value()) << n;
        EXPECT_FALSE(b->has_value()) << n;
    }
    for (const char* bad : {"", "yes", "1", "$", "truee"}) EXPECT_FALSE(cli::parse_boolean(bad).has_value()) << bad;
}

TEST(options, counts_and_lists) {
    EXPECT_EQ(cli::parse_count("30"), 30u);
    EXPECT_EQ(cli::parse_count("Unlimited"), 0u);
    EXPECT_FALSE(cli::parse_count("-1").has_value());
    EXPECT_FALSE(cli::parse_count("4294967296").has_value());
    EXPECT_FALSE(cli::parse_count("3x").has_value());
    EXPECT_EQ(cli::split_list(" a@x , *@y,,b@z "), (std::vector<std::string>{"a@x", "*@y", "b@z"}));
    EXPECT_TRUE(cli::split_list("").empty());
}

TEST(options, powershell_and_gnu_spellings_give_the_same_result) {
    cli::parsed_options ps, gnu, colon;
    ASSERT_EQ(parse({"-Identity", "a@x", "-SmtpClientAuthenticationDisabled", "$false"}, ps), "");
    ASSERT_EQ(parse({"--identity=a@x", "--smtp-client-authentication-disabled", "false"}, gnu), "");
    ASSERT_EQ(parse({"-IDENTITY:a@x", "-SmtpClientAuthenticationDisabled:$false"}, colon), "");
    for (const auto* o : {&ps, &gnu, &colon}) {
        EXPECT_EQ(o->value("identity"), "a@x");
        EXPECT_EQ(cli::parse_boolean(o->value("smtpclientauthenticationdisabled")), std::optional<bool>(false));
    }
    EXPECT_EQ(ps.spelled.at("identity"), "-Identity");
    EXPECT_EQ(gnu.spelled.at("identity"), "--identity");
}

TEST(options, a_boolean_without_its_value_is_explained) {
    // `-SmtpClientAuthenticationDisabled $false` unquoted in a POSIX shell.
    cli::parsed_options o1, o2, o3, o4;
    const std::string tri =
        "-SmtpClientAuthenticationDisabled needs a value: $true, $false or $null "
        "(quote it: '$false', or write false)";
    EXPECT_EQ(parse({"-Identity", "a@x", "-SmtpClientAuthenticationDisabled"}, o1), tri);
    EXPECT_EQ(parse({"-SmtpClientAuthenticationDisabled", "-Identity", "a@x"}, o2), tri);
    EXPECT_EQ(parse({"-SmtpClientAuthenticationDisabled", ""}, o3), tri);  // "$false" in double quotes
    EXPECT_EQ(parse({"--security-defaults"}, o4),
              "--security-defaults needs a value: $true or $false (quote it: '$false', or write false)");
}

TEST(options, bad_values_and_unknown_options) {
    cli::parsed_options o;
    EXPECT_EQ(parse({"-SmtpClientAuthenticationDisabled", "maybe"}, o),
              "-SmtpClientAuthenticationDisabled: 'maybe' is not $true, $false or $null");
    cli::parsed_options o2;
    EXPECT_EQ(parse({"-SecurityDefaults", "$null"}, o2), "-SecurityDefaults cannot be $null: use $true or $false");
    cli::parsed_options o3;
    EXPECT_EQ(parse({"--colour", "blue"}, o3), "unknown option '--colour'");
    cli::parsed_options o4;
    EXPECT_EQ(parse({"-Identity"}, o4), "-Identity needs a value");
    cli::parsed_options o5;
    EXPECT_EQ(parse({"stray"}, o5), "unexpected argument 'stray'");
    cli::parsed_options o6;
    EXPECT_EQ(parse({"-Identity", "a", "--identity", "b"}, o6), "--identity is given more than once");
    cli::parsed_options o7;
    EXPECT_EQ(parse({"-ResultSize", "lots"}, o7), "-ResultSize: 'lots' is not a number");
    cli::parsed_options o8;
    EXPECT_EQ(parse({"--max-recipients-per-day", "x"}, o8), "--max-recipients-per-day: 'x' is not a number or $null");
}

TEST(options, flags_positionals_help_and_values_with_colons) {
    cli::parsed_options o;
    ASSERT_EQ(parse({"a@x", "--json", "-Network:2001:db8::/48", "--allowed-senders=a@x,b@x", "-?"}, o, 1), "");
    EXPECT_EQ(o.positionals, std::vector<std::string>{"a@x"});
    EXPECT_TRUE(o.flags.count("json"));
    EXPECT_EQ(o.value("network"), "2001:db8::/48");
    EXPECT_EQ(o.value("allowedsenders"), "a@x,b@x");
    EXPECT_TRUE(o.help);
    cli::parsed_options off;
    ASSERT_EQ(parse({"-Json:$false", "--max-recipients-per-day", "$null"}, off), "");
    EXPECT_FALSE(off.flags.count("json"));
    EXPECT_EQ(off.value("maxrecipientsperday"), "$null");
}

TEST(options, one_letter_aliases_and_help_spellings) {
    cli::parsed_options o;
    ASSERT_EQ(parse({"-c", "relay.toml", "-h"}, o), "");
    EXPECT_EQ(o.value("config"), "relay.toml");
    EXPECT_EQ(o.spelling("config"), "-c");
    EXPECT_TRUE(o.help);
    cli::parsed_options twice;
    EXPECT_EQ(parse({"-c", "a.toml", "--config=b.toml"}, twice), "--config is given more than once");
    cli::parsed_options missing;
    EXPECT_EQ(parse({"-c"}, missing), "-c needs a value");
    for (const char* help : {"--help", "-?", "-Help"}) {
        cli::parsed_options h;
        ASSERT_EQ(parse({help}, h), "") << help;
        EXPECT_TRUE(h.help) << help;
    }
}

// The queue verb as a user of the shared parser: its --config spellings, an
// unknown option and a missing value.
class queue_options : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-options");
        config_ = (dir_ / "relay.toml").string();
        std::ofstream(config_) << "[server]\nsubmission = []\n[spool]\ndir = \"spool\"\n"
                                  "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n";
    }
    void TearDown() override { fs::remove_all(dir_); }

    struct result {
        int status;
        std::string out;
        std::string err;
    };
    static result run(std::vector<std::string> args) {
        std::istringstream in;
        std::ostringstream out, err;
        const int status = cli::run_cli(args, in, out, err);
        return {status, out.str(), err.str()};
    }

    fs::path dir_;
    std::string config_;
};

TEST_F(queue_options, config_in_every_spelling) {
    for (const auto& args : std::vector<std::vector<std::string>>{{"queue", "list", "--config=" + config_},
                                                                  {"queue", "list", "--config", config_},
                                                                  {"queue", "-c", config_, "list"},
                                                                  {"queue", "-Config:" + config_, "list"}}) {
        auto r = run(args);
        EXPECT_EQ(r.status, 0) << args[2] << ": " << r.err;
        EXPECT_EQ(r.out, "queue is empty\n") << args[2];
    }
}

TEST_F(queue_options, usage_errors_name_the_verb_and_show_its_usage) {
    auto unknown = run({"queue", "list", "--colour", "-c", config_});
    EXPECT_EQ(unknown.status, 2);
    EXPECT_EQ(unknown.err.rfind("subrelay queue: unknown option '--colour'\nusage: subrelay queue list", 0), 0u)
        << unknown.err;
    auto missing = run({"queue", "list", "--config"});
    EXPECT_EQ(missing.status, 2);
    EXPECT_EQ(missing.err.rfind("subrelay queue: --config needs a value\nusage: subrelay queue list", 0), 0u)
        << missing.err;
    auto twice = run({"queue", "list", "--json", "--json", "-c", config_});
    EXPECT_EQ(twice.status, 2);
    EXPECT_NE(twice.err.find("--json is given more than once"), std::string::npos) << twice.err;
    auto flag_value = run({"queue", "list", "--json=maybe", "-c", config_});
    EXPECT_EQ(flag_value.status, 2);
    EXPECT_NE(flag_value.err.find("--json: 'maybe' is not $true or $false"), std::string::npos) << flag_value.err;
    auto help = run({"queue", "--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_EQ(help.out.rfind("usage: subrelay queue list", 0), 0u) << help.out;
}

TEST_F(queue_options, flags_and_aliases) {
    // -y is --yes; `--json=false` turns the flag off again.
    auto yes = run({"queue", "delete", "--all", "-y", "-c", config_});
    EXPECT_EQ(yes.status, 0) << yes.err;
    EXPECT_EQ(yes.out, "queue is empty\n");
    auto off = run({"queue", "list", "--json=false", "-c", config_});
    EXPECT_EQ(off.status, 0) << off.err;
    EXPECT_EQ(off.out, "queue is empty\n");
    auto on = run({"queue", "list", "--JSON", "-c", config_});
    EXPECT_EQ(on.status, 0) << on.err;
    EXPECT_EQ(on.out, "[]\n");
}

}  // namespace
