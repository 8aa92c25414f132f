#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "policy/policy.hpp"

namespace subrelay::policy {
namespace {

mailbox account(std::string identity, std::optional<bool> disabled = std::nullopt,
                std::vector<std::string> senders = {}, std::string upstream = {}) {
    mailbox m;
    m.identity = std::move(identity);
    m.password_hash = "$y$j9T$salt$hash";
    m.smtp_client_authentication_disabled = disabled;
    m.allowed_senders = std::move(senders);
    m.upstream_mailbox = std::move(upstream);
    return m;
}

engine make_engine(bool org_disabled, std::vector<mailbox> mailboxes) {
    policy_file p;
    p.org.smtp_client_authentication_disabled = org_disabled;
    p.mailboxes = std::move(mailboxes);
    return engine(std::move(p));
}

// The full precedence table of SmtpClientAuthenticationDisabled.
struct precedence_case {
    bool org_disabled;
    std::optional<bool> mailbox_disabled;
    bool allowed;
    auth_source source;
    const char* refusal;  // "tenant", "mailbox" or nullptr
};

void PrintTo(const precedence_case& c, std::ostream* os) {
    *os << "org=" << c.org_disabled << " mailbox="
        << (c.mailbox_disabled ? (*c.mailbox_disabled ? "true" : "false") : "$null");
}

class precedence : public ::testing::TestWithParam<precedence_case> {};

TEST_P(precedence, decides_like_exchange_online) {
    const auto& c = GetParam();
    const auto e = make_engine(c.org_disabled, {account("scanner@contoso.com", c.mailbox_disabled)});
    const auto* m = e.find("scanner@contoso.com");
    ASSERT_NE(m, nullptr);
    const auto d = e.may_authenticate(*m);
    EXPECT_EQ(d.allowed, c.allowed);
    EXPECT_EQ(d.source, c.source);
    if (c.refusal == nullptr) {
        EXPECT_FALSE(d.refusal.has_value());
        return;
    }
    ASSERT_TRUE(d.refusal.has_value());
    EXPECT_EQ(d.refusal->code, 535);
    EXPECT_EQ(d.refusal->enhanced, "5.7.139");
    ASSERT_EQ(d.refusal->lines.size(), 1U);
    if (std::string_view(c.refusal) == "tenant") {
        EXPECT_EQ(*d.refusal, smtp::replies::auth_disabled_for_tenant());
        EXPECT_THAT(d.refusal->lines[0], ::testing::HasSubstr("disabled for the Tenant"));
    } else {
        EXPECT_EQ(*d.refusal, smtp::replies::auth_disabled_for_mailbox());
        EXPECT_THAT(d.refusal->lines[0], ::testing::HasSubstr("disabled for the Mailbox"));
    }
}

INSTANTIATE_TEST_SUITE_P(
    table, precedence,
    ::testing::Values(
        // Mailbox true: disabled, whatever the organization says.
        precedence_case{true, true, false, auth_source::mailbox, "mailbox"},
        precedence_case{false, true, false, auth_source::mailbox, "mailbox"},
        // Mailbox false: enabled, even when the organization disables SMTP AUTH.
        precedence_case{true, false, true, auth_source::mailbox, nullptr},
        precedence_case{false, false, true, auth_source::mailbox, nullptr},
        // Mailbox unset ($null): the organization decides.
        precedence_case{true, std::nullopt, false, auth_source::organization, "tenant"},
        precedence_case{false, std::nullopt, true, auth_source::organization, nullptr}));

// What an open session gets at MAIL once its account is revoked: the
// decision's own 5.7.139 text, with 550 (535 answers AUTH only).
TEST(engine, recheck_at_mail_gives_the_decision_text_with_550) {
    const auto e = make_engine(true, {account("on@contoso.com", false), account("off@contoso.com", true),
                                      account("unset@contoso.com")});
    EXPECT_EQ(e.recheck_at_mail(*e.find("on@contoso.com")), std::nullopt);
    const auto off = e.recheck_at_mail(*e.find("off@contoso.com"));
    ASSERT_TRUE(off.has_value());
    EXPECT_EQ(off->summary(), "550 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                              "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.");
    const auto unset = e.recheck_at_mail(*e.find("unset@contoso.com"));
    ASSERT_TRUE(unset.has_value());
    EXPECT_EQ(unset->code, 550);
    EXPECT_EQ(unset->enhanced, "5.7.139");
    EXPECT_EQ(unset->lines, smtp::replies::auth_disabled_for_tenant().lines);
}

TEST(engine, find_is_case_insensitive) {
    const auto e = make_engine(true, {account("Scanner@Contoso.com"), account("printer@contoso.com")});
    const auto* m = e.find("scanner@CONTOSO.COM");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->identity, "Scanner@Contoso.com");
    ASSERT_NE(e.find("PRINTER@contoso.com"), nullptr);
    EXPECT_EQ(e.find("PRINTER@contoso.com")->identity, "printer@contoso.com");
    EXPECT_EQ(e.find("fax@contoso.com"), nullptr);
    EXPECT_EQ(e.find(""), nullptr);
    EXPECT_EQ(e.find("scanner@contoso.co"), nullptr);
}

TEST(engine, find_survives_copies) {
    const auto original = make_engine(true, {account("a@contoso.com"), account("b@contoso.com")});
    const engine copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
    const auto* m = copy.find("B@contoso.com");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m, &copy.file().mailboxes[1]);
}

TEST(engine, default_sender_is_the_identity_case_insensitively) {
    const auto e = make_engine(true, {account("scanner@contoso.com")});
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "scanner@contoso.com"), std::nullopt);
    EXPECT_EQ(e.check_sender("SCANNER@contoso.com", "Scanner@Contoso.COM"), std::nullopt);
    const auto refused = e.check_sender("scanner@contoso.com", "ceo@contoso.com");
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(*refused, smtp::replies::send_as_denied());
    EXPECT_EQ(refused->code, 550);
    EXPECT_EQ(refused->enhanced, "5.7.60");
}

