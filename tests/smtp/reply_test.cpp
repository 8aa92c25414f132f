#include "smtp/reply.hpp"

#include <gtest/gtest.h>

namespace subrelay::smtp {
namespace {

TEST(enhanced_status_in, a_reply_summary_or_a_reason_of_our_own) {
    EXPECT_EQ(enhanced_status_in("550 5.1.1 User unknown"), "5.1.1");
    EXPECT_EQ(enhanced_status_in("4.4.7 message expired"), "4.4.7");
    EXPECT_EQ(enhanced_status_in("451 4.7.500 Server busy"), "4.7.500");
    EXPECT_EQ(enhanced_status_in("550 User unknown 5.1.1"), std::nullopt);  // only the first two words
    EXPECT_EQ(enhanced_status_in("connection refused"), std::nullopt);
    EXPECT_EQ(enhanced_status_in("250 2.x.0 no"), std::nullopt);
    EXPECT_EQ(enhanced_status_in(""), std::nullopt);
}

TEST(reply, wire_single_line_with_enhanced_code) {
    EXPECT_EQ(reply(250, "2.1.0", "Sender ok").wire(), "250 2.1.0 Sender ok\r\n");
}

TEST(reply, wire_without_enhanced_code) {
    EXPECT_EQ(reply(220, "", "mx ESMTP subrelay").wire(), "220 mx ESMTP subrelay\r\n");
    EXPECT_EQ(reply(334, "", "").wire(), "334 \r\n");
}

TEST(reply, wire_multi_line_repeats_enhanced_code_on_every_line) {
    reply r(250, "2.0.0", std::vector<std::string>{"x", "y", "z"});
    EXPECT_EQ(r.wire(), "250-2.0.0 x\r\n250-2.0.0 y\r\n250 2.0.0 z\r\n");
    reply e(250, "", std::vector<std::string>{"host", "PIPELINING"});
    EXPECT_EQ(e.wire(), "250-host\r\n250 PIPELINING\r\n");
}

TEST(reply, wire_empty_text_with_enhanced_code) {
    EXPECT_EQ(reply(250, "2.0.0", "").wire(), "250 2.0.0\r\n");
}

TEST(reply, summary_joins_lines) {
    reply r(250, "2.0.0", std::vector<std::string>{"a", "b"});
    EXPECT_EQ(r.summary(), "250 2.0.0 a / b");
    EXPECT_EQ(reply(220, "", "hi").summary(), "220 hi");
}

TEST(reply, classes) {
    EXPECT_TRUE(reply(250, "2.0.0", "").positive());
    EXPECT_TRUE(reply(354, "", "").positive());
    EXPECT_TRUE(reply(451, "4.3.0", "").transient());
    EXPECT_FALSE(reply(451, "4.3.0", "").permanent());
    EXPECT_TRUE(reply(550, "5.7.60", "").permanent());
}

TEST(replies, exact_exchange_texts) {
    EXPECT_EQ(replies::auth_credentials_incorrect().wire(),
              "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.\r\n");
    EXPECT_EQ(replies::auth_disabled_for_tenant().wire(),
              "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
              "Visit https://aka.ms/smtp_auth_disabled for more information.\r\n");
    EXPECT_EQ(replies::auth_disabled_for_mailbox().wire(),
              "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. "
              "Visit https://aka.ms/smtp_auth_disabled for more information.\r\n");
    EXPECT_EQ(replies::not_authenticated().wire(), "530 5.7.57 Client not authenticated to send mail.\r\n");
    EXPECT_EQ(replies::send_as_denied().wire(),
              "550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n");
    EXPECT_EQ(replies::concurrent_connections_exceeded().wire(), "432 4.3.2 Concurrent connections limit exceeded.\r\n");
}

TEST(replies, session_texts) {
    EXPECT_EQ(replies::greeting("mx.test").wire(), "220 mx.test ESMTP subrelay\r\n");
    EXPECT_EQ(replies::ok().wire(), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(replies::ok("2.1.5").wire(), "250 2.1.5 Ok\r\n");
    EXPECT_EQ(replies::closing("mx.test").wire(), "221 2.0.0 Bye\r\n");
    EXPECT_EQ(replies::shutting_down("mx.test").wire(), "421 4.3.2 Service shutting down\r\n");
    EXPECT_EQ(replies::timeout("mx.test").wire(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
    EXPECT_EQ(replies::temporary_failure().wire(), "451 4.3.0 Temporary failure, try again later\r\n");
    EXPECT_EQ(replies::permanent_failure().wire(), "554 5.3.0 Transaction failed\r\n");
}

TEST(reply_parser, single_line_with_enhanced_code) {
    reply_parser p;
    p.feed("250 2.1.0 Sender OK\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 250);
    EXPECT_EQ(r->enhanced, "2.1.0");
    EXPECT_EQ(r->lines, std::vector<std::string>{"Sender OK"});
    EXPECT_FALSE(p.next());
    EXPECT_FALSE(p.has_buffered());
}

TEST(reply_parser, multi_line_ehlo) {
    reply_parser p;
    p.feed("250-smtp.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n");
    EXPECT_FALSE(p.next());  // incomplete: the last line has not arrived
    p.feed("250 AUTH LOGIN XOAUTH2\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 250);
    EXPECT_EQ(r->enhanced, "");
    ASSERT_EQ(r->lines.size(), 4u);
    EXPECT_EQ(r->lines[0], "smtp.office365.com Hello [192.0.2.1]");
    EXPECT_EQ(r->lines[3], "AUTH LOGIN XOAUTH2");
}

TEST(reply_parser, multi_line_with_enhanced_code_round_trips) {
    reply original(550, "5.7.60", std::vector<std::string>{"first", "second"});
    reply_parser p;
    p.feed(original.wire());
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, original);
}

TEST(reply_parser, byte_by_byte) {
    const std::string text = "220 mx ready\r\n354 go ahead\r\n";
    reply_parser p;
    std::vector<reply> got;
    for (const char c : text) {
        p.feed(std::string_view(&c, 1));
        while (auto r = p.next()) got.push_back(*r);
    }
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].code, 220);
    EXPECT_EQ(got[1].code, 354);
    EXPECT_EQ(got[1].lines[0], "go ahead");
}

TEST(reply_parser, several_replies_in_one_feed) {
    reply_parser p;
    p.feed("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n");
    EXPECT_EQ(p.next()->enhanced, "2.1.0");
    EXPECT_EQ(p.next()->enhanced, "2.1.5");
    EXPECT_EQ(p.next()->code, 354);
    EXPECT_FALSE(p.next());
}

TEST(reply_parser, bare_code_and_lf_only_lines) {
    reply_parser p;
    p.feed("334\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 334);
    EXPECT_EQ(r->lines, std::vector<std::string>{""});
}

TEST(reply_parser, enhanced_code_of_other_class_is_text) {
    reply_parser p;
    p.feed("250 5.1.1 odd\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->enhanced, "");
    EXPECT_EQ(r->lines[0], "5.1.1 odd");
}

TEST(reply_parser, malformed_lines_give_code_zero) {
    for (const char* bad : {"hello\r\n", "25\r\n", "2500 x\r\n", "abc def\r\n", "650 x\r\n", "150 x\r\n", "250x\r\n"}) {
        reply_parser p;
        p.feed(bad);
        auto r = p.next();
        ASSERT_TRUE(r) << bad;
        EXPECT_EQ(r->code, 0) << bad;
    }
}

TEST(reply_parser, mismatched_codes_in_multi_line_are_malformed) {
    reply_parser p;
    p.feed("250-a\r\n251 b\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
}

TEST(reply_parser, overlong_line_is_malformed_and_buffer_is_bounded) {
    reply_parser p;
    p.feed("250 " + std::string(10000, 'x'));
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 0);
    EXPECT_FALSE(p.has_buffered());
}

TEST(reply_parser, clear_drops_everything) {
    reply_parser p;
    p.feed("250-a\r\n250 b");
    EXPECT_FALSE(p.next());
    p.clear();
    p.feed("220 fresh\r\n");
    auto r = p.next();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, 220);
    EXPECT_EQ(r->lines.size(), 1u);
}

}  // namespace
}  // namespace subrelay::smtp
