// Senders, recipient domains, bindings, limits: the engine's other rules,
// and the load errors for the policy file's newer keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "policy/policy.hpp"

namespace subrelay::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> messages(const load_result& r) {
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    return out;
}

engine load_engine(std::string_view text) {
    auto r = load_text(text, "policy.toml");
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    return engine(std::move(r.policy));
}

TEST(policy_load, the_complete_file) {
    const auto r = load_text(R"(
[organization]
smtp_client_authentication_disabled = true
security_defaults = false
default_authentication_policy = "Block Basic Auth"
max_messages_per_minute = 20
max_recipients_per_day = 5000
max_recipients_per_message = 100

[[authentication_policy]]
name = "Block Basic Auth"
allow_basic_auth_smtp = false

[[authentication_policy]]
name = "Allow SMTP"
allow_basic_auth_smtp = true

[[mailbox]]
identity = "scanner@contoso.com"
password_hash = "$y$j9T$salt$hash"
smtp_client_authentication_disabled = false
allowed_senders = ["scanner@contoso.com", "*@contoso.com"]
allowed_recipient_domains = ["contoso.com", "Fabrikam.com"]
upstream_mailbox = "relay@contoso.com"
authentication_policy = "allow smtp"
max_messages_per_minute = 10
max_recipients_per_day = 0
max_recipients_per_message = 50
null_sender = "refuse"

[[mailbox]]
identity = "scanner-floor2@contoso.com"

[[binding]]
network = "10.1.20.0/24"
identity = "Scanner-Floor2@contoso.com"
listeners = ["submission", "127.0.0.1:2587", "[::1]:2587"]

[[binding]]
network = "2001:db8::/48"
identity = "scanner@contoso.com"
)",
                             "policy.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    const auto& p = r.policy;
    EXPECT_EQ(p.org.default_authentication_policy, "Block Basic Auth");
    EXPECT_EQ(p.org.max_messages_per_minute, 20U);
    EXPECT_EQ(p.org.max_recipients_per_day, 5000U);
    EXPECT_EQ(p.org.max_recipients_per_message, 100U);
    ASSERT_EQ(p.authentication_policies.size(), 2U);
    EXPECT_FALSE(p.authentication_policies[0].allow_basic_auth_smtp);
    EXPECT_TRUE(p.authentication_policies[1].allow_basic_auth_smtp);
    ASSERT_EQ(p.mailboxes.size(), 2U);
    const auto& m = p.mailboxes[0];
    EXPECT_THAT(m.allowed_senders, ElementsAre("scanner@contoso.com", "*@contoso.com"));
    EXPECT_THAT(m.allowed_recipient_domains, ElementsAre("contoso.com", "Fabrikam.com"));
    EXPECT_EQ(m.authentication_policy, "allow smtp");
    EXPECT_EQ(m.max_messages_per_minute, std::optional<std::uint32_t>(10));
    EXPECT_EQ(m.max_recipients_per_day, std::optional<std::uint32_t>(0));
    EXPECT_EQ(m.max_recipients_per_message, std::optional<std::uint32_t>(50));
    EXPECT_FALSE(p.mailboxes[1].max_messages_per_minute.has_value());
    EXPECT_EQ(m.null_sender, null_sender_mode::refuse);
    EXPECT_EQ(p.mailboxes[1].null_sender, null_sender_mode::rewrite);
    ASSERT_EQ(p.bindings.size(), 2U);
    EXPECT_EQ(p.bindings[0].network_text, "10.1.20.0/24");
    EXPECT_EQ(p.bindings[0].net.prefix, 120U);
    EXPECT_THAT(p.bindings[0].listeners, ElementsAre("submission", "127.0.0.1:2587", "[::1]:2587"));
    EXPECT_EQ(p.bindings[1].net.prefix, 48U);
}

