#include "relay/delivery/rules.hpp"

#include <gtest/gtest.h>

#include "relay/spool/queue_state.hpp"

using namespace std::chrono_literals;
using subrelay::relay::classification;
using subrelay::relay::queue_state;
using subrelay::relay::retry_schedule;

namespace {

TEST(queue_schedule, backoff_doubles_up_to_the_cap) {
    retry_schedule s;
    s.initial = 300s;
    s.max = 3600s;
    EXPECT_EQ(subrelay::relay::backoff(s, 0), 300s);
    EXPECT_EQ(subrelay::relay::backoff(s, 1), 300s);
    EXPECT_EQ(subrelay::relay::backoff(s, 2), 600s);
    EXPECT_EQ(subrelay::relay::backoff(s, 3), 1200s);
    EXPECT_EQ(subrelay::relay::backoff(s, 4), 2400s);
    EXPECT_EQ(subrelay::relay::backoff(s, 5), 3600s);
    EXPECT_EQ(subrelay::relay::backoff(s, 1000), 3600s);
    EXPECT_EQ(subrelay::relay::backoff(s, 4000000000u), 3600s);
}

TEST(queue_schedule, expiry_and_delay_warning) {
    retry_schedule s;
    s.lifetime = 5 * 24h;
    s.delay_warning = 4h;
    const std::int64_t received = 1700000000;
    EXPECT_FALSE(subrelay::relay::expired(s, received, received + 5 * 86400 - 1));
    EXPECT_TRUE(subrelay::relay::expired(s, received, received + 5 * 86400));

    queue_state st;
    EXPECT_FALSE(subrelay::relay::delay_warning_due(s, st, received, received + 4 * 3600 - 1));
    EXPECT_TRUE(subrelay::relay::delay_warning_due(s, st, received, received + 4 * 3600));
    // Expired messages bounce instead.
    EXPECT_FALSE(subrelay::relay::delay_warning_due(s, st, received, received + 5 * 86400));
    st.delay_warned = true;
    EXPECT_FALSE(subrelay::relay::delay_warning_due(s, st, received, received + 4 * 3600));
    st.delay_warned = false;
    s.delay_warning = 0s;
    EXPECT_FALSE(subrelay::relay::delay_warning_due(s, st, received, received + 4 * 3600));
}

struct classify_case {
    int code;
    const char* enhanced;
    const char* text;
    const char* stage;
    bool permanent;
    bool throttled;
    bool auth;
    const char* hint;  // substring of the hint; "" = no hint
};

TEST(queue_classify, known_replies) {
    const classify_case cases[] = {
        {535, "5.7.139",
         "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit "
         "https://aka.ms/smtp_auth_disabled for more information.",
         "auth", true, false, true,
         "Set-CASMailbox -Identity relay@contoso.com -SmtpClientAuthenticationDisabled $false"},
        {535, "5.7.139",
         "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit "
         "https://aka.ms/smtp_auth_disabled for more information.",
         "auth", true, false, true, "Set-TransportConfig -SmtpClientAuthenticationDisabled $false"},
        {535, "5.7.139",
         "Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact "
         "your administrator.",
         "auth", true, false, true, "security defaults block SMTP AUTH"},
        {535, "5.7.3", "Authentication unsuccessful", "auth", true, false, true,
         "Add-MailboxPermission -Identity relay@contoso.com -User <service principal id> -AccessRights FullAccess"},
        {535, "5.7.3", "Authentication unsuccessful", "auth", true, false, true, "New-ServicePrincipal"},
        {530, "5.7.57", "Client not authenticated to send mail.", "mail", true, false, true, "upstream.auth"},
        {550, "5.7.60", "SMTP; Client does not have permissions to send as this sender", "mail", true, false, false,
         "Add-RecipientPermission -Identity <sender> -Trustee relay@contoso.com -AccessRights SendAs"},
        {554, "5.2.0",
         "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message",
         "data", true, false, false, "may not send as this sender"},
        {432, "4.3.2", "Concurrent connections limit exceeded.", "connect", false, true, false,
         "upstream.max_connections_per_mailbox"},
        {554, "5.2.0",
         "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a "
         "permanent exception with message Cannot submit message.",
         "data", true, false, false, "10,000 recipients a day"},
        {421, "4.7.66", "TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2.",
         "connect", false, false, false, "TLS 1.2"},
        {0, "", "error:0A00042E:SSL routines::tlsv1 alert protocol version", "tls", false, false, false,
         "upstream.tls"},
        {550, "5.7.30", "Basic authentication is not supported for Client Submission.", "auth", true, false, true,
         "upstream.auth = \"xoauth2\""},
        {535, "5.7.8", "Username and Password not accepted. For more information, go to", "auth", true, false, true,
         "https://mail.google.com/"},
        {534, "5.7.9", "Please log in with your web browser and then try again.", "auth", true, false, true,
         "Google Workspace admin"},
        {451, "4.7.500", "Server busy. Please try again later from [192.0.2.1]. (S77714)", "mail", false, true,
         false, "throttling relay@contoso.com"},
        {421, "4.7.28", "Gmail has detected an unusual rate of unsolicited mail.", "data", false, true, false,
         "throttling"},
        {421, "4.7.0", "Try again later, closing connection. (rate limit exceeded)", "mail", false, true, false,
         "throttling"},
        {450, "4.7.1", "Message submission rate for this client has exceeded the configured limit", "mail", false,
         true, false, "throttling"},
        {451, "4.3.0", "Requests are being throttled", "data", false, true, false, "throttling"},
        // Not ours to slow down for: the recipient's mailbox, too many recipients, shutdown.
        {450, "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages",
         "rcpt", false, false, false, ""},
        {452, "4.5.3", "Too many recipients", "rcpt", false, false, false, ""},
        {421, "4.3.2", "Service shutting down", "mail", false, false, false, ""},
        // Plain failures.
        {550, "5.1.1", "User unknown", "rcpt", true, false, false, ""},
        {0, "", "connection refused", "connect", false, false, false, ""},
        {0, "", "connection reset", "auth", false, false, false, ""},
        {454, "4.7.0", "Temporary authentication failure", "auth", false, false, true, ""},
        {250, "2.0.0", "OK", "data", false, false, false, ""},
    };
    for (const auto& c : cases) {
        subrelay::smtp::reply r(c.code, c.enhanced, c.text);
        classification got = subrelay::relay::classify(r, c.stage, "relay@contoso.com");
        SCOPED_TRACE(r.summary() + " at " + c.stage);
        EXPECT_EQ(got.permanent, c.permanent);
        EXPECT_EQ(got.throttled, c.throttled);
        EXPECT_EQ(got.auth, c.auth);
        if (std::string(c.hint).empty()) {
            EXPECT_EQ(got.hint, "");
        } else {
            EXPECT_NE(got.hint.find(c.hint), std::string::npos) << got.hint;
        }
        EXPECT_EQ(got.hint.find('\n'), std::string::npos);
        EXPECT_EQ(got.hint.find("MAILBOX"), std::string::npos) << got.hint;
    }
}

TEST(queue_classify, finds_the_enhanced_code_in_the_text) {
    subrelay::smtp::reply r(535, "", "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.");
    auto c = subrelay::relay::classify(r, "auth", "svc@contoso.com");
    EXPECT_TRUE(c.auth);
    EXPECT_EQ(c.hint, "the service mailbox needs SMTP AUTH: Set-CASMailbox -Identity svc@contoso.com "
                      "-SmtpClientAuthenticationDisabled $false");
}

TEST(queue_classify, names_a_placeholder_without_a_mailbox) {
    auto c = subrelay::relay::classify(subrelay::smtp::replies::send_as_denied(), "mail", "");
    EXPECT_NE(c.hint.find("-Trustee <mailbox>"), std::string::npos) << c.hint;
}

}  // namespace