TEST(engine, explicit_senders_replace_the_identity) {
    const auto e = make_engine(true, {account("scanner@contoso.com", false, {"noreply@contoso.com", "Scans@Contoso.com"})});
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "noreply@contoso.com"), std::nullopt);
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "NOREPLY@CONTOSO.COM"), std::nullopt);
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "scans@contoso.com"), std::nullopt);
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "scanner@contoso.com"), smtp::replies::send_as_denied())
        << "the identity is allowed only when listed";
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "noreply@contoso.com.evil.test"), smtp::replies::send_as_denied());
}

TEST(engine, unknown_accounts_are_refused) {
    const auto e = make_engine(false, {account("scanner@contoso.com")});
    EXPECT_EQ(e.check_sender("nobody@contoso.com", "nobody@contoso.com"), smtp::replies::send_as_denied());
    EXPECT_EQ(e.check_sender("nobody@contoso.com", ""), smtp::replies::send_as_denied());
}

// Devices send status reports from <>: relayed as the account, or refused.
TEST(engine, null_sender_is_rewritten_or_refused_per_account) {
    auto refusing = account("printer@contoso.com");
    refusing.null_sender = null_sender_mode::refuse;
    const auto e = make_engine(false, {account("Scanner@contoso.com"), refusing});
    EXPECT_EQ(e.check_sender("scanner@contoso.com", ""), std::nullopt);
    EXPECT_EQ(e.envelope_sender("scanner@contoso.com", ""), "Scanner@contoso.com");
    EXPECT_EQ(e.envelope_sender("scanner@contoso.com", "scanner@contoso.com"), "scanner@contoso.com");
    EXPECT_EQ(e.check_sender("printer@contoso.com", ""), smtp::replies::send_as_denied());
    EXPECT_EQ(e.envelope_sender("printer@contoso.com", ""), "");
}