TEST(policy_load, organization_defaults) {
    const auto r = load_text("[organization]\n", "policy.toml");
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r.policy.org.security_defaults);
    EXPECT_EQ(r.policy.org.default_authentication_policy, "");
    // No per-account rate by default: the queue paces each upstream mailbox.
    EXPECT_EQ(r.policy.org.max_messages_per_minute, 0U);
    EXPECT_EQ(r.policy.org.max_recipients_per_day, 10000U);
    EXPECT_EQ(r.policy.org.max_recipients_per_message, 500U);
}

constexpr std::string_view two_mailboxes = R"(
[[mailbox]]
identity = "a@contoso.com"
[[mailbox]]
identity = "b@contoso.com"
)";

TEST(policy_load_errors, undefined_authentication_policies) {
    const auto r = load_text(std::string("[organization]\ndefault_authentication_policy = \"Nope\"\n") +
                                 "[[authentication_policy]]\nname = \"Block\"\n"
                                 "[[mailbox]]\nidentity = \"a@contoso.com\"\nauthentication_policy = \"block\"\n"
                                 "[[mailbox]]\nidentity = \"b@contoso.com\"\nauthentication_policy = \"Blok\"\n",
                             "policy.toml");
    EXPECT_THAT(
        messages(r),
        ElementsAre(
            R"(policy.toml: organization.default_authentication_policy: "Nope" is not the name of any [[authentication_policy]])",
            R"(policy.toml: mailbox[1].authentication_policy: "Blok" is not the name of any [[authentication_policy]])"));
}

TEST(policy_load_errors, authentication_policy_names) {
    const auto r = load_text("[[authentication_policy]]\nname = \"Block Basic Auth\"\n"
                             "[[authentication_policy]]\nallow_basic_auth_smtp = true\n"
                             "[[authentication_policy]]\nname = \"BLOCK basic auth\"\nallow_basic_auth_smtp = 1\n"
                             "[[authentication_policy]]\nname = \"\"\nsmtp = true\n",
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre("policy.toml: authentication_policy[1].name: is required",
                            "policy.toml: authentication_policy[2].allow_basic_auth_smtp: expected a boolean, got an integer",
                            "policy.toml: authentication_policy[3].name: is required",
                            "policy.toml: authentication_policy[3].smtp: unknown key",
                            R"(policy.toml: authentication_policy[2].name: "BLOCK basic auth" is already used by authentication_policy[0])"));
}

TEST(policy_load_errors, bindings) {
    const auto r = load_text(std::string(two_mailboxes) + R"(
[[binding]]
network = "10.1.20.0/33"
identity = "a@contoso.com"
[[binding]]
network = "10.1.20.5/24"
identity = "a@contoso.com"
[[binding]]
network = "10.1.20.0/24"
identity = "nobody@contoso.com"
[[binding]]
network = "10.1.20.0/24"
identity = "B@contoso.com"
[[binding]]
network = "2001:db8::1/32"
identity = "a@contoso.com"
[[binding]]
network = "printer.contoso.com"
listeners = ["smtp", "127.0.0.1:99999", "127.0.0.1:2587"]
[[binding]]
identity = "a@contoso.com"
colour = "red"
)",
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre(
                    R"(policy.toml: binding[0].network: "10.1.20.0/33" has a prefix length out of range (0 to 32 for IPv4))",
                    R"(policy.toml: binding[1].network: "10.1.20.5/24" has host bits set; use "10.1.20.0/24")",
                    R"(policy.toml: binding[4].network: "2001:db8::1/32" has host bits set; use "2001:db8::/32")",
                    R"(policy.toml: binding[5].network: "printer.contoso.com" is not an IPv4 or IPv6 address or network)",
                    "policy.toml: binding[5].identity: is required",
                    StartsWith(R"(policy.toml: binding[5].listeners[0]: "smtp" is not a listener)"),
                    StartsWith(R"(policy.toml: binding[5].listeners[1]: "127.0.0.1:99999" is not a listener)"),
                    "policy.toml: binding[6].network: is required", "policy.toml: binding[6].colour: unknown key",
                    R"(policy.toml: binding[2].identity: "nobody@contoso.com" is not the identity of any [[mailbox]])",
                    R"(policy.toml: binding[3].network: "10.1.20.0/24" is already used by binding[2])"));
}

