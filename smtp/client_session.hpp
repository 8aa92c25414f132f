#pragma once
// The client side of SMTP (to the upstream) as a pure state machine:
// replies in, commands out. Drives greeting, EHLO, STARTTLS, AUTH XOAUTH2
// (two steps, as Exchange Online expects), then any number of messages on
// one connection, then QUIT. When the server offers PIPELINING (RFC 2920),
// MAIL, RCPT and DATA of a message go out in one write and their replies are
// taken in order; without it, one command per round trip.
//
// A driver (relay/delivery) does:
//     loop: feed(bytes read);
//           for (;;) { client_step s = session.advance(); write(s.send);
//                      switch (s.next) { need_input: read; start_tls: handshake, tls_started();
//                      need_auth_token: auth_token(xoauth2 base64 string);
//                      send_content: add_content(next piece) ... end_content();
//                      idle: send_message() or quit(); message_done: take result();
//                      failed: look at error(); close the connection; closed: done } }
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/data.hpp"
#include "smtp/reply.hpp"

namespace subrelay::smtp {

enum class client_tls { none, starttls, implicit };
enum class client_auth { none, xoauth2 };

struct client_options {
    std::string ehlo_name = "localhost";
    client_tls tls = client_tls::starttls;
    client_auth auth = client_auth::xoauth2;
};

enum class client_action {
    need_input,       // read bytes from the server, feed(), advance()
    start_tls,        // run the TLS handshake (STARTTLS got 220), then tls_started()
    need_auth_token,  // call auth_token() with base64 XOAUTH2 string, then advance()
    send_content,     // DATA is open: add_content() the next piece of a streamed message, or end_content()
    idle,             // ready for send_message() or quit()
    message_done,     // result() holds the outcome of the last message; then idle
    failed,           // error() says why; the connection must be closed
    closed,           // QUIT answered (or connection finished)
};

struct client_step {
    std::string send;
    client_action next = client_action::need_input;
};

struct outgoing_message {
    std::string sender;                   // "" for <>
    std::vector<std::string> recipients;
    std::string_view data;                // unstuffed message; must outlive the transaction
    // The content is not in `data`: the driver passes it in pieces after
    // client_action::send_content (as it reads it from the spool), so no
    // whole message is held in memory. `size` must then be set.
    bool streamed = false;
    std::size_t size = 0;                 // for SIZE= if the server advertises SIZE
    bool eight_bit = false;               // BODY=8BITMIME if advertised
    bool smtputf8 = false;                // SMTPUTF8 if advertised
};

struct recipient_result {
    std::string address;
    reply rcpt_reply;                     // reply to RCPT TO
};

struct message_result {
    reply final_reply;                    // reply to end of data, or the failing MAIL/DATA reply
    std::vector<recipient_result> recipients;
    // Recipients accepted by RCPT and then by the end-of-data reply.
    [[nodiscard]] std::vector<std::string> delivered() const;
};

struct client_error {
    std::string stage;                    // "greeting", "ehlo", "starttls", "auth", "mail", "protocol", ...
    reply server_reply;                   // the reply that failed (code 0 if none)
    std::string text;                     // human-readable
};

class client_session {
public:
    explicit client_session(client_options options);

    void feed(std::string_view bytes);
    client_step advance();

    void tls_started();                   // after a successful handshake: EHLO again
    void auth_token(std::string xoauth2_base64);
    void send_message(const outgoing_message& m);
    // A streamed message's content, piece by piece, after send_content; each
    // piece goes out dot-stuffed with the next advance(). end_content() after
    // the last piece sends the terminator.
    void add_content(std::string_view piece);
    void end_content();
    void quit();

    [[nodiscard]] const message_result& result() const { return result_; }
    [[nodiscard]] const client_error& error() const { return error_; }
    [[nodiscard]] const std::vector<std::string>& extensions() const { return extensions_; }  // EHLO keywords, upper-cased
    [[nodiscard]] bool has_extension(std::string_view keyword) const;
    [[nodiscard]] std::optional<std::size_t> max_size() const { return max_size_; }
    // True if the last AUTH failed with 535/5.7.x (the token was refused): the
    // caller may drop its cached token and retry once.
    [[nodiscard]] bool auth_rejected() const { return auth_rejected_; }
    // The current message's content went out (after a 354): only from then
    // on can the server have accepted it, so a transaction that failed before
    // may be tried again elsewhere without risking a second copy.
    [[nodiscard]] bool content_sent() const { return content_sent_; }

private:
    enum class stage {
        greeting, ehlo, starttls, tls_handshake, auth_token, auth_start, auth_response, auth_error_ack,
        idle, mail, rcpt, data, content, data_end, empty_data_end, rset, quit, closed, failed,
    };

    void on_reply(const reply& r);
    void on_ehlo(const reply& r);
    void after_ehlo();
    void send_line(std::string line);
    void send_rcpt(const std::string& address);
    void on_pipelined_data(const reply& r);
    void start_content();
    [[nodiscard]] bool any_recipient_accepted() const;
    [[nodiscard]] std::optional<reply> early_failure() const;
    void finish_with_rset(reply final_reply);
    void fail(std::string where, const reply& r, std::string text);

    client_options options_;
    reply_parser parser_;
    std::string out_;
    client_action pending_ = client_action::need_input;
    stage state_ = stage::greeting;
    bool tls_ = false;
    bool auth_rejected_ = false;
    std::vector<std::string> extensions_;
    std::vector<std::string> auth_mechanisms_;   // from "AUTH ...", upper-cased
    std::optional<std::size_t> max_size_;
    std::string token_;
    outgoing_message message_;
    std::size_t rcpt_index_ = 0;
    bool pipelined_ = false;                     // this message's MAIL/RCPT/DATA went out in one batch
    bool content_sent_ = false;                  // this message's content went out
    dot_stuffer stuffer_;
    std::optional<reply> mail_refusal_;          // pipelined: MAIL refused, the rest of the batch is moot
    message_result result_;
    client_error error_;
};


}  // namespace subrelay::smtp
