#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "relay/cli/admin.hpp"
#include "relay/cli/options.hpp"

namespace admin = subrelay::relay::admin;
namespace cli = subrelay::relay;

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
};

std::string parse(std::vector<std::string> args, cli::parsed_options& out, std::size_t positionals = 0) {
    args.insert(args.begin(), "verb");
    return cli::parse_options(args, specs, positionals, out);
}

TEST(admin_options, names_normalise_from_both_spellings) {
    EXPECT_EQ(cli::normalise_option("-SmtpClientAuthenticationDisabled"), "smtpclientauthenticationdisabled");
    EXPECT_EQ(cli::normalise_option("--smtp-client-authentication-disabled"), "smtpclientauthenticationdisabled");
    EXPECT_EQ(cli::normalise_option("--smtp_client_authentication_disabled"), "smtpclientauthenticationdisabled");
    EXPECT_EQ(cli::normalise_option("-identity"), "identity");
    EXPECT_EQ(cli::normalise_option("IDENTITY"), "identity");
}

TEST(admin_options, booleans) {
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

TEST(admin_options, counts_and_lists) {
    EXPECT_EQ(cli::parse_count("30"), 30u);
    EXPECT_EQ(cli::parse_count("Unlimited"), 0u);
    EXPECT_FALSE(cli::parse_count("-1").has_value());
    EXPECT_FALSE(cli::parse_count("4294967296").has_value());
    EXPECT_FALSE(cli::parse_count("3x").has_value());
    EXPECT_EQ(cli::split_list(" a@x , *@y,,b@z "), (std::vector<std::string>{"a@x", "*@y", "b@z"}));
    EXPECT_TRUE(cli::split_list("").empty());
}

TEST(admin_options, powershell_and_gnu_spellings_give_the_same_result) {
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

TEST(admin_options, a_boolean_without_its_value_is_explained) {
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

TEST(admin_options, bad_values_and_unknown_options) {
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

TEST(admin_options, flags_positionals_help_and_values_with_colons) {
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

TEST(admin_options, filters) {
    struct row {
        const char* text;
        bool equal;
        std::optional<bool> value;
    };
    for (const row& r : {row{"SmtpClientAuthenticationDisabled -eq $true", true, true},
                         row{"{ SmtpClientAuthenticationDisabled -eq $false }", true, false},
                         row{"\"smtpclientauthenticationdisabled -EQ $null\"", true, std::nullopt},
                         row{"{SmtpClientAuthenticationDisabled  -ne  true}", false, true}}) {
        admin::cas_filter f;
        std::string why;
        ASSERT_TRUE(admin::parse_filter(r.text, f, why)) << r.text << ": " << why;
        EXPECT_EQ(f.equal, r.equal) << r.text;
        EXPECT_EQ(f.value, r.value) << r.text;
    }
    admin::cas_filter f;
    std::string why;
    EXPECT_FALSE(admin::parse_filter("SmtpClientAuthenticationDisabled -eq ", f, why));
    EXPECT_NE(why.find("the value after -eq is missing"), std::string::npos) << why;
    EXPECT_FALSE(admin::parse_filter("Name -eq $true", f, why));
    EXPECT_NE(why.find("cannot filter on 'Name'"), std::string::npos) << why;
    EXPECT_FALSE(admin::parse_filter("SmtpClientAuthenticationDisabled -like $true", f, why));
    EXPECT_FALSE(admin::parse_filter("SmtpClientAuthenticationDisabled -eq yes", f, why));
    EXPECT_FALSE(admin::parse_filter("{ }", f, why));

    admin::cas_filter ne_true{false, true};
    EXPECT_FALSE(ne_true.matches(true));
    EXPECT_TRUE(ne_true.matches(false));
    EXPECT_TRUE(ne_true.matches(std::nullopt));
    admin::cas_filter eq_null{true, std::nullopt};
    EXPECT_TRUE(eq_null.matches(std::nullopt));
    EXPECT_FALSE(eq_null.matches(false));
}

TEST(admin_options, format_list_aligns_the_colons) {
    std::ostringstream out;
    admin::format_list(out,
                       {{"Identity", "scanner@contoso.com"}, {"SmtpClientAuthenticationDisabled", "False"}, {"X", ""}});
    EXPECT_EQ(out.str(),
              "Identity                         : scanner@contoso.com\n"
              "SmtpClientAuthenticationDisabled : False\n"
              "X                                : \n");
}

TEST(admin_options, generated_passwords_are_letters_and_digits_and_differ) {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        auto p = admin::generate_password();
        EXPECT_EQ(p.size(), 24u);
        // No '-' (a password starting with it reads as an option) and no punctuation.
        EXPECT_EQ(p.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                  std::string::npos);
        seen.insert(p);
    }
    EXPECT_EQ(seen.size(), 200u);
}

}  // namespace