TEST(policy_load_errors, duplicate_networks_compare_as_networks) {
    const auto r = load_text(std::string(two_mailboxes) +
                                 "[[binding]]\nnetwork = \"10.1.20.7\"\nidentity = \"a@contoso.com\"\n"
                                 "[[binding]]\nnetwork = \"10.1.20.7/32\"\nidentity = \"b@contoso.com\"\n"
                                 "[[binding]]\nnetwork = \"::ffff:10.1.20.7\"\nidentity = \"b@contoso.com\"\n",
                             "policy.toml");
    EXPECT_THAT(messages(r), ElementsAre(R"(policy.toml: binding[1].network: "10.1.20.7/32" is already used by binding[0])",
                                         R"(policy.toml: binding[2].network: "::ffff:10.1.20.7" is already used by binding[0])"));
}

TEST(policy_load_errors, sender_patterns_and_recipient_domains) {
    const auto r = load_text(R"(
[[mailbox]]
identity = "a@contoso.com"
allowed_senders = ["*@contoso.com", "*@", "*contoso.com", "*@-bad-.com", "*@*.contoso.com", "x@contoso.com"]
allowed_recipient_domains = ["contoso.com", "", "bad domain.com", "@fabrikam.com", "a..b", "sub.fabrikam.com", 3]
)",
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre(R"(policy.toml: mailbox[0].allowed_senders[1]: "*@" is not a valid *@domain pattern)",
                            R"(policy.toml: mailbox[0].allowed_senders[2]: "*contoso.com" is not a valid *@domain pattern)",
                            R"(policy.toml: mailbox[0].allowed_senders[3]: "*@-bad-.com" is not a valid *@domain pattern)",
                            R"(policy.toml: mailbox[0].allowed_senders[4]: "*@*.contoso.com" is not a valid *@domain pattern)",
                            R"(policy.toml: mailbox[0].allowed_recipient_domains[1]: "" is not a valid domain)",
                            R"(policy.toml: mailbox[0].allowed_recipient_domains[2]: "bad domain.com" is not a valid domain)",
                            R"(policy.toml: mailbox[0].allowed_recipient_domains[3]: "@fabrikam.com" is not a valid domain)",
                            R"(policy.toml: mailbox[0].allowed_recipient_domains[4]: "a..b" is not a valid domain)",
                            "policy.toml: mailbox[0].allowed_recipient_domains[6]: expected a string, got an integer"));
}

TEST(policy_load_errors, limits) {
    const auto r = load_text(R"(
[organization]
security_defaults = "no"
max_messages_per_minute = -1
max_recipients_per_day = "many"
[[mailbox]]
identity = "a@contoso.com"
max_recipients_per_message = 4294967296
null_sender = "drop"
)",
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre("policy.toml: organization.security_defaults: expected a boolean, got a string",
                            "policy.toml: organization.max_messages_per_minute: must be at least 0, got -1",
                            "policy.toml: organization.max_recipients_per_day: expected an integer, got a string",
                            StartsWith("policy.toml: mailbox[0].max_recipients_per_message: must be"),
                            R"(policy.toml: mailbox[0].null_sender: expected "rewrite" or "refuse", got "drop")"));
}

TEST(policy_load_errors, tables_that_are_not_arrays) {
    const auto r = load_text("[binding]\nnetwork = \"10.0.0.0/8\"\n[authentication_policy]\nname = \"x\"\n", "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre("policy.toml: authentication_policy: expected an array of tables ([[authentication_policy]]), "
                            "got a table",
                            "policy.toml: binding: expected an array of tables ([[binding]]), got a table"));
}

