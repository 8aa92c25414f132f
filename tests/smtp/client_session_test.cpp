#include "smtp/client_session.hpp"

#include <gtest/gtest.h>

#include "smtp/server_session.hpp"

namespace subrelay::smtp {
namespace {

const std::string greeting = "220 SN4PR0201CA0001.outlook.office365.com Microsoft ESMTP MAIL Service ready\r\n";
const std::string ehlo_before_tls =
    "250-SN4PR0201CA0001.outlook.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n"
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n"
    "250 SMTPUTF8\r\n";
const std::string ehlo_after_tls =
    "250-SN4PR0201CA0001.outlook.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n"
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n"
    "250-CHUNKING\r\n250 SMTPUTF8\r\n";
// The same without PIPELINING: a server the client talks to one command per round trip.
const std::string ehlo_after_tls_lockstep =
    "250-SN4PR0201CA0001.outlook.office365.com Hello [192.0.2.1]\r\n250-SIZE 157286400\r\n"
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n"
    "250-CHUNKING\r\n250 SMTPUTF8\r\n";
const std::string token = "dXNlcj1yZWxheUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB0b2tlbgEB";

class client : public ::testing::Test {
protected:
    void start(client_options o) { c_.emplace(std::move(o)); }
    void start() { start(client_options{"relay.example.com", client_tls::starttls, client_auth::xoauth2}); }

    std::string server(std::string_view bytes) {
        c_->feed(bytes);
        return go();
    }
    std::string go() {
        auto st = c_->advance();
        next_ = st.next;
        return st.send;
    }

    // Greeting, EHLO, STARTTLS, EHLO, AUTH XOAUTH2: ends idle. The second EHLO
    // reply offers PIPELINING only if asked, so that the message tests below
    // see one command per round trip unless they are about pipelining.
    void connect(bool pipelining = false) {
        start();
        EXPECT_EQ(go(), "");
        EXPECT_EQ(next_, client_action::need_input);
        EXPECT_EQ(server(greeting), "EHLO relay.example.com\r\n");
        EXPECT_EQ(server(ehlo_before_tls), "STARTTLS\r\n");
        EXPECT_EQ(server("220 2.0.0 SMTP server ready\r\n"), "");
        ASSERT_EQ(next_, client_action::start_tls);
        c_->tls_started();
        EXPECT_EQ(go(), "EHLO relay.example.com\r\n");
        EXPECT_EQ(server(pipelining ? ehlo_after_tls : ehlo_after_tls_lockstep), "");
        ASSERT_EQ(next_, client_action::need_auth_token);
        EXPECT_EQ(c_->has_extension("PIPELINING"), pipelining);
        c_->auth_token(token);
        EXPECT_EQ(go(), "AUTH XOAUTH2\r\n");
        EXPECT_EQ(server("334 \r\n"), token + "\r\n");
        EXPECT_EQ(server("235 2.7.0 Authentication successful\r\n"), "");
        ASSERT_EQ(next_, client_action::idle);
    }

    client_session& c() { return *c_; }

