#include "smtp/server_session.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>

#include "smtp/text/base64.hpp"

namespace subrelay::smtp {
namespace {

using state = server_session::state;

class fake_policy : public server_policy {
public:
    std::optional<reply> sender_refusal;
    std::optional<reply> recipient_refusal;
    std::vector<std::string> sender_calls;     // "identity|address"
    std::vector<std::string> recipient_calls;  // "identity|sender|address"

    std::optional<reply> check_sender(const std::string& identity, const std::string& address) override {
        sender_calls.push_back(identity + "|" + address);
        return sender_refusal;
    }
    std::optional<reply> check_recipient(const std::string& identity, const std::string& sender,
                                         const std::string& address) override {
        recipient_calls.push_back(identity + "|" + sender + "|" + address);
        return recipient_refusal;
    }
};

server_options plain_options() {
    server_options o;
    o.hostname = "mx.test";
    return o;
}

server_options tls_options() {
    auto o = plain_options();
    o.implicit_tls = true;
    return o;
}

const std::string ehlo_plain =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n";
const std::string ehlo_tls =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n";
const std::string plain_credentials = text::base64_encode(std::string("\0alice@example.com\0secret", 26));

class server : public ::testing::Test {
protected:
    void start(server_options o = plain_options()) { s_.emplace(std::move(o), &policy_); }

    // Feeds bytes, advances once, returns what the session sends.
    std::string say(std::string_view bytes) {
        s_->feed(bytes);
        return go();
    }
    std::string go() {
        auto st = s_->advance();
        next_ = st.next;
        return st.send;
    }