TEST(senders, wildcards) {
    const auto e = load_engine(R"(
[[mailbox]]
identity = "scanner@contoso.com"
allowed_senders = ["*@Contoso.com", "scans@fabrikam.com"]
)");
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "anyone@contoso.com"), std::nullopt);
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "Someone@CONTOSO.COM"), std::nullopt);
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "scans@fabrikam.com"), std::nullopt);
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "other@fabrikam.com"), smtp::replies::send_as_denied());
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "x@sub.contoso.com"), smtp::replies::send_as_denied())
        << "a subdomain is another domain";
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "x@contoso.com.evil.test"), smtp::replies::send_as_denied());
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "x@evilcontoso.com"), smtp::replies::send_as_denied());
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "@contoso.com"), smtp::replies::send_as_denied());
    // The null sender matches no pattern: it is rewritten to the identity (null_sender).
    EXPECT_EQ(e.envelope_sender("scanner@contoso.com", ""), "scanner@contoso.com");
}

TEST(recipients, allowed_domains) {
    const auto e = load_engine(R"(
[[mailbox]]
identity = "scanner@contoso.com"
allowed_recipient_domains = ["contoso.com", "Fabrikam.com"]
[[mailbox]]
identity = "printer@contoso.com"
)");
    EXPECT_EQ(e.check_recipient("scanner@contoso.com", "a@contoso.com"), std::nullopt);
    EXPECT_EQ(e.check_recipient("SCANNER@contoso.com", "b@FABRIKAM.COM"), std::nullopt);
    const auto refused = e.check_recipient("scanner@contoso.com", "ceo@gmail.com");
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->code, 550);
    EXPECT_EQ(refused->enhanced, "5.7.1");
    EXPECT_THAT(refused->lines.at(0), HasSubstr("gmail.com"));
    EXPECT_EQ(*refused, replies::recipient_domain_not_allowed("gmail.com"));
    EXPECT_TRUE(e.check_recipient("scanner@contoso.com", "x@sub.contoso.com").has_value());
    EXPECT_TRUE(e.check_recipient("scanner@contoso.com", "no-domain").has_value());
    // No list: any recipient.
    EXPECT_EQ(e.check_recipient("printer@contoso.com", "ceo@gmail.com"), std::nullopt);
    // Unknown account: refused.
    EXPECT_TRUE(e.check_recipient("nobody@contoso.com", "a@contoso.com").has_value());
}

TEST(limits, organization_defaults_apply) {
    const auto e = load_engine(R"(
[organization]
max_messages_per_minute = 0
max_recipients_per_day = 200
[[mailbox]]
identity = "a@contoso.com"
max_messages_per_minute = 5
max_recipients_per_day = 0
[[mailbox]]
identity = "b@contoso.com"
)");
    const auto a = e.limits_for(*e.find("a@contoso.com"));
    EXPECT_EQ(a.max_messages_per_minute, 5U);
    EXPECT_EQ(a.max_recipients_per_day, 0U) << "0 on the mailbox means no limit, not the default";
    EXPECT_EQ(a.max_recipients_per_message, 500U);
    const auto b = e.limits_for(*e.find("b@contoso.com"));
    EXPECT_EQ(b.max_messages_per_minute, 0U);
    EXPECT_EQ(b.max_recipients_per_day, 200U);
    EXPECT_EQ(b.max_recipients_per_message, 500U);
}

constexpr std::string_view bindings_file = R"(
[[mailbox]]
identity = "floor@contoso.com"
[[mailbox]]
identity = "scanner@contoso.com"
[[mailbox]]
identity = "v6@contoso.com"
[[mailbox]]
identity = "host@contoso.com"
[[mailbox]]
identity = "tls@contoso.com"

[[binding]]
network = "10.1.0.0/16"
identity = "floor@contoso.com"

[[binding]]
network = "10.1.20.0/24"
identity = "scanner@contoso.com"

[[binding]]
network = "10.1.20.7"
identity = "host@contoso.com"
listeners = ["submission", "127.0.0.1:2587"]