TEST(engine, find_login_completes_a_bare_user_name) {
    const auto e = make_engine(false, {account("Scanner@contoso.com"), account("scanner@fabrikam.com")});
    EXPECT_EQ(e.find_login("scanner", "contoso.com"), e.find("scanner@contoso.com"));
    EXPECT_EQ(e.find_login("SCANNER", "fabrikam.com"), e.find("scanner@fabrikam.com"));
    EXPECT_EQ(e.find_login("scanner@fabrikam.com", "contoso.com"), e.find("scanner@fabrikam.com"));
    EXPECT_EQ(e.find_login("scanner", ""), nullptr) << "no default domain: names are used as given";
    EXPECT_EQ(e.find_login("scanner@", "contoso.com"), nullptr);
    EXPECT_EQ(e.find_login("", "contoso.com"), nullptr);
    EXPECT_EQ(e.find_login("printer", "contoso.com"), nullptr);
}

TEST(engine, upstream_mailbox_for) {
    const auto e = make_engine(true, {account("scanner@contoso.com", std::nullopt, {}, "scans@contoso.com"),
                                      account("printer@contoso.com")});
    EXPECT_EQ(e.upstream_mailbox_for("Scanner@Contoso.com"), "scans@contoso.com");
    EXPECT_EQ(e.upstream_mailbox_for("printer@contoso.com"), "");
    EXPECT_EQ(e.upstream_mailbox_for("nobody@contoso.com"), "");
}

TEST(engine, upstream_mailboxes_this_node_is_configured_for) {
    conf::config cfg;
    cfg.upstream.mailbox = "relay@contoso.com";
    conf::oauth_config google;
    google.name = "google";
    google.mailboxes = {"printers@fabrikam.com"};
    cfg.oauth_profiles.push_back(google);
    const auto e = make_engine(true, {account("scanner@contoso.com", std::nullopt, {}, "scans@contoso.com")});
    for (const char* known : {"", "relay@contoso.com", "Relay@Contoso.com", "printers@fabrikam.com", "scans@contoso.com"})
        EXPECT_TRUE(upstream_mailbox_configured(cfg, &e, known)) << known;
    EXPECT_FALSE(upstream_mailbox_configured(cfg, &e, "other@contoso.com"));
    EXPECT_FALSE(upstream_mailbox_configured(cfg, nullptr, "scans@contoso.com"));
    cfg.oauth.subject = "other@contoso.com";  // a service account acting as it
    EXPECT_TRUE(upstream_mailbox_configured(cfg, &e, "other@contoso.com"));
    // Where the mailbox decides nothing, any is.
    cfg.upstream.auth = conf::upstream_auth::none;
    EXPECT_TRUE(upstream_mailbox_configured(cfg, &e, "anyone@contoso.com"));
    cfg.upstream.auth = conf::upstream_auth::xoauth2;
    cfg.upstream.kind = conf::upstream_kind::directory;
    EXPECT_TRUE(upstream_mailbox_configured(cfg, &e, "anyone@contoso.com"));
}

TEST(engine, works_on_a_loaded_file) {
    const auto r = load_text(R"(
[organization]
smtp_client_authentication_disabled = true

[[mailbox]]
identity = "scanner@contoso.com"
password_hash = "$y$j9T$salt$hash"
smtp_client_authentication_disabled = false
allowed_senders = ["scans@contoso.com"]
upstream_mailbox = "relay@contoso.com"

[[mailbox]]
identity = "printer@contoso.com"
password_hash = "$6$salt$hash"
)",
                             "policy.toml");
    ASSERT_TRUE(r.ok());
    const engine e(r.policy);
    const auto* scanner = e.find("SCANNER@contoso.com");
    const auto* printer = e.find("printer@contoso.com");
    ASSERT_NE(scanner, nullptr);
    ASSERT_NE(printer, nullptr);
    EXPECT_TRUE(e.may_authenticate(*scanner).allowed);
    const auto refused = e.may_authenticate(*printer);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.source, auth_source::organization);
    EXPECT_EQ(refused.refusal, smtp::replies::auth_disabled_for_tenant());
    EXPECT_EQ(e.check_sender("scanner@contoso.com", "scans@contoso.com"), std::nullopt);
    EXPECT_EQ(e.check_sender("printer@contoso.com", "printer@contoso.com"), std::nullopt);
    EXPECT_EQ(e.upstream_mailbox_for("scanner@contoso.com"), "relay@contoso.com");
}

}  // namespace
}  // namespace subrelay::policy
