// The upstream client session driven by whatever the server answers.
// Input: one byte of options, then what the server sends.
//   bits 0-1: TLS none, STARTTLS, implicit     bit 2: AUTH XOAUTH2 (else none)
//   bit 3: the message is streamed in pieces    bits 4-7: how the bytes are cut (0: whole)
// The driver sends one message to two recipients, then QUITs.
// Checked: everything sent is made of CRLF-ended lines (no bare CR or LF,
// so no upstream can see a command or an end of data we did not mean);
// "<CRLF>.<CRLF>" goes out at most once per message; the token goes out
// only after AUTH XOAUTH2; results name only the message's recipients;
// nothing is sent after failed or closed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/client_session.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::smtp;

// The message has a line starting with a dot, a bare LF, a bare CR and a
// would-be terminator: all must be stuffed or made CRLF on the wire.
constexpr std::string_view content = "Subject: t\r\n\r\n.hidden\nbare LF\rbare CR\r\n.\r\nMAIL FROM:<x@y>\r\nend";
constexpr std::string_view token = "dXNlcj1yZWxheUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB0b2sBAQ==";

bool crlf_lines(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return s.empty() || s.ends_with("\r\n");
}

std::size_t count(std::string_view s, std::string_view what) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string_view::npos; at = s.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    client_options o;
    o.ehlo_name = "relay.test";
    o.tls = (flags & 3) == 0 ? client_tls::none : (flags & 3) == 2 ? client_tls::implicit : client_tls::starttls;
    o.auth = (flags & 4) != 0 ? client_auth::xoauth2 : client_auth::none;
    const bool streamed = (flags & 8) != 0;
    const std::size_t cut = flags >> 4;

    outgoing_message m;
    m.sender = "scanner@example.com";
    m.recipients = {"a@example.com", "b@example.org"};
    m.streamed = streamed;
    m.data = streamed ? std::string_view{} : content;
    m.size = content.size();
    m.eight_bit = true;

    client_session c(o);
    std::string sent;
    std::size_t messages = 0;
    bool over = false;
    for (int guard = 0; guard < 100000 && !over; ++guard) {
        const client_step st = c.advance();
        FUZZ_CHECK(crlf_lines(st.send));
        sent += st.send;
        if (const auto at = sent.find(token); at != std::string::npos) {
            const auto command = sent.find("AUTH XOAUTH2\r\n");
            FUZZ_CHECK(command != std::string::npos && command < at);
        }
        switch (st.next) {
        case client_action::need_input: {
            if (rest.empty()) {
                over = true;
                break;
            }
            const std::size_t n = cut == 0 ? rest.size() : std::min(cut, rest.size());
            c.feed(rest.substr(0, n));
            rest.remove_prefix(n);
            break;
        }
        case client_action::start_tls:
            c.tls_started();
            break;
        case client_action::need_auth_token:
            c.auth_token(std::string(token));
            break;
        case client_action::send_content:
            for (std::size_t i = 0; i < content.size(); i += 5) c.add_content(content.substr(i, 5));
            c.end_content();
            break;
        case client_action::idle:
            if (messages++ == 0)
                c.send_message(m);
            else
                c.quit();
            break;
        case client_action::message_done: {
            const message_result& r = c.result();
            FUZZ_CHECK(r.final_reply.code >= 200 && r.final_reply.code <= 599);
            FUZZ_CHECK(r.recipients.size() <= m.recipients.size());
            for (std::size_t i = 0; i < r.recipients.size(); ++i) FUZZ_CHECK(r.recipients[i].address == m.recipients[i]);
            FUZZ_CHECK(r.delivered().size() <= r.recipients.size());
            break;
        }
        case client_action::failed:
            FUZZ_CHECK(!c.error().stage.empty());
            over = true;
            break;
        case client_action::closed:
            over = true;
            break;
        }
    }
    FUZZ_CHECK(count(sent, "\r\n.\r\n") <= 1);
    if (over) {
        // Nothing more goes out once the session is over.
        c.feed("250 OK\r\n");
        const client_step st = c.advance();
        if (st.next == client_action::failed || st.next == client_action::closed) FUZZ_CHECK(st.send.empty());
    }
    return 0;
}