[[binding]]
network = "2001:db8:1::/48"
identity = "v6@contoso.com"

[[binding]]
network = "192.168.5.0/24"
identity = "tls@contoso.com"
listeners = ["submissions"]
)";

const char* bound(const engine& e, std::string_view ip, std::string_view kind = "submission",
                  std::string_view address = "0.0.0.0:587") {
    const auto* b = e.binding_for(ip, kind, address);
    return b == nullptr ? "" : b->identity.c_str();
}

TEST(bindings, longest_prefix_wins) {
    const auto e = load_engine(bindings_file);
    EXPECT_STREQ(bound(e, "10.1.99.1"), "floor@contoso.com");
    EXPECT_STREQ(bound(e, "10.1.20.1"), "scanner@contoso.com");
    EXPECT_STREQ(bound(e, "10.1.20.7"), "host@contoso.com");
    EXPECT_STREQ(bound(e, "10.2.0.1"), "");
    EXPECT_STREQ(bound(e, "not-an-ip"), "");
    EXPECT_STREQ(bound(e, ""), "");
}

TEST(bindings, ipv6_and_v4_mapped_clients) {
    const auto e = load_engine(bindings_file);
    EXPECT_STREQ(bound(e, "2001:db8:1:2::5"), "v6@contoso.com");
    EXPECT_STREQ(bound(e, "2001:DB8:1::"), "v6@contoso.com");
    EXPECT_STREQ(bound(e, "2001:db8:2::5"), "");
    // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6.
    EXPECT_STREQ(bound(e, "::ffff:10.1.20.7"), "host@contoso.com");
    EXPECT_STREQ(bound(e, "::ffff:10.1.20.8"), "scanner@contoso.com");
    EXPECT_STREQ(bound(e, "::10.1.20.7"), "") << "IPv4-compatible is not IPv4-mapped";
}

TEST(bindings, listener_filter) {
    const auto e = load_engine(bindings_file);
    // The single-address binding is only for "submission" or the listener 127.0.0.1:2587.
    EXPECT_STREQ(bound(e, "10.1.20.7", "submissions", "0.0.0.0:465"), "scanner@contoso.com");
    EXPECT_STREQ(bound(e, "10.1.20.7", "submissions", "127.0.0.1:2587"), "host@contoso.com");
    EXPECT_STREQ(bound(e, "10.1.20.7", "submission", "127.0.0.1:2588"), "host@contoso.com");
    EXPECT_STREQ(bound(e, "192.168.5.9", "submission", "0.0.0.0:587"), "");
    EXPECT_STREQ(bound(e, "192.168.5.9", "submissions", "0.0.0.0:465"), "tls@contoso.com");
}

// The From: and Sender: of a message, checked like the envelope sender.
constexpr std::string_view header_from_file = R"(
[organization]
check_header_from = true
[[mailbox]]
identity = "scanner@contoso.com"
[[mailbox]]
identity = "copier@contoso.com"
allowed_senders = ["copier@contoso.com", "*@scans.contoso.com"]
[[mailbox]]
identity = "legacy@contoso.com"
check_header_from = false
)";

std::string refused_address(const engine& e, std::string_view identity, std::string_view header,
                            bool truncated = false) {
    const auto r = e.check_header_from(identity, header, truncated);
    if (!r) return "(allowed)";
    EXPECT_EQ(r->reply, smtp::replies::send_as_denied());
    EXPECT_EQ(r->reply.code, 550);
    EXPECT_EQ(r->reply.enhanced, "5.7.60");
    EXPECT_EQ(r->address.empty(), !r->reason.empty());
    return r->address.empty() ? "reason: " + r->reason : r->address;
}

