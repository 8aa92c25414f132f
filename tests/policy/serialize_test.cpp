#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "policy/policy.hpp"

namespace subrelay::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> messages(const load_result& r) {
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    return out;
}

// to_toml, then load_text: the same policy, and the same text again.
void expect_round_trip(const policy_file& p) {
    const auto text = to_toml(p);
    const auto back = load_text(text, "policy.toml");
    ASSERT_TRUE(back.ok()) << ::testing::PrintToString(messages(back)) << "\n" << text;
    EXPECT_TRUE(back.policy == p) << text;
    EXPECT_EQ(to_toml(back.policy), text) << "canonical: a second pass changes nothing";
}

binding make_binding(std::string net, std::string identity, std::vector<std::string> listeners = {}) {
    binding b;
    b.network_text = std::move(net);
    std::string why;
    EXPECT_TRUE(network::parse(b.network_text, b.net, why)) << why;
    b.identity = std::move(identity);
    b.listeners = std::move(listeners);
    return b;
}

TEST(to_toml, empty_policy) {
    const policy_file p;
    const auto text = to_toml(p);
    EXPECT_THAT(text, HasSubstr("subrelay"));
    EXPECT_EQ(text.substr(0, 1), "#") << "starts with the header comment";
    expect_round_trip(p);
}

TEST(to_toml, writes_only_what_is_not_default) {
    policy_file p;
    mailbox m;
    m.identity = "a@contoso.com";
    p.mailboxes.push_back(m);
    const auto text = to_toml(p);
    EXPECT_THAT(text, Not(HasSubstr("password_hash")));
    EXPECT_THAT(text, Not(HasSubstr("max_")));
    EXPECT_THAT(text, Not(HasSubstr("security_defaults")));
    EXPECT_THAT(text, Not(HasSubstr("check_header_from"))) << "on by default, unset per account";
    EXPECT_THAT(text, Not(HasSubstr("mailbox]]\nidentity = \"a@contoso.com\"\nsmtp_client")))
        << "an unset mailbox switch stays unset";
    expect_round_trip(p);
}

TEST(to_toml, everything_set) {
    policy_file p;
    p.org.smtp_client_authentication_disabled = false;
    p.org.security_defaults = true;
    p.org.default_authentication_policy = "Block Basic Auth";
    p.org.max_messages_per_minute = 31;
    p.org.max_recipients_per_day = 1;
    p.org.max_recipients_per_message = 4294967295U;
    p.authentication_policies = {{"Block Basic Auth", false}, {"Allow \"SMTP\" \\ basic", true}};
    mailbox m;
    m.identity = "scanner@contoso.com";
    m.password_hash = "$y$j9T$a/b.c$DEF/ghi.jkl/MNO$pqr";
    m.smtp_client_authentication_disabled = false;
    m.allowed_senders = {"scanner@contoso.com", "*@contoso.com", "\"odd \\\"quoted\\\" local\"@contoso.com"};
    m.allowed_recipient_domains = {"contoso.com", "bücher.example"};
    m.upstream_mailbox = "relay@contoso.com";
    m.authentication_policy = "Allow \"SMTP\" \\ basic";
    m.max_messages_per_minute = 0;
    m.max_recipients_per_day = 7;
    m.max_recipients_per_message = 0;
    p.mailboxes.push_back(m);
    mailbox bound;
    bound.identity = "floor2@contoso.com";
    bound.smtp_client_authentication_disabled = true;
    bound.null_sender = null_sender_mode::refuse;
    bound.check_header_from = true;
    p.mailboxes.push_back(bound);
    p.bindings.push_back(make_binding("10.1.20.0/24", "floor2@contoso.com", {"submission", "[::1]:2587"}));
    p.bindings.push_back(make_binding("2001:db8::/48", "Scanner@Contoso.com"));
    p.bindings.push_back(make_binding("::ffff:10.9.0.1", "floor2@contoso.com"));
    expect_round_trip(p);
    const auto text = to_toml(p);
    EXPECT_THAT(text, HasSubstr("max_messages_per_minute = 0\n"));
    EXPECT_THAT(text, HasSubstr("max_messages_per_minute = 31\n"));
    EXPECT_THAT(text, HasSubstr("null_sender = \"refuse\"\n"));
    EXPECT_THAT(text, HasSubstr("null_sender = \"refuse\"\ncheck_header_from = true\n"));
    EXPECT_THAT(text, HasSubstr("network = \"::ffff:10.9.0.1\"\n")) << "bindings keep their text";
}

