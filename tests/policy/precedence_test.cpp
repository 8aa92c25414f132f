// The whole SMTP AUTH precedence, in Exchange Online's order: security
// defaults, then the authentication policy (the mailbox's own or the
// organization default), then SmtpClientAuthenticationDisabled (mailbox
// true/false wins, unset leaves it to the organization).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <tuple>

#include "policy/policy.hpp"

namespace subrelay::policy {
namespace {

using ::testing::ElementsAre;

enum class auth_policy { none, allow_on_mailbox, allow_as_default, deny_on_mailbox, deny_as_default };

const char* name(auth_policy p) {
    switch (p) {
        case auth_policy::none: return "none";
        case auth_policy::allow_on_mailbox: return "allow_on_mailbox";
        case auth_policy::allow_as_default: return "allow_as_default";
        case auth_policy::deny_on_mailbox: return "deny_on_mailbox";
        case auth_policy::deny_as_default: return "deny_as_default";
    }
    return "?";
}

// security_defaults, authentication policy, organization disabled, mailbox disabled
using row = std::tuple<bool, auth_policy, bool, std::optional<bool>>;

policy_file make_policy(const row& r) {
    const auto& [security_defaults, ap, org_disabled, mailbox_disabled] = r;
    policy_file p;
    p.org.security_defaults = security_defaults;
    p.org.smtp_client_authentication_disabled = org_disabled;
    p.authentication_policies = {{"Allow Basic Auth", true}, {"Block Basic Auth", false}};
    mailbox m;
    m.identity = "scanner@contoso.com";
    m.password_hash = "$y$j9T$salt$hash";
    m.smtp_client_authentication_disabled = mailbox_disabled;
    switch (ap) {
        case auth_policy::none: break;
        case auth_policy::allow_on_mailbox: m.authentication_policy = "Allow Basic Auth"; break;
        case auth_policy::allow_as_default: p.org.default_authentication_policy = "Allow Basic Auth"; break;
        case auth_policy::deny_on_mailbox: m.authentication_policy = "Block Basic Auth"; break;
        case auth_policy::deny_as_default: p.org.default_authentication_policy = "Block Basic Auth"; break;
    }
    p.mailboxes.push_back(std::move(m));
    return p;
}

struct expectation {
    bool allowed;
    auth_source source;
    std::optional<smtp::reply> refusal;
};

// The rules as Microsoft documents them, written as plainly as possible.
expectation expected(const row& r) {
    const auto& [security_defaults, ap, org_disabled, mailbox_disabled] = r;
    if (security_defaults) return {false, auth_source::security_defaults, replies::security_defaults()};
    if (ap == auth_policy::deny_on_mailbox || ap == auth_policy::deny_as_default) {
        return {false, auth_source::authentication_policy, replies::basic_auth_disabled()};
    }
    if (mailbox_disabled == true) return {false, auth_source::mailbox, smtp::replies::auth_disabled_for_mailbox()};
    if (mailbox_disabled == false) return {true, auth_source::mailbox, std::nullopt};
    if (org_disabled) return {false, auth_source::organization, smtp::replies::auth_disabled_for_tenant()};
    return {true, auth_source::organization, std::nullopt};
}

std::string row_name(const ::testing::TestParamInfo<row>& row_info) {
    const auto& [sd, ap, org, mbx] = row_info.param;
    return std::string(sd ? "security_defaults_on" : "security_defaults_off") + "_" + name(ap) + "_org_" +
           (org ? "true" : "false") + "_mailbox_" + (mbx ? (*mbx ? "true" : "false") : "unset");
}

class full_precedence : public ::testing::TestWithParam<row> {};

TEST_P(full_precedence, matches_exchange_online) {
    const auto& r = GetParam();
    const engine e(make_policy(r));
    const auto* m = e.find("scanner@contoso.com");
    ASSERT_NE(m, nullptr);
    const auto d = e.may_authenticate(*m);
    const auto want = expected(r);
    EXPECT_EQ(d.allowed, want.allowed);
    EXPECT_EQ(d.source, want.source);
    EXPECT_EQ(d.refusal, want.refusal);
    ASSERT_FALSE(d.steps.empty());
    ASSERT_EQ(d.steps.size(), 5U);
    EXPECT_THAT(d.steps.back(), ::testing::StartsWith(want.allowed ? "Effective: enabled" : "Effective: disabled ("));
}

INSTANTIATE_TEST_SUITE_P(
    all, full_precedence,
    ::testing::Combine(::testing::Bool(),
                       ::testing::Values(auth_policy::none, auth_policy::allow_on_mailbox, auth_policy::allow_as_default,
                                         auth_policy::deny_on_mailbox, auth_policy::deny_as_default),
                       ::testing::Bool(), ::testing::Values(std::optional<bool>(), std::optional<bool>(true),
                                                            std::optional<bool>(false))),
    row_name);

// The same rules spelled out, so that a wrong oracle cannot hide a wrong engine.
TEST(precedence_rows, spelled_out) {
    const auto decide = [](const row& r) {
        const engine e(make_policy(r));
        return e.may_authenticate(*e.find("scanner@contoso.com"));
    };
    // Security defaults beat a mailbox explicitly enabled and an allowing policy.
    auto d = decide({true, auth_policy::allow_on_mailbox, false, false});
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.refusal->summary(),
              "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. "
              "Contact your administrator.");
    // A blocking policy beats a mailbox explicitly enabled.
    d = decide({false, auth_policy::deny_as_default, false, false});
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.refusal->summary(), "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.");
    // An allowing policy does not enable what the organization disables.
    d = decide({false, auth_policy::allow_on_mailbox, true, std::nullopt});
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.refusal, smtp::replies::auth_disabled_for_tenant());
    // Mailbox false overrides the organization.
    d = decide({false, auth_policy::allow_as_default, true, false});
    EXPECT_TRUE(d.allowed);
    EXPECT_FALSE(d.refusal.has_value());
    // Mailbox true beats an organization that allows.
    d = decide({false, auth_policy::none, false, true});
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.refusal, smtp::replies::auth_disabled_for_mailbox());
}

