// The server session state machine fed arbitrary client bytes.
// Input: one byte of options, then what the client sends.
//   bit 0: implicit TLS (port 465)        bit 1: bare LF accepted
//   bit 2: AUTH offered without TLS        bit 3: small limits (size, chunk, line, recipients)
//   bit 4: the policy refuses senders      bit 5: the policy refuses recipients
//   bits 6-7: how the bytes are cut: whole, 1, 3 or 61 bytes at a time
// The driver does what relay/session does: STARTTLS succeeds, AUTH succeeds
// for data containing "secret", the spool stores every other message.
// Checked: every reply is a well-formed SMTP reply ending in CRLF; input
// left buffered in command mode stays within a line; DATA handed out stays
// near one chunk; nothing is sent after a close.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/server_session.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::smtp;

class refusing_policy : public server_policy {
public:
    bool refuse_senders = false;
    bool refuse_recipients = false;
    std::optional<reply> check_sender(const std::string&, const std::string&) override {
        if (refuse_senders) return replies::send_as_denied();
        return std::nullopt;
    }
    std::optional<reply> check_recipient(const std::string&, const std::string&, const std::string&) override {
        if (refuse_recipients) return reply(550, "5.7.1", "Recipient domain not allowed");
        return std::nullopt;
    }
};

struct driver {
    server_session& s;
    const server_options& o;
    std::string piece;
    std::size_t messages = 0;
    std::size_t challenges = 0;
    bool closed = false;

    void check_send(const std::string& send) {
        FUZZ_CHECK(subrelay::fuzz::well_formed_replies(send));
    }

    // Runs the session until it needs input or closes.
    void run() {
        for (int guard = 0; guard < 100000; ++guard) {
            step st = s.advance();
            check_send(st.send);
            switch (st.next) {
            case action::need_input:
                if (s.current_state() != server_session::state::data) {
                    // An AUTH command line (with its initial response) and a
                    // SASL response may be 12,288 octets (RFC 4954); others
                    // max_command_line.
                    const std::size_t limit = std::max<std::size_t>(o.max_command_line, 12288);
                    FUZZ_CHECK(s.buffered() <= limit + 1);
                }
                return;
            case action::start_tls:
                s.tls_started();
                break;
            case action::authenticate: {
                const auth_request& a = s.pending_auth();
                if (a.first) challenges = 0;
                const std::size_t steps = a.mechanism == "LOGIN" ? 2 : (a.has_initial_response ? 0 : 1);
                if (a.data.find("secret") != std::string::npos) {
                    s.auth_success("alice@example.com");
                } else if (challenges < steps) {
                    s.auth_challenge(a.mechanism == "LOGIN" ? (challenges == 0 ? "Username:" : "Password:") : "");
                    ++challenges;
                } else {
                    s.auth_failure(replies::auth_credentials_incorrect());
                }
                break;
            }
            case action::data_chunk:
                // At most about twice a chunk is held however much was fed.
                FUZZ_CHECK(s.data().size() <= 2 * o.data_chunk_size + 8);
                s.take_data(piece);
                if (piece.size() % 7 == 3) s.data_failed(reply(452, "4.3.1", "Insufficient system storage"));
                break;
            case action::discard:
                break;
            case action::store:
                s.take_data(piece);
                if (messages++ % 2 == 0)
                    s.stored(reply(250, "2.0.0", "Ok: queued as 0123456789AB"));
                else
                    s.stored(replies::temporary_failure());
                break;
            case action::close:
                closed = true;
                FUZZ_CHECK(s.current_state() == server_session::state::closed);
                return;
            }
        }
        subrelay::fuzz::fail("advance() did not come back to need_input", __FILE__, __LINE__);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

    server_options o;
    o.hostname = "mx.test";
    o.implicit_tls = (flags & 1) != 0;
    o.bare_lf_mode = (flags & 2) != 0 ? bare_lf::accept : bare_lf::reject;
    o.require_tls_for_auth = (flags & 4) == 0;
    if ((flags & 8) != 0) {
        o.max_message_size = 200;
        o.data_chunk_size = 16;
        o.max_command_line = 64;
        o.max_recipients = 3;
    }
    refusing_policy policy;
    policy.refuse_senders = (flags & 16) != 0;
    policy.refuse_recipients = (flags & 32) != 0;
    static constexpr std::size_t cuts[] = {0, 1, 3, 61};
    const std::size_t cut = cuts[flags >> 6];

    server_session s(o, &policy);
    FUZZ_CHECK(subrelay::fuzz::well_formed_replies(s.greeting()));
    driver d{s, o, {}};
    std::string_view rest = input;
    while (!rest.empty() && !d.closed) {
        const std::size_t n = cut == 0 ? rest.size() : std::min(cut, rest.size());
        s.feed(rest.substr(0, n));
        rest.remove_prefix(n);
        d.run();
    }
    if (d.closed) {
        // A closed session takes no more input and says nothing more.
        s.feed("NOOP\r\n");
        const step st = s.advance();
        FUZZ_CHECK(st.send.empty() && st.next == action::close);
    }
    FUZZ_CHECK(subrelay::fuzz::well_formed_replies(s.on_timeout()));
    FUZZ_CHECK(subrelay::fuzz::well_formed_replies(s.on_shutdown()));
    return 0;
}