    // Named starting points.
    void initial() { start(); }
    void ready_anonymous() {
        start();
        ASSERT_EQ(say("EHLO client.test\r\n"), ehlo_plain);
    }
    void ready() {
        start();
        s_->set_identity("alice@example.com");
        ASSERT_EQ(say("EHLO client.test\r\n"), ehlo_plain);
    }
    void in_mail() {
        ready();
        ASSERT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "250 2.1.0 Sender ok\r\n");
    }
    void in_rcpt() {
        in_mail();
        ASSERT_EQ(say("RCPT TO:<bob@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    }
    void authenticated_tls() {
        start(tls_options());
        ASSERT_EQ(say("EHLO client.test\r\n"), ehlo_tls);
        ASSERT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\n"), "");
        ASSERT_EQ(next_, action::authenticate);
        s_->auth_success("alice@example.com");
        ASSERT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
    }

    server_session& s() { return *s_; }

    fake_policy policy_;
    std::optional<server_session> s_;
    action next_ = action::need_input;
};

// ---------------------------------------------------------------- every reply in every state

struct state_case {
    const char* setup;
    const char* line;
    const char* expected;  // prefix of the reply
};

class server_state_table : public server, public ::testing::WithParamInterface<state_case> {};

TEST_P(server_state_table, reply) {
    const auto& c = GetParam();
    const std::string setup = c.setup;
    if (setup == "initial") initial();
    else if (setup == "ready_anonymous") ready_anonymous();
    else if (setup == "ready") ready();
    else if (setup == "mail") in_mail();
    else if (setup == "rcpt") in_rcpt();
    else FAIL() << "unknown setup " << setup;
    const auto out = say(std::string(c.line) + "\r\n");
    EXPECT_TRUE(out.starts_with(c.expected)) << "[" << setup << "] " << c.line << " -> " << out;
    EXPECT_EQ(out.find("\r\n"), out.size() - 2) << "one reply line expected";  // (EHLO is excluded below)
}

INSTANTIATE_TEST_SUITE_P(
    all, server_state_table,
    ::testing::Values(
        // before HELO/EHLO
        state_case{"initial", "MAIL FROM:<alice@example.com>", "503 5.5.1 "},
        state_case{"initial", "RCPT TO:<bob@example.org>", "503 5.5.1 "},
        state_case{"initial", "DATA", "503 5.5.1 "},
        state_case{"initial", "RSET", "250 2.0.0 Ok\r\n"},
        state_case{"initial", "NOOP", "250 2.0.0 Ok\r\n"},
        state_case{"initial", "NOOP with text", "250 2.0.0 Ok\r\n"},
        state_case{"initial", "VRFY bob", "252 2.5.0 Cannot VRFY user, but will accept message"},
        state_case{"initial", "VRFY", "501 5.5.4 "},
        state_case{"initial", "HELP", "214 2.0.0 "},
        state_case{"initial", "EXPN staff", "502 5.5.1 "},
        state_case{"initial", "BDAT 10 LAST", "502 5.5.1 "},
        state_case{"initial", "AUTH PLAIN", "538 5.7.11 "},  // AUTH needs no EHLO (Postfix), but TLS
        state_case{"initial", "STARTTLS", "220 2.0.0 Ready to start TLS\r\n"},
        state_case{"initial", "STARTTLS now", "501 5.5.4 "},
        state_case{"initial", "XYZZY", "500 5.5.2 "},
        state_case{"initial", "", "500 5.5.2 "},
        state_case{"initial", "HELO", "501 5.5.4 "},
        state_case{"initial", "EHLO", "501 5.5.4 "},
        state_case{"initial", "HELO client.test", "250 mx.test\r\n"},
        state_case{"initial", "QUIT", "221 2.0.0 Bye\r\n"},
        // after EHLO, not authenticated, no TLS
        state_case{"ready_anonymous", "MAIL FROM:<alice@example.com>",
                   "530 5.7.57 Client not authenticated to send mail.\r\n"},
        state_case{"ready_anonymous", "AUTH PLAIN",
                   "538 5.7.11 Encryption required for requested authentication mechanism\r\n"},
        state_case{"ready_anonymous", "RCPT TO:<bob@example.org>", "503 5.5.1 "},
        state_case{"ready_anonymous", "DATA", "503 5.5.1 "},
        state_case{"ready_anonymous", "RSET", "250 2.0.0 Ok\r\n"},
        state_case{"ready_anonymous", "STARTTLS", "220 2.0.0 Ready to start TLS\r\n"},
        // authenticated, no transaction
        state_case{"ready", "MAIL FROM:<alice@example.com>", "250 2.1.0 Sender ok\r\n"},
        state_case{"ready", "mail from: <alice@example.com>", "250 2.1.0 Sender ok\r\n"},
        state_case{"ready", "MAIL FROM:<>", "250 2.1.0 Sender ok\r\n"},
        state_case{"ready", "MAIL FROM:<alice@example.com> SIZE=36700160", "250 2.1.0 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> SIZE=36700161",
                   "552 5.3.4 Message size exceeds fixed maximum message size\r\n"},
        state_case{"ready", "MAIL FROM:<alice@example.com> SIZE=99999999999999999999", "552 5.3.4 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> BODY=8BITMIME", "250 2.1.0 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> BODY=7BIT", "250 2.1.0 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> BODY=BINARYMIME", "501 5.5.4 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> AUTH=<>", "250 2.1.0 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> SMTPUTF8", "250 2.1.0 "},
        state_case{"ready", "MAIL FROM:<alice@example.com> RET=FULL", "555 5.5.4 "},
        state_case{"ready", "MAIL FROM:<j\xc3\xb6rg@example.com>", "553 5.6.7 "},
        state_case{"ready", "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", "250 2.1.0 "},
        state_case{"ready", "MAIL FROM:<alice>", "501 5.1.7 "},
        state_case{"ready", "MAIL FROM:alice@example.com", "250 2.1.0 "},
        state_case{"ready", "MAIL  FROM:<alice@example.com>", "250 2.1.0 "},
        state_case{"ready", "MAIL TO:<alice@example.com>", "501 5.5.4 "},
        state_case{"ready", "RCPT TO:<bob@example.org>", "503 5.5.1 "},
        state_case{"ready", "DATA", "503 5.5.1 "},
        state_case{"ready", "AUTH PLAIN", "503 5.5.1 "},
        state_case{"ready", "STARTTLS", "220 2.0.0 "},
        state_case{"ready", "VRFY bob", "252 2.5.0 "},
        state_case{"ready", "BDAT 1", "502 5.5.1 "},
        // inside a transaction, no recipient yet
        state_case{"mail", "MAIL FROM:<alice@example.com>", "503 5.5.1 Error: nested MAIL command\r\n"},
        state_case{"mail", "RCPT TO:<bob@example.org>", "250 2.1.5 Recipient ok\r\n"},
        state_case{"mail", "rcpt to: <bob@example.org>", "250 2.1.5 "},
        state_case{"mail", "RCPT TO:<Postmaster>", "250 2.1.5 "},
        state_case{"mail", "RCPT TO:<>", "501 5.1.3 "},
        state_case{"mail", "RCPT TO:<bob>", "501 5.1.3 "},
        state_case{"mail", "RCPT TO:<j\xc3\xb6rg@example.org>", "553 5.6.7 "},
        state_case{"mail", "RCPT TO:<bob@example.org> NOTIFY=NEVER", "555 5.5.4 "},
        state_case{"mail", "RCPT FROM:<bob@example.org>", "501 5.5.4 "},
        state_case{"mail", "DATA", "554 5.5.1 "},
        state_case{"mail", "STARTTLS", "503 5.5.1 "},
        state_case{"mail", "AUTH PLAIN", "503 5.5.1 "},
        state_case{"mail", "RSET", "250 2.0.0 Ok\r\n"},
        state_case{"mail", "NOOP", "250 2.0.0 Ok\r\n"},
        state_case{"mail", "QUIT", "221 2.0.0 Bye\r\n"},
        // with a recipient
        state_case{"rcpt", "DATA", "354 End data with <CR><LF>.<CR><LF>\r\n"},
        state_case{"rcpt", "DATA now", "501 5.5.4 "},
        state_case{"rcpt", "RCPT TO:<carol@example.org>", "250 2.1.5 "},
        state_case{"rcpt", "MAIL FROM:<alice@example.com>", "503 5.5.1 "},
        state_case{"rcpt", "HELP", "214 2.0.0 "},
        state_case{"rcpt", "EXPN x", "502 5.5.1 "},
        state_case{"rcpt", "FOO", "500 5.5.2 "}));

// ---------------------------------------------------------------- greeting, EHLO, HELO

TEST_F(server, greeting_timeout_shutdown) {
    start();
    EXPECT_EQ(s().greeting(), "220 mx.test ESMTP subrelay\r\n");
    EXPECT_EQ(s().on_timeout(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
    EXPECT_EQ(s().on_shutdown(), "421 4.3.2 Service shutting down\r\n");
    EXPECT_EQ(s().current_state(), state::initial);
}

TEST_F(server, ehlo_plaintext_offers_starttls_not_auth) {
    start();
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_plain);
    EXPECT_TRUE(s().esmtp());
    EXPECT_EQ(s().helo_name(), "client.test");
    EXPECT_EQ(s().current_state(), state::ready);
}

TEST_F(server, ehlo_in_tls_offers_auth_not_starttls) {
    start(tls_options());
    EXPECT_TRUE(s().tls_active());
    EXPECT_EQ(say("ehlo client.test\r\n"), ehlo_tls);
}

TEST_F(server, ehlo_without_tls_when_auth_allowed_in_plaintext) {
    auto o = plain_options();
    o.tls_available = false;
    o.require_tls_for_auth = false;
    o.max_message_size = 1000;
    start(o);
    EXPECT_EQ(say("EHLO c\r\n"),
              "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
              "250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n");
    EXPECT_EQ(say("STARTTLS\r\n"), "454 4.7.0 TLS not available\r\n");
}

// Old devices: HELO, then AUTH (Postfix accepts it; RFC 4954 asks for EHLO).
TEST_F(server, helo_is_not_esmtp_but_auth_follows_it) {
    start(tls_options());
    EXPECT_EQ(say("HELO client.test\r\n"), "250 mx.test\r\n");
    EXPECT_FALSE(s().esmtp());
    EXPECT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "250 2.1.0 Sender ok\r\n");
}

// EHLO without a name is refused, and AUTH is still possible after it.
TEST_F(server, auth_after_ehlo_without_a_name) {
    start(tls_options());
    EXPECT_TRUE(say("EHLO\r\n").starts_with("501 5.5.4 "));
    EXPECT_EQ(s().current_state(), state::initial);
    EXPECT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n"),
              "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n");
}

// RFC 3207 says the client SHOULD send EHLO again after STARTTLS; some never do.
TEST_F(server, auth_right_after_starttls_without_a_second_ehlo) {
    start();
    say("EHLO client.test\r\n");
    EXPECT_EQ(say("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    s().tls_started();
    EXPECT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "250 2.1.0 Sender ok\r\n");
}

// A failed AUTH before any greeting does not stand in for one.
TEST_F(server, failed_auth_without_greeting_stays_initial) {
    start(tls_options());
    say("AUTH PLAIN " + plain_credentials + "\r\n");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_failure(replies::auth_credentials_incorrect());
    EXPECT_TRUE(go().starts_with("535 "));
    EXPECT_EQ(s().current_state(), state::initial);
    s().set_bound_identity("alice@example.com");
    EXPECT_TRUE(say("MAIL FROM:<alice@example.com>\r\n").starts_with("503 5.5.1 "));
}

TEST_F(server, ehlo_during_transaction_resets_it) {
    in_rcpt();
    EXPECT_EQ(say("EHLO again.test\r\n"), ehlo_plain);
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(s().current_envelope().recipients.empty());
    EXPECT_TRUE(s().authenticated());
    EXPECT_TRUE(say("DATA\r\n").starts_with("503 5.5.1 "));
}

// ---------------------------------------------------------------- a whole transaction

TEST_F(server, full_transaction_and_store) {
    ready();
    EXPECT_EQ(say("MAIL FROM:<alice@example.com> BODY=8BITMIME SIZE=100\r\n"), "250 2.1.0 Sender ok\r\n");
    EXPECT_EQ(s().current_state(), state::mail);
    EXPECT_EQ(say("RCPT TO:<bob@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    EXPECT_EQ(say("RCPT TO:<carol@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    EXPECT_EQ(s().current_state(), state::rcpt);
    EXPECT_EQ(say("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(s().current_state(), state::data);
    EXPECT_EQ(say("Subject: test\r\n\r\n..dot\r\n"), "");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(say(".\r\n"), "");
    EXPECT_EQ(next_, action::store);
    // Until the driver answers, advance() keeps asking for the store.
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, action::store);

    const auto& env = s().current_envelope();
    EXPECT_EQ(env.helo, "client.test");
    EXPECT_EQ(env.sender, "alice@example.com");
    EXPECT_EQ(env.recipients, (std::vector<std::string>{"bob@example.org", "carol@example.org"}));
    EXPECT_EQ(env.identity, "alice@example.com");
    EXPECT_EQ(env.body_type, "8BITMIME");
    EXPECT_FALSE(env.smtputf8);
    EXPECT_EQ(s().data(), "Subject: test\r\n\r\n.dot\r\n");
    std::string taken = "old content";
    s().take_data(taken);
    EXPECT_EQ(taken, "Subject: test\r\n\r\n.dot\r\n");
    EXPECT_EQ(s().data(), "");

    s().stored(reply(250, "2.0.0", "Ok: queued as ABC123"));
    EXPECT_EQ(go(), "250 2.0.0 Ok: queued as ABC123\r\n");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(s().current_envelope().recipients.empty());
    EXPECT_EQ(s().current_envelope().sender, "");
    EXPECT_EQ(s().identity(), "alice@example.com");
    // The next transaction on the same connection.
    EXPECT_EQ(say("MAIL FROM:<>\r\n"), "250 2.1.0 Sender ok\r\n");
}

TEST_F(server, stored_with_temporary_failure_resets_transaction) {
    in_rcpt();
    say("DATA\r\n");
    say("x\r\n.\r\n");
    ASSERT_EQ(next_, action::store);
    s().stored(replies::temporary_failure());
    EXPECT_EQ(go(), "451 4.3.0 Temporary failure, try again later\r\n");
    EXPECT_TRUE(say("DATA\r\n").starts_with("503 5.5.1 "));
}

// ---------------------------------------------------------------- DATA streamed in pieces

// A driver's view of one DATA phase: the pieces handed out, in order, and
// whether it was told to discard what it had written.
struct streamed {
    std::vector<std::string> pieces;  // data_chunk pieces, then the rest at store (if any)
    std::size_t most_held = 0;        // the largest data() seen
    bool discarded = false;
    bool stored = false;
    std::string replies;
    [[nodiscard]] std::string joined() const {
        std::string all;
        for (const auto& p : pieces) all += p;
        return all;
    }
};

class streaming_server : public server {
protected:
    static constexpr std::size_t chunk = 1024;
    void start_streaming(std::size_t max_size = 1 << 20, bare_lf mode = bare_lf::reject) {
        auto o = plain_options();
        o.data_chunk_size = chunk;
        o.max_message_size = max_size;
        o.bare_lf_mode = mode;
        start(o);
        s().set_identity("alice@example.com");
        ASSERT_TRUE(say("EHLO client.test\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
                        .ends_with("250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
                                   "354 End data with <CR><LF>.<CR><LF>\r\n"));
    }
    // Feeds bytes and plays the driver until the session needs input, has
    // stored (answered with 250) or closes.
    void drive(std::string_view bytes, streamed& out) {
        s().feed(bytes);
        for (int guard = 0; guard < 100000; ++guard) {
            auto st = s().advance();
            out.replies += st.send;
            out.most_held = std::max(out.most_held, s().data().size());
            switch (st.next) {
            case action::data_chunk: {
                std::string piece;
                s().take_data(piece);
                out.pieces.push_back(std::move(piece));
                continue;
            }
            case action::discard:
                out.discarded = true;
                continue;
            case action::store: {
                std::string rest;
                s().take_data(rest);
                if (!rest.empty()) out.pieces.push_back(std::move(rest));
                out.stored = true;
                s().stored(reply(250, "2.0.0", "Ok: queued as 1"));
                continue;
            }
            default:
                next_ = st.next;
                return;
            }
        }
        FAIL() << "the session never asked for input";
    }
};

TEST_F(streaming_server, a_large_message_is_handed_out_in_pieces_never_whole) {
    start_streaming();
    std::string message;
    for (int i = 0; message.size() < 100 * 1024; ++i) message += "line " + std::to_string(i) + " of the message\r\n";
    // Fed at once: the session still holds at most about two pieces.
    streamed out;
    drive(message + ".\r\nNOOP\r\n", out);
    EXPECT_TRUE(out.stored);
    EXPECT_EQ(out.joined(), message);
    ASSERT_GT(out.pieces.size(), 50u);
    for (std::size_t i = 0; i + 1 < out.pieces.size(); ++i) EXPECT_GE(out.pieces[i].size(), chunk) << i;
    EXPECT_LE(out.most_held, 2 * chunk);
    EXPECT_EQ(out.replies, "250 2.0.0 Ok: queued as 1\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
}

TEST_F(streaming_server, pieces_are_unstuffed_and_byte_by_byte_equals_whole) {
    start_streaming();
    std::string wire;
    std::string expected;
    for (int i = 0; i < 400; ++i) {
        const std::string line = (i % 3 == 0 ? "." : "") + std::string("text ") + std::to_string(i);
        wire += (line.starts_with(".") ? "." : "") + line + "\r\n";
        expected += line + "\r\n";
    }
    streamed out;
    for (const char c : wire + ".\r\n") drive(std::string_view(&c, 1), out);
    EXPECT_TRUE(out.stored);
    EXPECT_EQ(out.joined(), expected);
    EXPECT_GT(out.pieces.size(), 2u);
    EXPECT_LE(out.most_held, chunk + 1);
}

TEST_F(streaming_server, the_envelope_is_fixed_when_the_first_piece_comes) {
    start_streaming();
    s().feed(std::string(3 * chunk, 'x'));
    ASSERT_EQ(go(), "");
    ASSERT_EQ(next_, action::data_chunk);
    EXPECT_EQ(s().current_envelope().recipients, std::vector<std::string>{"bob@example.org"});
    EXPECT_EQ(s().current_envelope().identity, "alice@example.com");
    EXPECT_EQ(s().current_state(), state::data);
}

TEST_F(streaming_server, a_message_over_the_limit_is_discarded_at_once_and_refused_at_its_end) {
    start_streaming(4 * chunk);
    streamed out;
    drive(std::string(3 * chunk, 'a'), out);
    EXPECT_FALSE(out.discarded);
    EXPECT_EQ(out.pieces.size(), 3u);
    drive(std::string(2 * chunk, 'b'), out);
    EXPECT_TRUE(out.discarded) << "the driver should drop the file before the end of the message";
    const auto pieces = out.pieces.size();
    drive(std::string(10 * chunk, 'c'), out);
    EXPECT_EQ(out.pieces.size(), pieces) << "nothing more is handed out";
    EXPECT_EQ(out.most_held, chunk);
    EXPECT_EQ(out.replies, "");
    drive("\r\n.\r\nNOOP\r\n", out);
    EXPECT_FALSE(out.stored);
    EXPECT_EQ(out.replies, "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(s().current_envelope().recipients.empty());
}

TEST_F(streaming_server, a_bare_lf_discards_at_once_and_refuses_at_the_end) {
    start_streaming();
    streamed out;
    drive(std::string(2 * chunk, 'a') + "\r\n", out);
    EXPECT_EQ(out.pieces.size(), 2u);
    EXPECT_FALSE(out.discarded);
    drive("bare\nline\r\n" + std::string(4 * chunk, 'b'), out);
    EXPECT_TRUE(out.discarded);
    EXPECT_EQ(out.pieces.size(), 2u);
    drive("\r\n.\r\n", out);
    EXPECT_FALSE(out.stored);
    EXPECT_EQ(out.replies, "550 5.6.0 Bare LF received, use CRLF\r\n");
    EXPECT_TRUE(s().refused_bare_lf());
}

TEST_F(streaming_server, accepted_bare_lf_is_streamed_as_crlf) {
    start_streaming(1 << 20, bare_lf::accept);
    std::string wire;
    std::string expected;
    for (int i = 0; i < 300; ++i) {
        wire += "..dot line " + std::to_string(i) + "\n";
        expected += ".dot line " + std::to_string(i) + "\r\n";
    }
    streamed out;
    drive(wire + ".\n", out);
    EXPECT_TRUE(out.stored);
    EXPECT_FALSE(out.discarded);
    EXPECT_EQ(out.joined(), expected);
}

TEST_F(streaming_server, a_failed_write_reads_to_the_end_and_answers_the_failure) {
    start_streaming();
    streamed out;
    s().feed(std::string(2 * chunk, 'a'));
    ASSERT_EQ(go(), "");
    ASSERT_EQ(next_, action::data_chunk);
    s().data_failed(reply(452, "4.3.1", "Insufficient system storage"));
    drive(std::string(5 * chunk, 'b'), out);
    EXPECT_TRUE(out.pieces.empty()) << "nothing is handed out after a failed write";
    EXPECT_FALSE(out.discarded) << "the driver has dropped the message itself";
    drive("\r\n.\r\nMAIL FROM:<alice@example.com>\r\n", out);
    EXPECT_FALSE(out.stored);
    EXPECT_EQ(out.replies, "452 4.3.1 Insufficient system storage\r\n250 2.1.0 Sender ok\r\n");
}

TEST_F(streaming_server, a_failure_after_the_end_is_the_stored_reply) {
    start_streaming();
    s().feed("small\r\n.\r\n");
    ASSERT_EQ(go(), "");
    ASSERT_EQ(next_, action::store);
    s().data_failed(reply(452, "4.3.1", "Insufficient system storage"));  // too late: ignored
    EXPECT_EQ(s().data(), "small\r\n");
    s().stored(replies::temporary_failure());
    EXPECT_EQ(go(), "451 4.3.0 Temporary failure, try again later\r\n");
}

TEST_F(server, smtputf8_transaction) {
    ready();
    EXPECT_EQ(say("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8\r\n"), "250 2.1.0 Sender ok\r\n");
    EXPECT_EQ(say("RCPT TO:<b\xc3\xb6" "b@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    EXPECT_TRUE(s().current_envelope().smtputf8);
}

TEST_F(server, rset_clears_transaction) {
    in_rcpt();
    EXPECT_EQ(say("RSET\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(s().current_envelope().recipients.empty());
    EXPECT_TRUE(say("RCPT TO:<bob@example.org>\r\n").starts_with("503 5.5.1 "));
}

TEST_F(server, quit_closes_and_ignores_the_rest) {
    ready();
    EXPECT_EQ(say("QUIT\r\nNOOP\r\n"), "221 2.0.0 Bye\r\n");
    EXPECT_EQ(next_, action::close);
    EXPECT_EQ(s().current_state(), state::closed);
    EXPECT_EQ(say("NOOP\r\n"), "");
    EXPECT_EQ(next_, action::close);
}

// ---------------------------------------------------------------- policy and limits

TEST_F(server, policy_refuses_sender) {
    ready();
    policy_.sender_refusal = replies::send_as_denied();
    EXPECT_EQ(say("MAIL FROM:<boss@example.com>\r\n"),
              "550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_EQ(policy_.sender_calls, std::vector<std::string>{"alice@example.com|boss@example.com"});
}

TEST_F(server, policy_refuses_recipient) {
    in_mail();
    policy_.recipient_refusal = reply(550, "5.7.1", "Recipient not allowed");
    EXPECT_EQ(say("RCPT TO:<x@example.net>\r\n"), "550 5.7.1 Recipient not allowed\r\n");
    EXPECT_EQ(policy_.recipient_calls.back(), "alice@example.com|alice@example.com|x@example.net");
    EXPECT_TRUE(say("DATA\r\n").starts_with("554 5.5.1 "));
}

TEST_F(server, policy_not_consulted_when_syntax_fails) {
    ready();
    say("MAIL FROM:<bad address>\r\n");
    EXPECT_TRUE(policy_.sender_calls.empty());
}

TEST_F(server, max_recipients) {
    auto o = plain_options();
    o.max_recipients = 2;
    start(o);
    s().set_identity("alice@example.com");
    say("EHLO c\r\nMAIL FROM:<a@example.com>\r\n");
    EXPECT_EQ(say("RCPT TO:<b1@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    EXPECT_EQ(say("RCPT TO:<b2@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    EXPECT_EQ(say("RCPT TO:<b3@example.org>\r\n"), "452 4.5.3 Too many recipients\r\n");
    EXPECT_EQ(s().current_envelope().recipients.size(), 2u);
    EXPECT_EQ(say("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
}

TEST_F(server, message_too_big_is_read_to_the_end_then_refused) {
    auto o = plain_options();
    o.max_message_size = 100;
    start(o);
    s().set_identity("alice@example.com");
    say("EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    for (int i = 0; i < 10; ++i) EXPECT_EQ(say(std::string(50, 'x') + "\r\n"), "");
    EXPECT_EQ(say(".\r\nNOOP\r\n"), "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(s().current_envelope().recipients.empty());
}

TEST_F(server, command_line_limit) {
    start();
    const std::string at_limit = "NOOP " + std::string(2048 - 5, 'x');
    EXPECT_EQ(say(at_limit + "\r\n"), "250 2.0.0 Ok\r\n");
    const std::string over = "NOOP " + std::string(2049 - 5, 'x');
    EXPECT_EQ(say(over + "\r\n"), "500 5.5.2 Line too long\r\n");
    EXPECT_EQ(say("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(server, endless_line_is_discarded_with_bounded_buffer) {
    start();
    std::string out;
    const std::string chunk(4096, 'A');
    for (int i = 0; i < 1000; ++i) {  // 4 MB without a line end
        out += say(chunk);
        EXPECT_LE(s().buffered(), 2049u);
    }
    EXPECT_EQ(out, "500 5.5.2 Line too long\r\n");
    EXPECT_EQ(say("\r"), "");
    EXPECT_EQ(say("\nNOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(server, partial_line_waits_and_cr_split_from_lf) {
    start();
    EXPECT_EQ(say("NO"), "");
    EXPECT_EQ(say("OP\r"), "");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(say("\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(server, too_many_bad_commands) {
    auto o = plain_options();
    o.max_unknown_commands = 3;
    start(o);
    EXPECT_EQ(say("FOO\r\n"), "500 5.5.2 Error: command not recognized\r\n");
    EXPECT_EQ(say("BAR\r\n"), "500 5.5.2 Error: command not recognized\r\n");
    EXPECT_EQ(say("MAIL FROM:<a@example.com>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    EXPECT_EQ(say("BAZ\r\nNOOP\r\n"), "421 4.7.0 mx.test Error: too many errors\r\n");
    EXPECT_EQ(next_, action::close);
}

TEST_F(server, refusals_by_policy_do_not_count_as_errors) {
    auto o = plain_options();
    o.max_unknown_commands = 1;
    start(o);
    s().set_identity("alice@example.com");
    say("EHLO c\r\n");
    policy_.sender_refusal = replies::send_as_denied();
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(say("MAIL FROM:<x@example.com>\r\n").starts_with("550 5.7.60"));
    EXPECT_EQ(next_, action::need_input);
}

// ---------------------------------------------------------------- commands end only at CRLF

// A bare LF gets its refusal at once (no wait for a CRLF that never comes),
// and nothing on a line with one is ever run as a command.
TEST_F(server, bare_lf_command_is_refused_at_once) {
    ready();
    EXPECT_EQ(say("NOOP\n"), "500 5.5.2 Bare LF received, use CRLF\r\n");
    EXPECT_TRUE(s().refused_bare_lf());
    // The rest of the same line (up to its CRLF) is refused too.
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "500 5.5.2 Bare LF received, use CRLF\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(policy_.sender_calls.empty());
    // A clean line afterwards works.
    EXPECT_EQ(say("NOOP\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\nRCPT TO:<bob@example.org>\r\nNOOP\r\n"),
              "500 5.5.2 Bare LF received, use CRLF\r\n500 5.5.2 Bare LF received, use CRLF\r\n"
              "250 2.0.0 Ok\r\n");
    EXPECT_TRUE(policy_.sender_calls.empty());
}

TEST_F(server, bare_lf_commands_count_as_errors) {
    auto o = plain_options();
    o.max_unknown_commands = 2;
    start(o);
    EXPECT_EQ(say("EHLO a\nEHLO b\nEHLO c\n"),
              "500 5.5.2 Bare LF received, use CRLF\r\n500 5.5.2 Bare LF received, use CRLF\r\n"
              "421 4.7.0 mx.test Error: too many errors\r\n");
    EXPECT_EQ(next_, action::close);
}

TEST_F(server, bare_lf_in_auth_response_ends_the_exchange) {
    start(tls_options());
    say("EHLO c\r\n");
    say("AUTH LOGIN\r\n");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_challenge("Username:");
    go();
    EXPECT_EQ(say("YWxpY2U=\n"), "500 5.5.2 Bare LF received, use CRLF\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_FALSE(s().authenticated());
}

// A message with a bare LF is read to its real <CRLF>.<CRLF> and refused
// whole: relayed, its line ends and dots would not be what the client meant.
TEST_F(server, bare_lf_message_is_refused_after_its_end) {
    in_rcpt();
    EXPECT_EQ(say("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(say("Subject: x\n\n..hidden\n.\nMAIL FROM:<evil@example.com>\n"), "");
    EXPECT_EQ(s().current_state(), state::data);
    EXPECT_EQ(say("\r\n.\r\nNOOP\r\n"), "550 5.6.0 Bare LF received, use CRLF\r\n250 2.0.0 Ok\r\n");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_TRUE(s().current_envelope().recipients.empty());
    EXPECT_EQ(policy_.sender_calls.size(), 1u);  // only the real MAIL
    EXPECT_TRUE(s().refused_bare_lf());
}

class lenient_server : public server {
protected:
    void SetUp() override {
        auto o = plain_options();
        o.bare_lf_mode = bare_lf::accept;
        start(o);
        s().set_identity("alice@example.com");
    }
};

TEST_F(lenient_server, bare_lf_ends_commands) {
    EXPECT_EQ(say("EHLO client.test\n"), ehlo_plain);
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\nRCPT TO:<bob@example.org>\r\nDATA\n"),
              "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    // smtplib.sendmail with bytes: LF line ends, a dot stuffed after each LF.
    EXPECT_EQ(say("Subject: x\n\n..hidden\n.\nQUIT\n"), "");
    ASSERT_EQ(next_, action::store);
    EXPECT_EQ(s().data(), "Subject: x\r\n\r\n.hidden\r\n");
    s().stored(reply(250, "2.0.0", "Ok: queued as 1"));
    EXPECT_EQ(go(), "250 2.0.0 Ok: queued as 1\r\n221 2.0.0 Bye\r\n");
    EXPECT_FALSE(s().refused_bare_lf());
}

TEST_F(server, bare_cr_and_nul_in_commands) {
    ready();
    EXPECT_EQ(say("NOOP\rRSET\r\n"), "500 5.5.2 Error: invalid character in command\r\n");
    EXPECT_EQ(say(std::string("NOOP\0x\r\n", 8)), "500 5.5.2 Error: invalid character in command\r\n");
}

// ---------------------------------------------------------------- pipelining (RFC 2920)

TEST_F(server, pipelined_envelope_gets_one_batch_of_replies) {
    ready();
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<bad>\r\n"
                  "RCPT TO:<carol@example.org>\r\nDATA\r\n"),
              "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n501 5.1.3 Bad recipient address syntax\r\n"
              "250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(s().current_state(), state::data);
}

TEST_F(server, commands_after_data_run_after_stored) {
    ready();
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                  "Subject: one\r\n\r\nbody\r\n.\r\n"
                  "MAIL FROM:<alice@example.com>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n"
                  "Subject: two\r\n\r\n.\r\nQUIT\r\n"),
              "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    ASSERT_EQ(next_, action::store);
    EXPECT_EQ(s().data(), "Subject: one\r\n\r\nbody\r\n");
    EXPECT_EQ(s().current_envelope().recipients, std::vector<std::string>{"bob@example.org"});
    s().stored(reply(250, "2.0.0", "Ok: queued as 1"));
    EXPECT_EQ(go(), "250 2.0.0 Ok: queued as 1\r\n250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
                    "354 End data with <CR><LF>.<CR><LF>\r\n");
    ASSERT_EQ(next_, action::store);
    EXPECT_EQ(s().data(), "Subject: two\r\n\r\n");
    EXPECT_EQ(s().current_envelope().recipients, std::vector<std::string>{"carol@example.org"});
    s().stored(reply(250, "2.0.0", "Ok: queued as 2"));
    EXPECT_EQ(go(), "250 2.0.0 Ok: queued as 2\r\n221 2.0.0 Bye\r\n");
    EXPECT_EQ(next_, action::close);
}

TEST_F(server, byte_by_byte_dialogue_matches_whole) {
    const std::string input =
        "EHLO c\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n..x\r\n.\r\nNOOP\r\n";
    ready();
    std::string out;
    for (const char c : input) {
        out += say(std::string_view(&c, 1));
        if (next_ == action::store) {
            EXPECT_EQ(s().data(), ".x\r\n");
            s().stored(reply(250, "2.0.0", "Ok"));
            out += go();
        }
    }
    EXPECT_EQ(out, ehlo_plain + "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
                                "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
}

// ---------------------------------------------------------------- SMTP smuggling at session level

class server_smuggling : public server, public ::testing::WithParamInterface<const char*> {};

TEST_P(server_smuggling, only_crlf_dot_crlf_ends_data) {
    in_rcpt();
    ASSERT_EQ(say("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    const std::string smuggled = std::string("Subject: hi\r\n\r\nhello") + GetParam() +
                                 "MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
                                 "Subject: forged\r\n\r\nforged\r\n";
    EXPECT_EQ(say(smuggled), "");
    if (next_ == action::discard) {
        EXPECT_EQ(go(), "");  // a bare LF: the driver drops what it wrote
    }
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(s().current_state(), state::data);
    EXPECT_TRUE(policy_.sender_calls.empty() || policy_.sender_calls.size() == 1u);
    const auto calls = policy_.sender_calls.size();
    const std::string_view ending = GetParam();
    bool has_bare_lf = false;
    for (std::size_t i = 0; i < ending.size(); ++i)
        has_bare_lf = has_bare_lf || (ending[i] == '\n' && (i == 0 || ending[i - 1] != '\r'));
    if (has_bare_lf) {
        // Read to the real end, then refused whole.
        EXPECT_EQ(say(".\r\n"), "550 5.6.0 Bare LF received, use CRLF\r\n");
        EXPECT_EQ(next_, action::need_input);
    } else {
        EXPECT_EQ(say(".\r\n"), "");
        ASSERT_EQ(next_, action::store);
        EXPECT_NE(s().data().find("MAIL FROM:<admin@example.com>"), std::string::npos);
        EXPECT_EQ(s().current_envelope().recipients, std::vector<std::string>{"bob@example.org"});
    }
    EXPECT_EQ(policy_.sender_calls.size(), calls);  // no MAIL was executed from inside the message
}

INSTANTIATE_TEST_SUITE_P(variants, server_smuggling,
                         ::testing::Values("\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n", "\n.\r"));

// ---------------------------------------------------------------- STARTTLS

TEST_F(server, starttls_discards_pipelined_input_and_resets) {
    start();
    s().set_identity("preset@example.com");
    say("EHLO client.test\r\n");
    EXPECT_EQ(say("STARTTLS\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.org>\r\n"),
              "220 2.0.0 Ready to start TLS\r\n");
    EXPECT_EQ(next_, action::start_tls);
    EXPECT_EQ(s().buffered(), 0u);
    // Until the handshake is reported, nothing else happens.
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, action::start_tls);
    s().feed("NOOP\r\n");  // plaintext that arrived before the handshake
    s().tls_started();
    EXPECT_TRUE(s().tls_active());
    EXPECT_FALSE(s().authenticated());
    EXPECT_FALSE(s().esmtp());
    EXPECT_EQ(s().current_state(), state::initial);
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_TRUE(policy_.sender_calls.empty());
    EXPECT_TRUE(say("MAIL FROM:<a@example.com>\r\n").starts_with("503 5.5.1 "));
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_tls);
    EXPECT_EQ(say("STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
}

TEST_F(server, starttls_in_implicit_tls_is_refused) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_TRUE(say("STARTTLS\r\n").starts_with("503 5.5.1 "));
    EXPECT_EQ(next_, action::need_input);
}

// ---------------------------------------------------------------- AUTH

TEST_F(server, auth_plain_with_initial_response) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_EQ(s().current_state(), state::auth);
    const auto& a = s().pending_auth();
    EXPECT_EQ(a.mechanism, "PLAIN");
    EXPECT_TRUE(a.first);
    EXPECT_TRUE(a.has_initial_response);
    EXPECT_EQ(a.data, std::string("\0alice@example.com\0secret", 26));
    EXPECT_EQ(go(), "");
    EXPECT_EQ(next_, action::authenticate);
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
    EXPECT_TRUE(s().authenticated());
    EXPECT_EQ(s().identity(), "alice@example.com");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_EQ(say("AUTH PLAIN\r\n"), "503 5.5.1 Error: already authenticated\r\n");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "250 2.1.0 Sender ok\r\n");
}

TEST_F(server, auth_plain_without_initial_response) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_EQ(say("auth plain\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_EQ(s().pending_auth().mechanism, "PLAIN");
    EXPECT_FALSE(s().pending_auth().has_initial_response);
    EXPECT_EQ(s().pending_auth().data, "");
    s().auth_challenge("");
    EXPECT_EQ(go(), "334 \r\n");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(say(plain_credentials + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_FALSE(s().pending_auth().first);
    EXPECT_EQ(s().pending_auth().data, std::string("\0alice@example.com\0secret", 26));
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
}

TEST_F(server, auth_login_two_challenges_then_failure) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_EQ(say("AUTH LOGIN\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_challenge("Username:");
    EXPECT_EQ(go(), "334 VXNlcm5hbWU6\r\n");
    EXPECT_EQ(say(text::base64_encode("alice@example.com") + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_EQ(s().pending_auth().mechanism, "LOGIN");
    EXPECT_EQ(s().pending_auth().data, "alice@example.com");
    s().auth_challenge("Password:");
    EXPECT_EQ(go(), "334 UGFzc3dvcmQ6\r\n");
    EXPECT_EQ(say(text::base64_encode("wrong") + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_EQ(s().pending_auth().data, "wrong");
    s().auth_failure(replies::auth_credentials_incorrect());
    EXPECT_EQ(go(), "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.\r\n");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_FALSE(s().authenticated());
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "530 5.7.57 Client not authenticated to send mail.\r\n");
}

TEST_F(server, auth_empty_initial_response) {
    start(tls_options());
    say("EHLO c\r\n");
    say("AUTH PLAIN =\r\n");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_TRUE(s().pending_auth().has_initial_response);
    EXPECT_EQ(s().pending_auth().data, "");
}

TEST_F(server, auth_cancel) {
    start(tls_options());
    say("EHLO c\r\n");
    say("AUTH LOGIN\r\n");
    s().auth_challenge("Username:");
    go();
    EXPECT_EQ(say("*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
    EXPECT_EQ(next_, action::need_input);
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_FALSE(s().authenticated());
    say("AUTH PLAIN\r\n");
    EXPECT_EQ(next_, action::authenticate);  // may start over
}

TEST_F(server, auth_bad_base64) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_EQ(say("AUTH PLAIN !!!notbase64\r\n"), "501 5.5.2 Error: invalid base64 data\r\n");
    EXPECT_EQ(next_, action::need_input);
    say("AUTH LOGIN\r\n");
    s().auth_challenge("Username:");
    go();
    EXPECT_EQ(say("YWxpY2U\r\n"), "501 5.5.2 Error: invalid base64 data\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
}

TEST_F(server, auth_response_line_limit) {
    start(tls_options());
    say("EHLO c\r\n");
    say("AUTH PLAIN\r\n");
    s().auth_challenge("");
    go();
    // Up to 12288 octets are a valid SASL response line (RFC 4954).
    const std::string long_response = text::base64_encode(std::string(9000, 'x'));
    ASSERT_GT(long_response.size(), 2048u);
    EXPECT_EQ(say(long_response + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_EQ(s().pending_auth().data.size(), 9000u);
    s().auth_challenge("");
    go();
    EXPECT_EQ(say(std::string(12289, 'A') + "\r\n"), "500 5.5.2 Line too long\r\n");
    EXPECT_EQ(s().current_state(), state::ready);
    EXPECT_EQ(say("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(server, auth_unknown_mechanism_and_syntax) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_EQ(say("AUTH CRAM-MD5\r\n"), "504 5.5.4 Unrecognized authentication type\r\n");
    EXPECT_EQ(say("AUTH XOAUTH2 abc=\r\n"), "504 5.5.4 Unrecognized authentication type\r\n");
    EXPECT_TRUE(say("AUTH\r\n").starts_with("501 5.5.4 "));
    EXPECT_TRUE(say("AUTH PLAIN a b\r\n").starts_with("501 5.5.4 "));
}

TEST_F(server, auth_failures_are_counted_then_421) {
    start(tls_options());
    say("EHLO c\r\n");
    for (int i = 0; i < 2; ++i) {
        say("AUTH PLAIN " + plain_credentials + "\r\n");
        ASSERT_EQ(next_, action::authenticate);
        s().auth_failure(replies::auth_disabled_for_mailbox());
        EXPECT_EQ(go(), replies::auth_disabled_for_mailbox().wire());
        EXPECT_EQ(next_, action::need_input);
    }
    say("AUTH PLAIN " + plain_credentials + "\r\n");
    s().auth_failure(replies::auth_credentials_incorrect());
    EXPECT_EQ(go(), replies::auth_credentials_incorrect().wire() + "421 4.7.0 Too many authentication failures\r\n");
    EXPECT_EQ(next_, action::close);
    EXPECT_EQ(s().current_state(), state::closed);
}

TEST_F(server, auth_plaintext_allowed_when_configured) {
    auto o = plain_options();
    o.require_tls_for_auth = false;
    start(o);
    say("EHLO c\r\n");
    say("AUTH PLAIN " + plain_credentials + "\r\n");
    EXPECT_EQ(next_, action::authenticate);
}

TEST_F(server, pipelined_command_after_auth_waits_for_the_result) {
    start(tls_options());
    say("EHLO c\r\n");
    EXPECT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\nMAIL FROM:<alice@example.com>\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n250 2.1.0 Sender ok\r\n");
    EXPECT_EQ(policy_.sender_calls, std::vector<std::string>{"alice@example.com|alice@example.com"});
}

TEST_F(server, auth_then_full_message) {
    authenticated_tls();
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nhi\r\n.\r\n"),
              "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    ASSERT_EQ(next_, action::store);
    EXPECT_EQ(s().current_envelope().identity, "alice@example.com");
}

// ---------------------------------------------------------------- trace hook

TEST_F(server, trace_sees_replies_and_state_changes) {
    start();
    std::vector<std::string> trace;
    s().set_trace([&](std::string_view line) { trace.emplace_back(line); });
    say("EHLO c\r\nFOO\r\n");
    ASSERT_GE(trace.size(), 3u);
    EXPECT_EQ(trace[0], "state initial -> ready");
    EXPECT_TRUE(trace[1].starts_with("reply 250 mx.test / PIPELINING"));
    EXPECT_EQ(trace[2], "reply 500 5.5.2 Error: command not recognized");
}

}  // namespace
}  // namespace subrelay::smtp

namespace subrelay::smtp {
namespace {

// Deterministic garbage mixed with valid commands: the session never throws,
// never buffers more than a line, and always answers actions consistently.
TEST(server_robustness, random_input) {
    std::uint32_t seed = 12345;
    auto next = [&seed] {
        seed = seed * 1664525u + 1013904223u;
        return seed >> 8;
    };
    const std::string pieces[] = {"EHLO x\r\n", "MAIL FROM:<a@example.com>\r\n", "RCPT TO:<b@example.org>\r\n",
                                  "DATA\r\n", "\r\n.\r\n", ".", "\r", "\n", "AUTH PLAIN\r\n", "*\r\n", "RSET\r\n",
                                  "STARTTLS\r\n", std::string(3000, 'z'), std::string(1, '\0'), "NOOP\r\n"};
    for (int round = 0; round < 50; ++round) {
        server_options o;
        o.hostname = "mx.test";
        o.max_unknown_commands = 1000;
        o.max_auth_failures = 1000;
        o.data_chunk_size = 16;
        server_session s(o);
        std::string piece;
        s.set_identity("alice@example.com");
        for (int i = 0; i < 300 && s.current_state() != server_session::state::closed; ++i) {
            std::string chunk;
            if (next() % 3 == 0) {
                for (std::uint32_t n = next() % 64; n > 0; --n) chunk += static_cast<char>(next() & 0xFF);
            } else {
                chunk = pieces[next() % std::size(pieces)];
            }
            s.feed(chunk);
            for (int guard = 0; guard < 1000; ++guard) {
                auto st = s.advance();
                if (st.next == action::need_input || st.next == action::close) break;
                if (st.next == action::store) s.stored(replies::ok());
                else if (st.next == action::data_chunk && next() % 8 == 0) s.data_failed(replies::temporary_failure());
                else if (st.next == action::data_chunk) s.take_data(piece);
                else if (st.next == action::authenticate) s.auth_failure(replies::auth_credentials_incorrect());
                else if (st.next == action::start_tls) s.tls_started();
            }
            EXPECT_LE(s.buffered(), 12290u);
        }
    }
}

TEST(reply_parser_robustness, random_input) {
    std::uint32_t seed = 777;
    reply_parser p;
    for (int i = 0; i < 20000; ++i) {
        seed = seed * 1664525u + 1013904223u;
        const char c = "0123456789 -\r\nabc"[(seed >> 8) % 17];
        p.feed(std::string_view(&c, 1));
        while (auto r = p.next()) EXPECT_TRUE(r->code == 0 || (r->code >= 200 && r->code < 600));
    }
}

}  // namespace
}  // namespace subrelay::smtp

namespace subrelay::smtp {
namespace {

// A network binding lets a client send without AUTH as the bound account;
// AUTH still works and, when it succeeds, its identity wins.
class bound_session : public server {};

TEST_F(bound_session, mail_without_auth_uses_the_bound_identity) {
    start(tls_options());
    s().set_bound_identity("scanner@contoso.com");
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_tls);  // AUTH still offered
    EXPECT_EQ(say("MAIL FROM:<scanner@contoso.com>\r\n"), "250 2.1.0 Sender ok\r\n");
    ASSERT_EQ(policy_.sender_calls.size(), 1u);
    EXPECT_EQ(policy_.sender_calls[0], "scanner@contoso.com|scanner@contoso.com");
    EXPECT_EQ(say("RCPT TO:<bob@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
    EXPECT_EQ(policy_.recipient_calls.at(0), "scanner@contoso.com|scanner@contoso.com|bob@example.org");
    EXPECT_TRUE(s().bound());
    EXPECT_FALSE(s().authenticated());
}

TEST_F(bound_session, auth_overrides_the_binding) {
    start(tls_options());
    s().set_bound_identity("scanner@contoso.com");
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_tls);
    EXPECT_EQ(say("AUTH PLAIN " + plain_credentials + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    s().auth_success("alice@example.com");
    EXPECT_EQ(go(), "235 2.7.0 Authentication successful\r\n");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "250 2.1.0 Sender ok\r\n");
    EXPECT_EQ(policy_.sender_calls.at(0), "alice@example.com|alice@example.com");
    EXPECT_FALSE(s().bound());
}

TEST_F(bound_session, binding_survives_starttls) {
    start();
    s().set_bound_identity("scanner@contoso.com");
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_plain);
    EXPECT_EQ(say("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
    s().tls_started();
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_tls);
    EXPECT_EQ(say("MAIL FROM:<scanner@contoso.com>\r\n"), "250 2.1.0 Sender ok\r\n");
}

TEST_F(bound_session, without_binding_mail_needs_auth) {
    start(tls_options());
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_tls);
    EXPECT_EQ(say("MAIL FROM:<scanner@contoso.com>\r\n"), "530 5.7.57 Client not authenticated to send mail.\r\n");
    EXPECT_TRUE(policy_.sender_calls.empty());
}

}  // namespace
}  // namespace subrelay::smtp

namespace subrelay::smtp {
namespace {

class policy_421 : public server {};

TEST_F(policy_421, a_421_from_the_policy_closes_the_session) {
    ready();
    policy_.sender_refusal = reply(421, "4.4.2", "Message submission rate for this client has exceeded the configured limit");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n"),
              "421 4.4.2 Message submission rate for this client has exceeded the configured limit\r\n");
    EXPECT_EQ(next_, action::close);
}


TEST_F(server, helo_names_are_checked) {
    start(tls_options());
    EXPECT_EQ(say("EHLO " + std::string(256, 'a') + "\r\n"),
              "501 5.5.2 Error: HELO/EHLO name too long (at most 255 characters)\r\n");
    EXPECT_EQ(say("HELO two words\r\n"),
              "501 5.5.2 Error: invalid HELO/EHLO name: send a domain name or an address literal\r\n");
    EXPECT_EQ(s().current_state(), state::initial);
    EXPECT_EQ(say("HELO NPI7A2B3C\r\n").substr(0, 4), "250 ");
    EXPECT_EQ(s().helo_name(), "NPI7A2B3C");
    EXPECT_EQ(say("EHLO [192.0.2.7]\r\n").substr(0, 4), "250-");
}

// RFC 4954 4: the AUTH command with an initial response may be up to 12288
// octets too, not only the responses after a challenge.
TEST_F(server, auth_command_line_limit) {
    start(tls_options());
    say("EHLO c\r\n");
    const std::string initial = text::base64_encode(std::string(1, '\0') + "alice" + std::string(1, '\0') +
                                                    std::string(8000, 'p'));
    ASSERT_GT(initial.size(), 2048u);
    EXPECT_EQ(say("AUTH PLAIN " + initial + "\r\n"), "");
    ASSERT_EQ(next_, action::authenticate);
    EXPECT_EQ(s().pending_auth().data.size(), 8007u);
    s().auth_failure(reply(535, "5.7.8", "Authentication credentials invalid"));
    go();
    EXPECT_EQ(say("AUTH PLAIN " + std::string(12289, 'A') + "\r\n"), "500 5.5.2 Line too long\r\n");
    EXPECT_EQ(say("NOOP " + std::string(2100, 'x') + "\r\n"), "500 5.5.2 Line too long\r\n");
}


// 100,000 NOOPs were answered: a client that sends no mail is cut off, like
// Postfix's smtpd_junk_command_limit.
TEST_F(server, commands_that_send_no_mail_are_limited) {
    auto o = plain_options();
    o.max_junk_commands = 4;
    start(o);
    s_->set_identity("alice@example.com");
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_plain);  // the first greeting is not junk
    EXPECT_EQ(say("NOOP\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(say("RSET\r\n"), "250 2.0.0 Ok\r\n");
    EXPECT_EQ(say("EHLO client.test\r\n"), ehlo_plain);
    EXPECT_TRUE(say("HELP\r\n").starts_with("214 "));
    EXPECT_EQ(say("NOOP\r\n"), "421 4.7.0 mx.test Error: too many commands that send no mail\r\n");
    EXPECT_EQ(next_, action::close);
}

TEST_F(server, an_accepted_message_starts_the_junk_count_again) {
    auto o = plain_options();
    o.max_junk_commands = 2;
    start(o);
    s_->set_identity("alice@example.com");
    say("EHLO client.test\r\n");
    for (int round = 0; round < 3; ++round) {
        EXPECT_EQ(say("NOOP\r\n"), "250 2.0.0 Ok\r\n") << round;
        EXPECT_EQ(say("NOOP\r\n"), "250 2.0.0 Ok\r\n") << round;
        EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "250 2.1.0 Sender ok\r\n");
        EXPECT_EQ(say("RCPT TO:<bob@example.org>\r\n"), "250 2.1.5 Recipient ok\r\n");
        say("DATA\r\n");
        say("x\r\n.\r\n");
        ASSERT_EQ(next_, action::store);
        std::string taken;
        s().take_data(taken);
        s().stored(reply(250, "2.0.0", "Ok: queued as X"));
        EXPECT_EQ(go(), "250 2.0.0 Ok: queued as X\r\n");
    }
    say("NOOP\r\nNOOP\r\n");
    EXPECT_EQ(say("NOOP\r\n"), "421 4.7.0 mx.test Error: too many commands that send no mail\r\n");
}

}  // namespace
}  // namespace subrelay::smtp

// ---------------------------------------------------------------- deferred policy

// server_options::deferred_policy: MAIL and RCPT stop with
// action::check_policy; the driver decides (it may wait for counters shared
// between nodes) and the session goes on with the next pipelined command.
namespace subrelay::smtp {
namespace {

class deferred : public server {
protected:
    void ready_deferred() {
        auto o = plain_options();
        o.deferred_policy = true;
        start(o);
        s().set_identity("alice@example.com");
        ASSERT_EQ(say("EHLO client.test\r\n"), ehlo_plain);
    }
};

TEST_F(deferred, pipelined_commands_wait_for_each_decision) {
    ready_deferred();
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<x@example.net>\r\n"
                  "DATA\r\n"),
              "");
    ASSERT_EQ(next_, action::check_policy);
    EXPECT_EQ(s().pending_check().kind, verb::mail);
    EXPECT_EQ(s().pending_check().identity, "alice@example.com");
    EXPECT_EQ(s().pending_check().address, "alice@example.com");
    EXPECT_EQ(s().current_state(), state::ready) << "nothing proceeds before the decision";
    s().policy_checked(std::nullopt);
    EXPECT_EQ(go(), "250 2.1.0 Sender ok\r\n");
    ASSERT_EQ(next_, action::check_policy);
    EXPECT_EQ(s().pending_check().kind, verb::rcpt);
    EXPECT_EQ(s().pending_check().sender, "alice@example.com");
    EXPECT_EQ(s().pending_check().address, "bob@example.org");
    s().policy_checked(std::nullopt);
    EXPECT_EQ(go(), "250 2.1.5 Recipient ok\r\n");
    ASSERT_EQ(next_, action::check_policy);
    EXPECT_EQ(s().pending_check().address, "x@example.net");
    s().policy_checked(reply(550, "5.7.1", "Recipient not allowed"));
    EXPECT_EQ(go(), "550 5.7.1 Recipient not allowed\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(s().current_envelope().recipients, std::vector<std::string>{"bob@example.org"});
    EXPECT_TRUE(policy_.sender_calls.empty() && policy_.recipient_calls.empty())
        << "the server_policy is not called when the driver decides";
}

TEST_F(deferred, a_421_decision_closes_the_session) {
    ready_deferred();
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n"), "");
    ASSERT_EQ(next_, action::check_policy);
    s().policy_checked(reply(421, "4.4.2", "Message submission rate for this client has exceeded the configured limit"));
    EXPECT_EQ(go(), "421 4.4.2 Message submission rate for this client has exceeded the configured limit\r\n");
    EXPECT_EQ(next_, action::close);
}

TEST_F(deferred, commands_refused_by_the_session_reach_no_decision) {
    ready_deferred();
    EXPECT_EQ(say("RCPT TO:<bob@example.org>\r\n").substr(0, 4), "503 ");
    EXPECT_EQ(say("MAIL FROM:<bad address>\r\n").substr(0, 4), "501 ");
    EXPECT_EQ(next_, action::need_input);
    // A decision nobody asked for changes nothing.
    s().policy_checked(reply(550, "5.7.1", "no"));
    EXPECT_EQ(go(), "");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "");
    EXPECT_EQ(next_, action::check_policy);
}

}  // namespace
}  // namespace subrelay::smtp

// ---------------------------------------------------------------- refusals observed

// The refusals the session makes by itself are told to its observer with
// their stage (the relay counts them in subrelay_messages_total); those the
// driver decides are not, so nothing is counted twice.
namespace subrelay::smtp {
namespace {

TEST_F(deferred, the_sessions_own_refusals_are_observed_with_their_stage) {
    auto o = plain_options();
    o.deferred_policy = true;
    o.max_message_size = 10;
    start(o);
    std::vector<std::string> seen;
    s().set_refusal_observer([&seen](std::string_view stage, const reply& r) {
        seen.push_back(std::string(stage) + " " + std::to_string(r.code));
    });
    say("EHLO client.test\r\n");
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n").substr(0, 4), "530 ");  // not authenticated
    s().set_identity("alice@example.com");
    EXPECT_EQ(say("RCPT TO:<bob@example.org>\r\n").substr(0, 4), "503 ");      // out of sequence
    EXPECT_EQ(say("MAIL FROM:<alice@example.com>\r\n"), "");
    s().policy_checked(std::nullopt);
    EXPECT_EQ(go(), "250 2.1.0 Sender ok\r\n");
    EXPECT_EQ(say("RCPT TO:<bob@example.org>\r\n"), "");
    s().policy_checked(reply(550, "5.7.1", "no"));                              // the driver's: not observed
    EXPECT_EQ(go(), "550 5.7.1 no\r\n");
    EXPECT_EQ(say("DATA\r\n").substr(0, 4), "554 ");                           // no valid recipients
    EXPECT_EQ(say("RCPT TO:<carol@example.org>\r\n"), "");
    s().policy_checked(std::nullopt);
    EXPECT_EQ(go(), "250 2.1.5 Recipient ok\r\n");
    EXPECT_EQ(say("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    std::string end = say("Subject: far too long for ten bytes\r\n.\r\n");
    while (next_ == action::discard) end += go();
    EXPECT_EQ(end.substr(0, 4), "552 ");
    EXPECT_EQ(seen, (std::vector<std::string>{"mail 530", "rcpt 503", "data 554", "data 552"}));
}

}  // namespace
}  // namespace subrelay::smtp
