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

// The message as it goes to Graph: the relay's Received: first, then a
// Bcc: for the recipients no header field names, then the rest unchanged.
constexpr std::string_view received = "Received: from printer (printer [192.0.2.7])\r\n\tby relay; Sat, 5 Dec 2026\r\n";

TEST(graph_message, recipients_missing_from_the_header_go_in_a_bcc_after_the_received_field) {
    const std::string body = "From: scanner@contoso.com\r\nTo: a@example.org\r\nSubject: scan\r\n\r\nhello\r\n";
    const auto out = graph_message(std::string(received) + body, {"a@example.org", "b@example.org"},
                                   {"a@example.org", "b@example.org"});
    ASSERT_TRUE(std::holds_alternative<std::string>(out));
    EXPECT_EQ(std::get<std::string>(out), std::string(received) + "Bcc: b@example.org\r\n" + body);
}

TEST(graph_message, a_message_whose_header_names_every_recipient_is_unchanged) {
    const std::string m = std::string(received) + "To: A@Example.org\r\nCc: b@example.org\r\n\r\nhi\r\n";
    const auto out = graph_message(m, {"a@example.org", "B@example.org"}, {"a@example.org", "B@example.org"});
    ASSERT_TRUE(std::holds_alternative<std::string>(out));
    EXPECT_EQ(std::get<std::string>(out), m);
}

TEST(graph_message, a_header_address_that_is_no_recipient_is_refused) {
    const std::string m = std::string(received) + "To: a@example.org\r\nCc: boss@elsewhere.example\r\n\r\nhi\r\n";
    const auto out = graph_message(m, {"a@example.org"}, {"a@example.org"});
    ASSERT_TRUE(std::holds_alternative<smtp::reply>(out));
    EXPECT_EQ(std::get<smtp::reply>(out).code, 550);
    EXPECT_THAT(std::get<smtp::reply>(out).summary(), HasSubstr("<boss@elsewhere.example>"));
}

TEST(graph_message, a_recipient_delivered_before_may_be_named_again) {
    // b got it in an earlier attempt: the header still names it, and Graph
    // may send it once more (a duplicate, never a stranger).
    const std::string m = std::string(received) + "To: a@example.org, b@example.org\r\n\r\nhi\r\n";
    const auto out = graph_message(m, {"a@example.org"}, {"a@example.org", "b@example.org"});
    ASSERT_TRUE(std::holds_alternative<std::string>(out));
    EXPECT_EQ(std::get<std::string>(out), m);
}

TEST(graph_message, an_unreadable_address_field_is_refused) {
    const std::string m = std::string(received) + "To: \"unterminated <a@example.org>\r\n\r\nhi\r\n";
    const auto out = graph_message(m, {"a@example.org"}, {"a@example.org"});
    ASSERT_TRUE(std::holds_alternative<smtp::reply>(out));
    EXPECT_EQ(std::get<smtp::reply>(out).summary().substr(0, 9), "550 5.6.0");
}

TEST(graph_message, a_message_without_a_body_gets_its_bcc_in_the_header) {
    const auto out = graph_message(std::string(received) + "Subject: x\r\n", {"a@example.org"}, {"a@example.org"});
    ASSERT_TRUE(std::holds_alternative<std::string>(out));
    EXPECT_EQ(std::get<std::string>(out), std::string(received) + "Bcc: a@example.org\r\nSubject: x\r\n");
}

TEST(graph_paths, the_mailbox_is_one_path_segment) {
    EXPECT_EQ(graph_send_path("relay@contoso.com"), "/v1.0/users/relay@contoso.com/sendMail");
    EXPECT_EQ(graph_user_path("a b/c?d#e%@x.example"), "/v1.0/users/a%20b%2Fc%3Fd%23e%25@x.example");
}

TEST(graph_paths, drafts_are_messages_of_the_mailbox) {
    EXPECT_EQ(graph_messages_path("relay@contoso.com"), "/v1.0/users/relay@contoso.com/messages");
    // Graph's ids carry '=' and may carry '/' (base64): one segment all the same.
    EXPECT_EQ(graph_message_path("relay@contoso.com", "AAMk/AD="), "/v1.0/users/relay@contoso.com/messages/AAMk%2FAD=");
    EXPECT_EQ(graph_draft_send_path("relay@contoso.com", "AAMkAD="),
              "/v1.0/users/relay@contoso.com/messages/AAMkAD=/send");
}

TEST(graph_drafts, the_created_id_and_the_delete_after_submit_mark) {
    EXPECT_EQ(read_created_id(R"({"id":"AAMkAD=","isDraft":true})"), "AAMkAD=");
    EXPECT_EQ(read_created_id(R"({"isDraft":true})"), "");
    EXPECT_EQ(read_created_id("not json"), "");
    EXPECT_EQ(delete_after_submit_patch(),
              R"({"singleValueExtendedProperties":[{"id":"Boolean 0x0E01","value":"true"}]})");
    EXPECT_THAT(draft_access_hint("relay@contoso.com"), HasSubstr("Mail.ReadWrite"));
    EXPECT_THAT(draft_access_hint("relay@contoso.com"), HasSubstr("save_to_sent_items = true"));
}

}  // namespace
}  // namespace subrelay::relay