// [organization] check_header_from is written only when off (its default is
// on); a mailbox's only when set, either way.
TEST(to_toml, check_header_from) {
    policy_file p;
    p.org.check_header_from = false;
    mailbox on;
    on.identity = "on@contoso.com";
    on.check_header_from = true;
    mailbox off;
    off.identity = "off@contoso.com";
    off.check_header_from = false;
    mailbox unset;
    unset.identity = "unset@contoso.com";
    p.mailboxes = {on, off, unset};
    expect_round_trip(p);
    const auto text = to_toml(p);
    EXPECT_THAT(text, HasSubstr("[organization]\nsmtp_client_authentication_disabled = true\ncheck_header_from = false\n"));
    EXPECT_THAT(text, HasSubstr("identity = \"on@contoso.com\"\ncheck_header_from = true\n"));
    EXPECT_THAT(text, HasSubstr("identity = \"off@contoso.com\"\ncheck_header_from = false\n"));
    EXPECT_THAT(text, HasSubstr("identity = \"unset@contoso.com\"\n"));
    EXPECT_THAT(text, Not(HasSubstr("identity = \"unset@contoso.com\"\ncheck_header_from")));
}

TEST(to_toml, nasty_strings_are_escaped) {
    // The loader validates identities and hashes, so nasty text goes where
    // any string is accepted: authentication policy names.
    policy_file p;
    for (std::string name : {std::string("quote \" backslash \\ end\\"), std::string("tab\tnew\nline\rcr"),
                             std::string("bell\x07 del\x7f esc\x1b nul-free"), std::string("'''single''' \"\"\"triple\"\"\""),
                             std::string("# not a comment = [x]"), std::string("dollar $y$ slash / unicode é 漢字 😀"),
                             std::string("\\u0041 is not A"), std::string(" leading and trailing ")}) {
        p.authentication_policies.push_back({name, p.authentication_policies.size() % 2 == 0});
    }
    mailbox m;
    m.identity = "a@contoso.com";
    m.authentication_policy = "TAB\tNEW\nLINE\rCR";
    p.mailboxes.push_back(m);
    expect_round_trip(p);
}

TEST(to_toml, password_hashes_round_trip) {
    for (std::string hash : {"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
                             "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                             "$6$rounds=5000$saltsalt$aaaaaaaa/bbbbbbbbb.cccccccccc",
                             "$5$abc$def", "$7$CU..../....$ghi/jkl", "$gy$j9T$x$y"}) {
        policy_file p;
        mailbox m;
        m.identity = "a@contoso.com";
        m.password_hash = hash;
        p.mailboxes.push_back(m);
        expect_round_trip(p);
        EXPECT_EQ(load_text(to_toml(p), "policy.toml").policy.mailboxes.at(0).password_hash, hash);
    }
}

TEST(to_toml, a_loaded_file_round_trips) {
    const auto r = load_text(R"(
# a comment that a CLI edit drops
[organization]
security_defaults = false
max_recipients_per_message = 500   # the default: not written back

[[authentication_policy]]
name = "Block Basic Auth"

[[mailbox]]
identity = "Scanner@Contoso.com"
password_hash = '$y$j9T$salt$hash'
allowed_senders = []
allowed_recipient_domains = ["contoso.com"]
authentication_policy = "block basic auth"

[[binding]]
network = "10.1.20.7/32"
identity = "scanner@contoso.com"
listeners = []
)",
                             "policy.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    expect_round_trip(r.policy);
}

}  // namespace
}  // namespace subrelay::policy
