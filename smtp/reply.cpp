#include "smtp/reply.hpp"

#include <cctype>
#include <utility>

namespace subrelay::smtp {

reply::reply(int c, std::string enh, std::string text)
    : code(c), enhanced(std::move(enh)), lines{std::move(text)} {}

reply::reply(int c, std::string enh, std::vector<std::string> text_lines)
    : code(c), enhanced(std::move(enh)), lines(std::move(text_lines)) {}

std::string reply::wire() const {
    const std::string code_text = std::to_string(code);
    std::string out;
    const std::size_t n = lines.empty() ? 1 : lines.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::string empty;
        const std::string& text = lines.empty() ? empty : lines[i];
        out += code_text;
        out += (i + 1 < n) ? '-' : ' ';
        if (!enhanced.empty()) {
            out += enhanced;
            if (!text.empty()) out += ' ';
        }
        out += text;  // "334 \r\n" for an empty challenge: RFC 4954 requires the space
        out += "\r\n";
    }
    return out;
}

std::optional<std::string> enhanced_status_in(std::string_view line) {
    auto looks_like_status = [](std::string_view w) {
        return w.size() >= 5 && (w[0] == '2' || w[0] == '4' || w[0] == '5') && w[1] == '.' &&
               w.find_first_not_of("0123456789.") == std::string_view::npos;
    };
    for (int word = 0; word < 2 && !line.empty(); ++word) {
        const auto end = line.find(' ');
        const std::string_view w = line.substr(0, end);
        if (looks_like_status(w)) return std::string(w);
        if (end == std::string_view::npos) break;
        line.remove_prefix(end + 1);
    }
    return std::nullopt;
}

std::string reply::summary() const {
    std::string out = std::to_string(code);
    if (!enhanced.empty()) out += ' ' + enhanced;
    bool first = true;
    for (const auto& l : lines) {
        out += first ? " " : " / ";
        out += l;
        first = false;
    }
    return out;
}

namespace {

constexpr std::size_t max_reply_line = 4096;   // RFC 5321 says 512; be generous
constexpr std::size_t max_reply_lines = 1000;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "2.1.0" style code whose class matches the reply's first digit.
std::size_t enhanced_prefix(std::string_view text, int code) {
    if (text.size() < 5) return 0;
    const char cls = static_cast<char>('0' + code / 100);
    if (text[0] != cls || text[1] != '.') return 0;
    std::size_t i = 2;
    std::size_t digits = 0;
    while (i < text.size() && is_digit(text[i]) && digits < 3) { ++i; ++digits; }
    if (digits == 0 || i >= text.size() || text[i] != '.') return 0;
    ++i;
    digits = 0;
    while (i < text.size() && is_digit(text[i]) && digits < 3) { ++i; ++digits; }
    if (digits == 0) return 0;
    if (i < text.size() && text[i] != ' ') return 0;
    return i;
}

}  // namespace

void reply_parser::feed(std::string_view bytes) { buffer_.append(bytes); }

std::optional<reply> reply_parser::next() {
    for (;;) {
        const auto lf = buffer_.find('\n');
        if (lf == std::string::npos) {
            if (buffer_.size() > max_reply_line) {
                reply bad(0, "", buffer_.substr(0, 64));
                buffer_.clear();
                partial_ = {};
                return bad;
            }
            return std::nullopt;
        }
        std::string line = buffer_.substr(0, lf);
        buffer_.erase(0, lf + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();

        auto malformed = [&] {
            partial_ = {};
            return reply(0, "", line);
        };
        if (line.size() > max_reply_line) return malformed();
        if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
            line[0] < '2' || line[0] > '5')
            return malformed();
        if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return malformed();
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        const bool more = line.size() > 3 && line[3] == '-';
        std::string text = line.size() > 4 ? line.substr(4) : std::string();

        if (!partial_.lines.empty() && partial_.code != code) return malformed();
        if (partial_.lines.empty()) {
            partial_.code = code;
            const auto n = enhanced_prefix(text, code);
            if (n != 0) partial_.enhanced = text.substr(0, n);
        }
        // Strip the enhanced code from every line that carries the same one.
        if (!partial_.enhanced.empty() && text.starts_with(partial_.enhanced) &&
            enhanced_prefix(text, code) == partial_.enhanced.size()) {
            text.erase(0, partial_.enhanced.size());
            if (!text.empty() && text.front() == ' ') text.erase(0, 1);
        }
        partial_.lines.push_back(std::move(text));
        if (partial_.lines.size() > max_reply_lines) return malformed();
        if (!more) {
            reply done = std::move(partial_);
            partial_ = {};
            return done;
        }
    }
}

namespace replies {

reply greeting(std::string_view hostname) {
    return {220, "", std::string(hostname) + " ESMTP subrelay"};
}
reply ok(std::string_view enhanced) { return {250, std::string(enhanced), "Ok"}; }
reply closing(std::string_view /*hostname*/) { return {221, "2.0.0", "Bye"}; }
reply shutting_down(std::string_view /*hostname*/) { return {421, "4.3.2", "Service shutting down"}; }
reply timeout(std::string_view hostname) {
    return {421, "4.4.2", std::string(hostname) + " Error: timeout exceeded"};
}
reply temporary_failure() { return {451, "4.3.0", "Temporary failure, try again later"}; }
reply permanent_failure() { return {554, "5.3.0", "Transaction failed"}; }
reply auth_credentials_incorrect() {
    return {535, "5.7.139", "Authentication unsuccessful, the user credentials were incorrect."};
}
reply auth_disabled_for_tenant() {
    return {535, "5.7.139",
            "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
            "Visit https://aka.ms/smtp_auth_disabled for more information."};
}
reply auth_disabled_for_mailbox() {
    return {535, "5.7.139",
            "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. "
            "Visit https://aka.ms/smtp_auth_disabled for more information."};
}
reply not_authenticated() { return {530, "5.7.57", "Client not authenticated to send mail."}; }
reply send_as_denied() {
    return {550, "5.7.60", "SMTP; Client does not have permissions to send as this sender"};
}
reply concurrent_connections_exceeded() {
    return {432, "4.3.2", "Concurrent connections limit exceeded."};
}

}  // namespace replies

}  // namespace subrelay::smtp