    std::optional<client_session> c_;
    client_action next_ = client_action::need_input;
};

TEST_F(client, full_dialogue) {
    connect();
    EXPECT_FALSE(c().auth_rejected());
    EXPECT_TRUE(c().has_extension("smtputf8"));
    EXPECT_TRUE(c().has_extension("AUTH"));
    EXPECT_FALSE(c().has_extension("STARTTLS"));
    EXPECT_EQ(c().max_size(), std::optional<std::size_t>(157286400));

    const std::string data = "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n";
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"bob@example.org", "carol@example.org"};
    m.data = data;
    m.size = data.size();
    m.eight_bit = true;
    c().send_message(m);
    EXPECT_EQ(go(), "MAIL FROM:<printer@example.com> SIZE=" + std::to_string(data.size()) + " BODY=8BITMIME\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("250 2.1.0 Sender OK\r\n"), "RCPT TO:<bob@example.org>\r\n");
    EXPECT_EQ(server("250 2.1.5 Recipient OK\r\n"), "RCPT TO:<carol@example.org>\r\n");
    EXPECT_EQ(server("250 2.1.5 Recipient OK\r\n"), "DATA\r\n");
    EXPECT_EQ(server("354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
              "Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n");
    EXPECT_EQ(server("250 2.0.0 OK <id@example> [Hostname=X]\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    EXPECT_EQ(r.final_reply.code, 250);
    EXPECT_EQ(r.final_reply.enhanced, "2.0.0");
    EXPECT_EQ(r.delivered(), (std::vector<std::string>{"bob@example.org", "carol@example.org"}));
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, client_action::idle);

    c().quit();
    EXPECT_EQ(go(), "QUIT\r\n");
    EXPECT_EQ(server("221 2.0.0 Service closing transmission channel\r\n"), "");
    EXPECT_EQ(next_, client_action::closed);
}

TEST_F(client, two_messages_on_one_connection) {
    connect();
    const std::string data = "x\r\n";
    for (int i = 0; i < 2; ++i) {
        outgoing_message m;
        m.sender = "";
        m.recipients = {"bob@example.org"};
        m.data = data;
        c().send_message(m);
        EXPECT_EQ(go(), "MAIL FROM:<> SIZE=3\r\n");
        EXPECT_EQ(server("250 2.1.0 ok\r\n"), "RCPT TO:<bob@example.org>\r\n");
        EXPECT_EQ(server("250 2.1.5 ok\r\n"), "DATA\r\n");
        EXPECT_EQ(server("354 go\r\n"), "x\r\n.\r\n");
        server("250 2.0.0 queued\r\n");
        EXPECT_EQ(next_, client_action::message_done);
    }
}

TEST_F(client, xoauth2_error_challenge_is_answered_with_empty_line) {
    start();
    server(greeting);
    server(ehlo_before_tls);
    server("220 2.0.0 ready\r\n");
    c().tls_started();
    go();
    server(ehlo_after_tls);
    c().auth_token(token);
    EXPECT_EQ(go(), "AUTH XOAUTH2\r\n");
    EXPECT_EQ(server("334 \r\n"), token + "\r\n");
    EXPECT_EQ(server("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=\r\n"), "\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("535 5.7.3 Authentication unsuccessful [SN4PR0201CA0001]\r\n"), "");
    ASSERT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "auth");
    EXPECT_EQ(c().error().server_reply.code, 535);
    EXPECT_EQ(c().error().server_reply.enhanced, "5.7.3");
    EXPECT_TRUE(c().auth_rejected());
}

TEST_F(client, auth_refused_directly) {
    start();
    server(greeting);
    server(ehlo_before_tls);
    server("220 2.0.0 ready\r\n");
    c().tls_started();
    go();
    server(ehlo_after_tls);
    c().auth_token(token);
    go();
    server("334 \r\n");
    EXPECT_EQ(server("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.\r\n"),
              "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "auth");
    EXPECT_TRUE(c().auth_rejected());
}

TEST_F(client, auth_transient_failure_is_not_a_rejection) {
    start();
    server(greeting);
    server(ehlo_before_tls);
    server("220 2.0.0 ready\r\n");
    c().tls_started();
    go();
    server(ehlo_after_tls);
    c().auth_token(token);
    go();
    EXPECT_EQ(server("454 4.7.0 Temporary authentication failure\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "auth");
    EXPECT_FALSE(c().auth_rejected());
}

TEST_F(client, starttls_not_offered) {
    start();
    server(greeting);
    server("250-mx Hello\r\n250 AUTH XOAUTH2\r\n");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "starttls");
}

TEST_F(client, starttls_refused) {
    start();
    server(greeting);
    server(ehlo_before_tls);
    EXPECT_EQ(server("454 4.7.0 TLS not available\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "starttls");
    EXPECT_EQ(c().error().server_reply.code, 454);
}

TEST_F(client, bytes_after_starttls_220_are_discarded) {
    start();
    server(greeting);
    server(ehlo_before_tls);
    EXPECT_EQ(server("220 2.0.0 ready\r\n250-forged\r\n250 AUTH XOAUTH2\r\n"), "");
    ASSERT_EQ(next_, client_action::start_tls);
    c().tls_started();
    EXPECT_EQ(go(), "EHLO relay.example.com\r\n");
    EXPECT_EQ(next_, client_action::need_input);  // the forged EHLO reply was not taken
    EXPECT_EQ(server(ehlo_after_tls), "");
    EXPECT_EQ(next_, client_action::need_auth_token);
}

TEST_F(client, xoauth2_not_offered) {
    start();
    server(greeting);
    server(ehlo_before_tls);
    server("220 2.0.0 ready\r\n");
    c().tls_started();
    go();
    server("250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "auth");
}

TEST_F(client, old_style_auth_keyword) {
    start(client_options{"r", client_tls::none, client_auth::xoauth2});
    server(greeting);
    server("250-mx\r\n250 AUTH=LOGIN XOAUTH2\r\n");
    EXPECT_EQ(next_, client_action::need_auth_token);
}

TEST_F(client, implicit_tls_skips_starttls) {
    start(client_options{"r", client_tls::implicit, client_auth::xoauth2});
    EXPECT_EQ(server(greeting), "EHLO r\r\n");
    EXPECT_EQ(server(ehlo_after_tls), "");
    EXPECT_EQ(next_, client_action::need_auth_token);
}

TEST_F(client, greeting_refused) {
    start();
    EXPECT_EQ(server("554 5.7.1 go away\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "greeting");
}

TEST_F(client, ehlo_refused) {
    start();
    server(greeting);
    EXPECT_EQ(server("501 5.5.4 bad\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "ehlo");
}

TEST_F(client, garbled_reply_is_a_protocol_failure) {
    start();
    EXPECT_EQ(server("HTTP/1.1 400 Bad Request\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "protocol");
    EXPECT_EQ(c().error().server_reply.code, 0);
}

TEST_F(client, unsolicited_reply_while_idle) {
    connect();
    EXPECT_EQ(server("250 surprise\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "protocol");
}

TEST_F(client, idle_timeout_421_while_idle) {
    connect();
    EXPECT_EQ(server("421 4.4.2 Connection dropped due to timeout\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().server_reply.code, 421);
}

TEST_F(client, send_message_while_busy_fails) {
    connect();
    outgoing_message m;
    m.recipients = {"b@example.org"};
    c().send_message(m);
    c().send_message(m);
    EXPECT_EQ(go(), "MAIL FROM:<> SIZE=0\r\n");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "protocol");
}

TEST_F(client, reply_421_fails_at_any_time) {
    connect();
    const std::string data = "x\r\n";
    outgoing_message m;
    m.recipients = {"b@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    EXPECT_EQ(server("421 4.3.2 Service not available, closing transmission channel\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "rcpt");
    EXPECT_EQ(c().error().server_reply.code, 421);
}

TEST_F(client, partial_recipient_refusal) {
    connect();
    const std::string data = "x\r\n";
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"a@example.org", "gone@example.org", "c@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    EXPECT_EQ(server("250 2.1.0 ok\r\n"), "RCPT TO:<a@example.org>\r\n");
    EXPECT_EQ(server("250 2.1.5 ok\r\n"), "RCPT TO:<gone@example.org>\r\n");
    EXPECT_EQ(server("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found\r\n"),
              "RCPT TO:<c@example.org>\r\n");
    EXPECT_EQ(server("250 2.1.5 ok\r\n"), "DATA\r\n");
    EXPECT_EQ(server("354 go\r\n"), "x\r\n.\r\n");
    server("250 2.0.0 queued\r\n");
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    ASSERT_EQ(r.recipients.size(), 3u);
    EXPECT_EQ(r.recipients[1].address, "gone@example.org");
    EXPECT_EQ(r.recipients[1].rcpt_reply.code, 550);
    EXPECT_EQ(r.recipients[1].rcpt_reply.enhanced, "5.1.10");
    EXPECT_EQ(r.delivered(), (std::vector<std::string>{"a@example.org", "c@example.org"}));
}

TEST_F(client, all_recipients_refused) {
    connect();
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"a@example.org", "b@example.org"};
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    EXPECT_EQ(server("550 5.1.10 not found\r\n"), "RCPT TO:<b@example.org>\r\n");
    EXPECT_EQ(server("452 4.5.3 Too many recipients\r\n"), "RSET\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("250 2.0.0 Resetting\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().final_reply.code, 452);
    EXPECT_TRUE(c().result().delivered().empty());
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, client_action::idle);
}

TEST_F(client, mail_refused) {
    connect();
    outgoing_message m;
    m.sender = "someone@else.example";
    m.recipients = {"a@example.org"};
    c().send_message(m);
    go();
    EXPECT_EQ(server("550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n"), "RSET\r\n");
    EXPECT_EQ(server("250 2.0.0 Resetting\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().final_reply, replies::send_as_denied());
    EXPECT_TRUE(c().result().recipients.empty());
    EXPECT_TRUE(c().result().delivered().empty());
}

TEST_F(client, data_refused) {
    connect();
    outgoing_message m;
    m.recipients = {"a@example.org"};
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    server("250 2.1.5 ok\r\n");
    EXPECT_EQ(server("554 5.5.1 no\r\n"), "RSET\r\n");
    server("250 2.0.0 ok\r\n");
    EXPECT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().final_reply.code, 554);
    EXPECT_TRUE(c().result().delivered().empty());
}

TEST_F(client, final_reply_refusal_means_nothing_delivered) {
    connect();
    const std::string data = "x\r\n";
    outgoing_message m;
    m.recipients = {"a@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    server("250 2.1.5 ok\r\n");
    server("354 go\r\n");
    EXPECT_EQ(server("451 4.7.500 Server busy\r\n"), "");
    EXPECT_EQ(next_, client_action::message_done);
    EXPECT_TRUE(c().result().final_reply.transient());
    EXPECT_TRUE(c().result().delivered().empty());
}

TEST_F(client, parameters_only_when_advertised) {
    start(client_options{"r", client_tls::none, client_auth::none});
    server(greeting);
    EXPECT_EQ(server("250 mx.example\r\n"), "");
    ASSERT_EQ(next_, client_action::idle);
    EXPECT_FALSE(c().max_size());
    outgoing_message m;
    m.sender = "a@example.com";
    m.recipients = {"b@example.org"};
    m.size = 10;
    m.eight_bit = true;
    m.smtputf8 = true;
    c().send_message(m);
    EXPECT_EQ(go(), "MAIL FROM:<a@example.com>\r\n");
}

TEST_F(client, smtputf8_when_advertised) {
    start(client_options{"r", client_tls::none, client_auth::none});
    server(greeting);
    server("250-mx.example\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n");
    outgoing_message m;
    m.sender = "j\xc3\xb6rg@example.com";
    m.recipients = {"b@example.org"};
    m.smtputf8 = true;
    c().send_message(m);
    EXPECT_EQ(go(), "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8\r\n");
}

TEST_F(client, data_is_dot_stuffed_and_normalized) {
    start(client_options{"r", client_tls::none, client_auth::none});
    server(greeting);
    server("250 mx\r\n");
    const std::string data = ".one\n.\r\ntwo\r.\r\nend";
    outgoing_message m;
    m.recipients = {"b@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("250 ok\r\n");
    server("250 ok\r\n");
    EXPECT_EQ(server("354 go\r\n"), "..one\r\n..\r\ntwo\r\n..\r\nend\r\n.\r\n");
}

TEST_F(client, quit_closes_on_any_reply) {
    connect();
    c().quit();
    EXPECT_EQ(go(), "QUIT\r\n");
    EXPECT_EQ(server("500 what\r\n"), "");
    EXPECT_EQ(next_, client_action::closed);
}

// ---------------------------------------------------------------- PIPELINING (RFC 2920)

TEST_F(client, pipelining_writes_mail_rcpt_and_data_in_one_step) {
    connect(true);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"a@example.org", "b@example.org"};
    m.data = data;
    m.eight_bit = true;
    m.smtputf8 = true;
    c().send_message(m);
    EXPECT_EQ(go(),
              "MAIL FROM:<printer@example.com> SIZE=3 BODY=8BITMIME SMTPUTF8\r\n"
              "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    // Nothing more is written until DATA is answered.
    EXPECT_EQ(server("250 2.1.0 Sender OK\r\n"), "");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("250 2.1.5 Recipient OK\r\n"), "");
    EXPECT_EQ(server("250 2.1.5 Recipient OK\r\n"), "");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("354 Start mail input; end with <CRLF>.<CRLF>\r\n"), "x\r\n.\r\n");
    EXPECT_EQ(next_, client_action::need_input);
}

// Only content that went out can have been accepted: before the 354 a
// failed transaction can be tried again elsewhere without a second copy.
TEST_F(client, content_sent_only_after_354) {
    connect(true);
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"a@example.org"};
    m.data = "x\r\n";
    c().send_message(m);
    go();
    EXPECT_FALSE(c().content_sent());
    server("250 2.1.0 Sender OK\r\n");
    server("250 2.1.5 Recipient OK\r\n");
    EXPECT_FALSE(c().content_sent());
    EXPECT_EQ(server("354 go\r\n"), "x\r\n.\r\n");
    EXPECT_TRUE(c().content_sent());
    server("250 2.0.0 OK\r\n");
    ASSERT_EQ(next_, client_action::message_done);
    go();
    c().send_message(m);
    EXPECT_FALSE(c().content_sent()) << "a new message starts unsent";
}

TEST_F(client, pipelining_all_recipients_accepted) {
    connect(true);
    const std::string data = "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n";
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"bob@example.org", "carol@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("250 2.1.0 Sender OK\r\n");
    server("250 2.1.5 Recipient OK\r\n");
    server("250 2.1.5 Recipient OK\r\n");
    EXPECT_EQ(server("354 go\r\n"), "Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n");
    EXPECT_EQ(server("250 2.0.0 OK <id@example> [Hostname=X]\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    EXPECT_EQ(r.final_reply.code, 250);
    ASSERT_EQ(r.recipients.size(), 2u);
    EXPECT_EQ(r.delivered(), (std::vector<std::string>{"bob@example.org", "carol@example.org"}));
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, client_action::idle);
}

TEST_F(client, pipelining_one_of_three_recipients_refused) {
    connect(true);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"a@example.org", "gone@example.org", "c@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    server("250 2.1.5 ok\r\n");
    EXPECT_EQ(server("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found\r\n"), "");
    server("250 2.1.5 ok\r\n");
    EXPECT_EQ(server("354 go\r\n"), "x\r\n.\r\n");
    server("250 2.0.0 queued\r\n");
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    EXPECT_EQ(r.final_reply.code, 250);
    ASSERT_EQ(r.recipients.size(), 3u);
    EXPECT_EQ(r.recipients[1].address, "gone@example.org");
    EXPECT_EQ(r.recipients[1].rcpt_reply.enhanced, "5.1.10");
    EXPECT_EQ(r.delivered(), (std::vector<std::string>{"a@example.org", "c@example.org"}));
}

TEST_F(client, pipelining_all_recipients_refused_then_data_refused) {
    connect(true);
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"a@example.org", "b@example.org"};
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    server("550 5.1.10 not found\r\n");
    EXPECT_EQ(server("452 4.5.3 Too many recipients\r\n"), "");
    EXPECT_EQ(server("554 5.5.1 No valid recipients\r\n"), "RSET\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("250 2.0.0 Resetting\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    EXPECT_EQ(r.final_reply.code, 452);  // the last RCPT refusal, not DATA's 554
    EXPECT_EQ(r.final_reply.enhanced, "4.5.3");
    ASSERT_EQ(r.recipients.size(), 2u);
    EXPECT_EQ(r.recipients[0].rcpt_reply.code, 550);
    EXPECT_TRUE(r.delivered().empty());
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, client_action::idle);
}

TEST_F(client, pipelining_data_refused_after_accepted_recipient) {
    connect(true);
    outgoing_message m;
    m.recipients = {"a@example.org"};
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    server("250 2.1.5 ok\r\n");
    EXPECT_EQ(server("554 5.5.1 no\r\n"), "RSET\r\n");
    server("250 2.0.0 ok\r\n");
    ASSERT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().final_reply.code, 554);
    EXPECT_EQ(c().result().recipients.size(), 1u);
    EXPECT_TRUE(c().result().delivered().empty());
}

TEST_F(client, pipelining_mail_refused) {
    connect(true);
    outgoing_message m;
    m.sender = "someone@else.example";
    m.recipients = {"a@example.org", "b@example.org"};
    c().send_message(m);
    go();
    EXPECT_EQ(server("550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n"), "");
    EXPECT_EQ(server("503 5.5.1 Bad sequence of commands\r\n"), "");
    EXPECT_EQ(server("503 5.5.1 Bad sequence of commands\r\n"), "");
    EXPECT_EQ(server("503 5.5.1 Bad sequence of commands\r\n"), "RSET\r\n");
    EXPECT_EQ(server("250 2.0.0 Resetting\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().final_reply, replies::send_as_denied());
    EXPECT_TRUE(c().result().recipients.empty());
    EXPECT_TRUE(c().result().delivered().empty());
}

TEST_F(client, pipelining_354_without_accepted_recipient_sends_empty_message) {
    connect(true);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.recipients = {"a@example.org", "b@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    server("550 5.1.1 unknown\r\n");
    server("550 5.1.10 not found\r\n");
    // A server that opens DATA anyway gets an empty message, not the data.
    EXPECT_EQ(server("354 go\r\n"), ".\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    EXPECT_EQ(server("554 5.5.1 No valid recipients\r\n"), "");  // the transaction is over: no RSET
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    EXPECT_EQ(r.final_reply.code, 550);
    EXPECT_EQ(r.final_reply.enhanced, "5.1.10");
    EXPECT_EQ(r.recipients.size(), 2u);
    EXPECT_TRUE(r.delivered().empty());
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, client_action::idle);
}

TEST_F(client, pipelining_354_after_mail_refused_sends_empty_message) {
    connect(true);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.sender = "someone@else.example";
    m.recipients = {"a@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    server("550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n");
    server("250 2.1.5 ok\r\n");  // non-conforming: ignored, MAIL was refused
    EXPECT_EQ(server("354 go\r\n"), ".\r\n");
    EXPECT_EQ(server("250 2.0.0 ok\r\n"), "");
    ASSERT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().final_reply, replies::send_as_denied());
    EXPECT_TRUE(c().result().recipients.empty());
    EXPECT_TRUE(c().result().delivered().empty());
}

TEST_F(client, pipelining_replies_in_one_read) {
    connect(true);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.recipients = {"a@example.org", "b@example.org", "c@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    EXPECT_EQ(server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n250 2.1.5 ok\r\n354 go\r\n"), "x\r\n.\r\n");
    EXPECT_EQ(next_, client_action::need_input);
    server("250 2.0.0 queued\r\n");
    ASSERT_EQ(next_, client_action::message_done);
    EXPECT_EQ(c().result().delivered(), (std::vector<std::string>{"a@example.org", "c@example.org"}));
}

TEST_F(client, pipelining_replies_split_byte_by_byte) {
    connect(true);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.recipients = {"a@example.org", "b@example.org"};
    m.data = data;
    c().send_message(m);
    go();
    const std::string replies = "250 2.1.0 ok\r\n250-2.1.5 multi\r\n250 2.1.5 line\r\n452 4.5.3 full\r\n354 go\r\n";
    std::string sent;
    for (std::size_t i = 0; i < replies.size(); ++i) {
        sent += server(replies.substr(i, 1));
        EXPECT_EQ(next_, client_action::need_input);
        if (i + 1 < replies.size()) {
            EXPECT_EQ(sent, "") << "after byte " << i;
        }
    }
    EXPECT_EQ(sent, "x\r\n.\r\n");
    server("250 2.0.0 queued\r\n");
    ASSERT_EQ(next_, client_action::message_done);
    const auto& r = c().result();
    ASSERT_EQ(r.recipients.size(), 2u);
    EXPECT_EQ(r.recipients[0].rcpt_reply.lines, (std::vector<std::string>{"multi", "line"}));
    EXPECT_EQ(r.recipients[1].rcpt_reply.code, 452);
    EXPECT_EQ(r.delivered(), (std::vector<std::string>{"a@example.org"}));
}

TEST_F(client, pipelining_two_messages_on_one_connection) {
    connect(true);
    const std::string data = "x\r\n";
    for (int i = 0; i < 2; ++i) {
        outgoing_message m;
        m.sender = "";
        m.recipients = {"bob@example.org"};
        m.data = data;
        c().send_message(m);
        EXPECT_EQ(go(), "MAIL FROM:<> SIZE=3\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
        EXPECT_EQ(server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"), "x\r\n.\r\n");
        server("250 2.0.0 queued\r\n");
        ASSERT_EQ(next_, client_action::message_done);
        EXPECT_EQ(c().result().delivered(), m.recipients);
        EXPECT_EQ(go(), "");
        EXPECT_EQ(next_, client_action::idle);
    }
}

TEST_F(client, pipelining_421_mid_batch_fails) {
    connect(true);
    outgoing_message m;
    m.recipients = {"a@example.org", "b@example.org"};
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    EXPECT_EQ(server("421 4.3.2 Service not available, closing transmission channel\r\n"), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "rcpt");
    EXPECT_EQ(c().error().server_reply.code, 421);
}

TEST_F(client, pipelining_unexpected_reply_is_a_protocol_failure) {
    connect(true);
    outgoing_message m;
    m.recipients = {"a@example.org"};
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    EXPECT_EQ(server("354 go\r\n"), "");  // a reply to DATA where RCPT's is due
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "protocol");
    EXPECT_EQ(c().error().server_reply.code, 354);
}

TEST_F(client, without_pipelining_only_mail_is_sent_first) {
    start(client_options{"r", client_tls::none, client_auth::none});
    server(greeting);
    EXPECT_EQ(server("250-mx.example\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"), "");
    ASSERT_EQ(next_, client_action::idle);
    const std::string data = "x\r\n";
    outgoing_message m;
    m.sender = "a@example.com";
    m.recipients = {"b@example.org", "c@example.org"};
    m.data = data;
    c().send_message(m);
    EXPECT_EQ(go(), "MAIL FROM:<a@example.com> SIZE=3\r\n");
    EXPECT_EQ(server("250 2.1.0 ok\r\n"), "RCPT TO:<b@example.org>\r\n");
    EXPECT_EQ(server("250 2.1.5 ok\r\n"), "RCPT TO:<c@example.org>\r\n");
    EXPECT_EQ(server("250 2.1.5 ok\r\n"), "DATA\r\n");
    EXPECT_EQ(server("354 go\r\n"), "x\r\n.\r\n");
}

// ---------------------------------------------------------------- client and server, talking

TEST(client_server, round_trip_through_both_state_machines) {
    server_options so;
    so.hostname = "mx.test";
    so.tls_available = false;
    server_session srv(so);
    srv.set_identity("alice@example.com");
    client_session cli(client_options{"relay.test", client_tls::none, client_auth::none});

    const std::string data = "Subject: t\r\n\r\n.\r\n..two\r\nbare\nlf\r\n.\n\rend";
    outgoing_message m;
    m.sender = "alice@example.com";
    m.recipients = {"bob@example.org", "carol@example.org"};
    m.data = data;
    m.size = data.size();

    std::string stored;
    envelope env;
    std::optional<message_result> result;
    bool sent = false;
    bool closed = false;
    cli.feed(srv.greeting());
    for (int i = 0; i < 100 && !closed; ++i) {
        auto cs = cli.advance();
        srv.feed(cs.send);
        for (;;) {
            auto ss = srv.advance();
            cli.feed(ss.send);
            if (ss.next == action::store) {
                env = srv.current_envelope();
                srv.take_data(stored);
                srv.stored(reply(250, "2.0.0", "Ok: queued as Q1"));
                continue;
            }
            break;
        }
        switch (cs.next) {
        case client_action::idle:
            if (!sent) {
                cli.send_message(m);
                sent = true;
            } else {
                cli.quit();
            }
            break;
        case client_action::message_done: result = cli.result(); break;
        case client_action::closed: closed = true; break;
        case client_action::failed: FAIL() << cli.error().stage << ": " << cli.error().text;
        default: break;
        }
    }
    EXPECT_TRUE(closed);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->final_reply.lines[0], "Ok: queued as Q1");
    EXPECT_EQ(result->delivered(), m.recipients);
    EXPECT_EQ(env.sender, "alice@example.com");
    EXPECT_EQ(env.recipients, m.recipients);
    EXPECT_EQ(env.helo, "relay.test");
    EXPECT_EQ(stored, "Subject: t\r\n\r\n.\r\n..two\r\nbare\r\nlf\r\n.\r\n\r\nend\r\n");
    EXPECT_EQ(cli.max_size(), std::optional<std::size_t>(so.max_message_size));
}


// A streamed message: after 354 the session asks for the content, which the
// test passes in pieces (cut inside a CRLF and before a leading dot).
std::string stream_content(client_session& c, client_action& next, std::initializer_list<std::string_view> pieces) {
    std::string wire;
    for (const auto piece : pieces) {
        EXPECT_EQ(next, client_action::send_content);
        c.add_content(piece);
        auto st = c.advance();
        next = st.next;
        wire += st.send;
    }
    c.end_content();
    auto st = c.advance();
    next = st.next;
    return wire + st.send;
}

TEST_F(client, streamed_content_goes_out_as_the_whole_would) {
    for (const bool pipelining : {false, true}) {
        SCOPED_TRACE(pipelining ? "pipelined" : "lockstep");
        connect(pipelining);
        const std::string data = "Subject: hi\r\n\r\n.one\r\n.two\r\nend";
        outgoing_message m;
        m.sender = "printer@example.com";
        m.recipients = {"bob@example.org"};
        m.streamed = true;
        m.size = data.size();
        c().send_message(m);
        const std::string commands = go();
        EXPECT_TRUE(commands.starts_with("MAIL FROM:<printer@example.com> SIZE=" + std::to_string(data.size())));
        if (!pipelining) {
            server("250 2.1.0 ok\r\n");
            EXPECT_EQ(server("250 2.1.5 ok\r\n"), "DATA\r\n");
            EXPECT_EQ(server("354 go\r\n"), "");
        } else {
            EXPECT_EQ(server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"), "");
        }
        ASSERT_EQ(next_, client_action::send_content);
        EXPECT_TRUE(c().content_sent());
        EXPECT_EQ(stream_content(c(), next_, {"Subject: hi\r", "\n\r\n", ".one\r\n", ".two\r\nend"}),
                  dot_stuff(data));
        EXPECT_EQ(next_, client_action::need_input);
        EXPECT_EQ(server("250 2.0.0 queued\r\n"), "");
        ASSERT_EQ(next_, client_action::message_done);
        EXPECT_EQ(c().result().delivered(), std::vector<std::string>{"bob@example.org"});
        EXPECT_EQ(go(), "");
        EXPECT_EQ(next_, client_action::idle);
    }
}

TEST_F(client, streamed_message_refused_before_data_asks_for_no_content) {
    connect();
    outgoing_message m;
    m.sender = "printer@example.com";
    m.recipients = {"bob@example.org"};
    m.streamed = true;
    m.size = 10;
    c().send_message(m);
    go();
    server("250 2.1.0 ok\r\n");
    EXPECT_EQ(server("550 5.1.1 unknown\r\n"), "RSET\r\n");
    EXPECT_EQ(server("250 2.0.0 ok\r\n"), "");
    EXPECT_EQ(next_, client_action::message_done);
    EXPECT_FALSE(c().content_sent());
}

TEST_F(client, content_outside_data_is_a_protocol_error) {
    connect();
    c().add_content("x");
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, client_action::failed);
    EXPECT_EQ(c().error().stage, "protocol");
}

}  // namespace
}  // namespace subrelay::smtp
