#pragma once
// SMTP replies as values: a code, an enhanced status code (RFC 3463) and text.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subrelay::smtp {

struct reply {
    int code = 0;                    // 250, 354, 535, ...
    std::string enhanced;            // "2.1.0"; empty where RFC 2034 has none (greeting, EHLO, 334)
    std::vector<std::string> lines;  // at least one line of text (may be empty text)

    reply() = default;
    reply(int c, std::string enh, std::string text);
    reply(int c, std::string enh, std::vector<std::string> text_lines);

    // "250-a\r\n250 b\r\n"; the enhanced code is written on every line.
    [[nodiscard]] std::string wire() const;
    // One line for logs: "250 2.0.0 text" (multi-line joined with " / ").
    [[nodiscard]] std::string summary() const;

    [[nodiscard]] bool positive() const { return code >= 200 && code < 400; }
    [[nodiscard]] bool transient() const { return code >= 400 && code < 500; }
    [[nodiscard]] bool permanent() const { return code >= 500; }

    friend bool operator==(const reply&, const reply&) = default;
};

// The enhanced status code (RFC 3463) in a one-line reply as summary()
// writes it ("550 5.1.1 text" -> "5.1.1"), or at the start of a reason of
// our own ("4.4.7 text" -> "4.4.7"); nullopt when there is none.
std::optional<std::string> enhanced_status_in(std::string_view line);

// Incremental parser of replies received from a server (client side).
// Feed bytes; complete replies (multi-line joined) come out of next().
class reply_parser {
public:
    void feed(std::string_view bytes);
    // Returns a complete reply, or nullopt when more bytes are needed.
    // A malformed line yields a reply with code 0 (protocol error).
    std::optional<reply> next();
    [[nodiscard]] bool has_buffered() const { return !buffer_.empty(); }
    void clear() { buffer_.clear(); partial_ = {}; }

private:
    std::string buffer_;
    reply partial_;
};

// Well-known replies, named so that the text lives in one place.
namespace replies {
reply greeting(std::string_view hostname);           // 220 host ESMTP subrelay
reply ok(std::string_view enhanced = "2.0.0");       // 250 x.x.x Ok
reply closing(std::string_view hostname);            // 221 2.0.0 Bye
reply shutting_down(std::string_view hostname);      // 421 4.3.2 Service shutting down
reply timeout(std::string_view hostname);            // 421 4.4.2 Timeout exceeded
reply temporary_failure();                            // 451 4.3.0 Temporary failure, try again later
reply permanent_failure();                            // 554 5.3.0 Transaction failed
reply auth_credentials_incorrect();                   // 535 5.7.139 ... the user credentials were incorrect.
reply auth_disabled_for_tenant();                     // 535 5.7.139 ... disabled for the Tenant ...
reply auth_disabled_for_mailbox();                    // 535 5.7.139 ... disabled for the Mailbox ...
reply not_authenticated();                            // 530 5.7.57 Client not authenticated to send mail.
reply send_as_denied();                               // 550 5.7.60 SMTP; Client does not have permissions to send as this sender
reply concurrent_connections_exceeded();              // 432 4.3.2 Concurrent connections limit exceeded.
}  // namespace replies

}  // namespace subrelay::smtp
