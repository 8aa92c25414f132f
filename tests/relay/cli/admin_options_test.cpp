// The admin verbs' own pieces: -Filter, Format-List, generated passwords.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "auth/password.hpp"
#include "relay/cli/admin.hpp"

namespace admin = subrelay::relay::admin;

namespace {

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
        auto p = subrelay::auth::generate_password();
        EXPECT_EQ(p.size(), 24u);
        // No '-' (a password starting with it reads as an option) and no punctuation.
        EXPECT_EQ(p.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                  std::string::npos);
        seen.insert(p);
    }
    EXPECT_EQ(seen.size(), 200u);
}

}  // namespace