TEST(header_from, load_and_precedence) {
    const auto r = load_text(header_from_file, "policy.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_TRUE(r.policy.org.check_header_from);
    EXPECT_EQ(r.policy.mailboxes[0].check_header_from, std::nullopt);
    EXPECT_EQ(r.policy.mailboxes[2].check_header_from, std::optional<bool>(false));
    EXPECT_TRUE(load_text("[organization]\n", "policy.toml").policy.org.check_header_from) << "on by default";

    // Account true/false wins; unset follows the organization.
    for (const bool org : {true, false}) {
        for (const std::optional<bool> own : {std::optional<bool>(), std::optional<bool>(true), std::optional<bool>(false)}) {
            policy_file p;
            p.org.check_header_from = org;
            mailbox m;
            m.identity = "a@contoso.com";
            m.check_header_from = own;
            p.mailboxes.push_back(m);
            const engine e(std::move(p));
            EXPECT_EQ(e.checks_header_from(*e.find("a@contoso.com")), own.value_or(org));
            EXPECT_EQ(e.check_header_from("a@contoso.com", "From: ceo@contoso.com\r\n", false).has_value(),
                      own.value_or(org));
        }
    }
}

TEST(header_from, addresses_must_be_allowed_senders) {
    const auto e = load_engine(header_from_file);
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "From: \"The CEO\" <ceo@contoso.com>\r\n"), "ceo@contoso.com");
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "From: Scanner <SCANNER@contoso.com>\r\nTo: a@b.example\r\n"),
              "(allowed)");
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "From: scanner@contoso.com\r\nSender: ceo@contoso.com\r\n"),
              "ceo@contoso.com");
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "From: Team: scanner@contoso.com, ceo@contoso.com;\r\n"),
              "ceo@contoso.com");
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "From: Undisclosed:;\r\n"), "(allowed)");
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "To: a@b.example\r\nSubject: no From\r\n"), "(allowed)");
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", ""), "(allowed)");
    // *@domain entries, as for MAIL FROM.
    EXPECT_EQ(refused_address(e, "copier@contoso.com", "From: Floor 2 <floor2@scans.contoso.com>\r\n"), "(allowed)");
    EXPECT_EQ(refused_address(e, "copier@contoso.com", "From: floor2@contoso.com\r\n"), "floor2@contoso.com");
    // The check is off for this account.
    EXPECT_EQ(refused_address(e, "legacy@contoso.com", "From: ceo@contoso.com\r\n"), "(allowed)");
    EXPECT_EQ(refused_address(e, "legacy@contoso.com", "From: The CEO\r\n"), "(allowed)");
}

TEST(header_from, what_cannot_be_checked_is_refused) {
    const auto e = load_engine(header_from_file);
    EXPECT_THAT(refused_address(e, "scanner@contoso.com", "From: The CEO\r\n"),
                StartsWith("reason: the From: header cannot be read ("));
    EXPECT_THAT(refused_address(e, "scanner@contoso.com", "From: scanner@contoso.com\r\nsender: <ceo@contoso.com\r\n"),
                StartsWith("reason: the Sender: header cannot be read ("));
    // A header section longer than what was kept: a From: may follow unseen.
    EXPECT_THAT(refused_address(e, "scanner@contoso.com", "From: scanner@contoso.com\r\nX-Pad: 0123", true),
                StartsWith("reason: the header section is longer than"));
    // An address seen before the cut is named.
    EXPECT_EQ(refused_address(e, "scanner@contoso.com", "From: ceo@contoso.com\r\nX-Pad: 0123", true),
              "ceo@contoso.com");
    // An account removed by a reload since MAIL.
    EXPECT_EQ(refused_address(e, "gone@contoso.com", "From: gone@contoso.com\r\n"), "reason: no such account");
}

TEST(policy_load_errors, check_header_from) {
    const auto r = load_text(R"(
[organization]
check_header_from = "yes"
[[mailbox]]
identity = "a@contoso.com"
check_header_from = 1
)",
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre("policy.toml: organization.check_header_from: expected a boolean, got a string",
                            "policy.toml: mailbox[0].check_header_from: expected a boolean, got an integer"));
}

}  // namespace
}  // namespace subrelay::policy
