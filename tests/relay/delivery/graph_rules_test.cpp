#include "relay/delivery/graph_rules.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace subrelay::relay {
namespace {

using ::testing::HasSubstr;
using kind = graph_outcome::kind;

graph_answer answer(int status, std::string code = {}, std::optional<std::chrono::seconds> retry_after = {}) {
    graph_answer a;
    a.status = status;
    a.error_code = std::move(code);
    a.retry_after = retry_after;
    return a;
}

TEST(graph_rules, accepted_is_sent) {
    const auto o = classify_graph(answer(202), "relay@contoso.com", false);
    EXPECT_EQ(o.what, kind::sent);
    EXPECT_EQ(o.reply.code, 250);
}

TEST(graph_rules, throttling_pauses_the_mailbox_for_its_retry_after) {
    auto o = classify_graph(answer(429, "ApplicationThrottled", std::chrono::seconds(7)), "relay@contoso.com", false);
    EXPECT_EQ(o.what, kind::pause_mailbox);
    EXPECT_EQ(o.wait, std::chrono::seconds(7));
    EXPECT_EQ(o.reply.code / 100, 4);
    o = classify_graph(answer(503), "relay@contoso.com", false);
    EXPECT_EQ(o.what, kind::pause_mailbox);
    EXPECT_EQ(o.wait, std::chrono::seconds(60)) << "without Retry-After, a minute";
}

TEST(graph_rules, a_401_renews_the_token_once) {
    EXPECT_EQ(classify_graph(answer(401, "InvalidAuthenticationToken"), "relay@contoso.com", false).what,
              kind::renew_token);
    const auto o = classify_graph(answer(401, "InvalidAuthenticationToken"), "relay@contoso.com", true);
    EXPECT_EQ(o.what, kind::mailbox_unavailable);
    EXPECT_THAT(o.hint, HasSubstr("Mail.Send"));
}

TEST(graph_rules, a_missing_permission_or_mailbox_is_the_mailboxs_failure_with_its_fix) {
    auto o = classify_graph(answer(403, "ErrorAccessDenied"), "relay@contoso.com", false);
    EXPECT_EQ(o.what, kind::mailbox_unavailable);
    EXPECT_THAT(o.hint, HasSubstr("Test-ApplicationAccessPolicy -Identity relay@contoso.com"));
    EXPECT_EQ(o.reply.code / 100, 4) << "the messages wait";
    o = classify_graph(answer(404, "MailboxNotEnabledForRESTAPI"), "relay@contoso.com", false);
    EXPECT_EQ(o.what, kind::mailbox_unavailable);
    EXPECT_THAT(o.hint, HasSubstr("Exchange Online mailbox"));
}

TEST(graph_rules, what_fails_for_good_bounces_with_a_fitting_status) {
    auto o = classify_graph(answer(403, "ErrorSendAsDenied"), "relay@contoso.com", false);
    EXPECT_EQ(o.what, kind::failed);
    EXPECT_EQ(o.reply.enhanced, "5.7.60");
    EXPECT_THAT(o.hint, HasSubstr("Add-RecipientPermission"));
    EXPECT_EQ(classify_graph(answer(400, "ErrorInvalidRecipients"), "m", false).reply.enhanced, "5.1.1");
    EXPECT_EQ(classify_graph(answer(413, "ErrorMessageSizeExceeded"), "m", false).reply.enhanced, "5.3.4");
    EXPECT_EQ(classify_graph(answer(400, "ErrorMimeContentInvalidBase64String"), "m", false).what, kind::failed);
}

TEST(graph_rules, an_unknown_answer_waits_rather_than_bounces) {
    EXPECT_EQ(classify_graph(answer(400, "SomethingNew"), "m", false).what, kind::retry);
    EXPECT_EQ(classify_graph(answer(500), "m", false).what, kind::retry);
}

TEST(graph_rules, the_error_body_and_retry_after_are_read) {
    graph_answer a;
    read_graph_error(R"({"error":{"code":"ErrorAccessDenied","message":"Access is denied.","innerError":{}}})", a);
    EXPECT_EQ(a.error_code, "ErrorAccessDenied");
    EXPECT_EQ(a.error_message, "Access is denied.");
    graph_answer none;
    read_graph_error("not json", none);
    read_graph_error(R"({"value":[]})", none);
    EXPECT_TRUE(none.error_code.empty() && none.error_message.empty());
    EXPECT_EQ(parse_retry_after(" 120 "), std::chrono::seconds(120));
    EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), std::nullopt);
    EXPECT_EQ(parse_retry_after("-5"), std::nullopt);
    EXPECT_EQ(parse_retry_after(""), std::nullopt);
    EXPECT_EQ(parse_retry_after("999999999"), std::chrono::seconds(24 * 3600)) << "capped at a day";
}

}  // namespace
}  // namespace subrelay::relay