TEST(precedence_rows, the_mailbox_policy_replaces_the_organization_default) {
    auto p = make_policy({false, auth_policy::deny_as_default, false, std::nullopt});
    p.mailboxes[0].authentication_policy = "allow basic auth";  // names compare case-insensitively
    const engine e(p);
    const auto d = e.may_authenticate(*e.find("scanner@contoso.com"));
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.steps[1], "AuthenticationPolicy: Allow Basic Auth (AllowBasicAuthSmtp = True)");

    p.mailboxes[0].authentication_policy = "Block Basic Auth";
    p.org.default_authentication_policy = "Allow Basic Auth";
    const engine blocked(p);
    EXPECT_EQ(blocked.may_authenticate(*blocked.find("scanner@contoso.com")).refusal, replies::basic_auth_disabled());
}

TEST(precedence_rows, an_undefined_policy_fails_closed) {
    // Not possible in a loaded file (an error), but an engine built by hand must not open up.
    auto p = make_policy({false, auth_policy::none, false, false});
    p.mailboxes[0].authentication_policy = "Missing";
    const engine e(p);
    const auto d = e.may_authenticate(*e.find("scanner@contoso.com"));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.source, auth_source::authentication_policy);
}

TEST(explain, mailbox_false_under_an_organization_that_disables) {
    const engine e(make_policy({false, auth_policy::none, true, false}));
    const auto d = e.may_authenticate(*e.find("scanner@contoso.com"));
    EXPECT_THAT(d.steps, ElementsAre("SecurityDefaults: False", "AuthenticationPolicy: none",
                                     "Organization: SmtpClientAuthenticationDisabled = True",
                                     "Mailbox: SmtpClientAuthenticationDisabled = False (overrides the organization)",
                                     "Effective: enabled"));
}

TEST(explain, unset_mailbox_with_a_blocking_default_policy) {
    const engine e(make_policy({false, auth_policy::deny_as_default, false, std::nullopt}));
    const auto d = e.may_authenticate(*e.find("scanner@contoso.com"));
    EXPECT_THAT(d.steps,
                ElementsAre("SecurityDefaults: False",
                            "AuthenticationPolicy: Block Basic Auth (AllowBasicAuthSmtp = False) (organization default)",
                            "Organization: SmtpClientAuthenticationDisabled = False",
                            "Mailbox: SmtpClientAuthenticationDisabled = (unset: the organization decides)",
                            "Effective: disabled (authentication policy Block Basic Auth)"));
}

TEST(explain, security_defaults_and_the_tenant) {
    const engine sd(make_policy({true, auth_policy::none, true, std::nullopt}));
    auto d = sd.may_authenticate(*sd.find("scanner@contoso.com"));
    EXPECT_EQ(d.steps.front(), "SecurityDefaults: True");
    EXPECT_EQ(d.steps.back(), "Effective: disabled (security defaults)");

    const engine tenant(make_policy({false, auth_policy::allow_on_mailbox, true, std::nullopt}));
    d = tenant.may_authenticate(*tenant.find("scanner@contoso.com"));
    EXPECT_THAT(d.steps, ElementsAre("SecurityDefaults: False",
                                     "AuthenticationPolicy: Allow Basic Auth (AllowBasicAuthSmtp = True)",
                                     "Organization: SmtpClientAuthenticationDisabled = True",
                                     "Mailbox: SmtpClientAuthenticationDisabled = (unset: the organization decides)",
                                     "Effective: disabled (organization)"));
}

TEST(replies_text, exact) {
    EXPECT_EQ(replies::security_defaults().wire(),
              "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. "
              "Contact your administrator.\r\n");
    EXPECT_EQ(replies::basic_auth_disabled().wire(),
              "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.\r\n");
    EXPECT_EQ(replies::recipient_domain_not_allowed("fabrikam.com").wire(),
              "550 5.7.1 Recipient domain fabrikam.com is not allowed for this account\r\n");
    EXPECT_EQ(replies::message_rate_exceeded().wire(),
              "421 4.4.2 Message submission rate for this client has exceeded the configured limit\r\n");
    EXPECT_EQ(replies::daily_recipients_exceeded().wire(),
              "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due "
              "to a permanent exception with message Cannot submit message.\r\n");
    EXPECT_EQ(replies::too_many_recipients().wire(), "452 4.5.3 Too many recipients\r\n");
}

}  // namespace
}  // namespace subrelay::policy
