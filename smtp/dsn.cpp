#include "smtp/dsn.hpp"

#include <utility>

#include "smtp/text/ascii.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::smtp {

namespace {

constexpr std::size_t max_line = 998;                    // RFC 5322 2.1.1, without the CRLF
constexpr std::size_t fold_width = 78;                   // preferred line length
constexpr std::size_t max_value = 900;                   // addresses, host names, ids
constexpr std::size_t max_diagnostic = 2000;             // a remote reply, before folding
constexpr std::size_t max_returned_headers = 128 * 1024; // the original's header section

bool is_ctl(unsigned char c) { return c < 32 || c == 127; }

using text::ascii_lower;
using text::trim;

// A value that goes into a header or a report field: one line of US-ASCII.
// Runs of CR, LF and TAB become one space (so nothing can start a new
// field), other control characters and non-ASCII bytes become '?'.
std::string clean(std::string_view s, std::size_t max) {
    std::string out;
    out.reserve(s.size() < max ? s.size() : max);
    bool space = false;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += (is_ctl(c) || c >= 128) ? '?' : ch;
        if (out.size() >= max) break;
    }
    if (out.size() > max) out.resize(max);
    return out;
}

// An address shown inside angle brackets: no brackets of its own.
std::string clean_address(std::string_view s) {
    std::string out = clean(s, max_value);
    std::erase_if(out, [](char c) { return c == '<' || c == '>'; });
    return out;
}

// A host name or an id: letters, digits and a few punctuation marks only.
std::string clean_token(std::string_view s, std::string_view allowed_punct, std::size_t max = max_value) {
    std::string out;
    for (const char ch : s) {
        if (out.size() >= max) break;
        const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (alnum || allowed_punct.find(ch) != std::string_view::npos) out += ch;
    }
    return out;
}

std::string clean_host(std::string_view s) { return clean_token(s, ".-_:[]"); }

// Folds `prefix` + `text` into lines of at most fold_width octets where the
// words allow it, and never more than max_line. Continuation lines start
// with `continuation` (whitespace, so that the result unfolds to one line).
// Each line ends with CRLF.
std::string fold(std::string_view prefix, std::string_view text, std::string_view continuation = " ") {
    std::string out;
    std::string line(prefix);
    bool fresh = true;  // no word on the current line yet
    std::size_t pos = 0;
    while (pos < text.size()) {
        if (text[pos] == ' ') {
            ++pos;
            continue;
        }
        auto end = text.find(' ', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view word = text.substr(pos, end - pos);
        pos = end;
        const std::size_t sep = fresh ? 0 : 1;
        if (!fresh && line.size() + sep + word.size() > fold_width) {
            out += line + "\r\n";
            line = continuation;
            fresh = true;
        }
        if (!fresh) line += ' ';
        // A word too long for any line is cut where the hard limit falls.
        while (line.size() + word.size() > max_line) {
            const std::size_t room = line.size() < max_line ? max_line - line.size() : 0;
            line += word.substr(0, room);
            word.remove_prefix(room);
            out += line + "\r\n";
            line = continuation;
        }
        line += word;
        fresh = false;
    }
    out += line + "\r\n";
    return out;
}

std::string utc_date(std::int64_t when) { return text::rfc5322_date(when, 0); }

std::string random_hex(std::size_t digits, random_source& random) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    while (out.size() < digits) {
        auto v = random.next();
        for (int i = 0; i < 16 && out.size() < digits; ++i, v >>= 4) out += hex[v & 0xF];
    }
    return out;
}

// Postfix-like: the status is class.subject.detail with class 2, 4 or 5.
bool valid_status(std::string_view s) {
    if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
        if (digits < 1 || digits > 3) return false;
        if (part == 0) {
            if (i >= s.size() || s[i] != '.') return false;
            ++i;
        }
    }
    return i == s.size();
}

// "550 5.1.1 ...", "451-..." or a bare "421": an SMTP reply.
bool looks_like_smtp_reply(std::string_view s) {
    if (s.size() < 3 || s[0] < '2' || s[0] > '5') return false;
    for (std::size_t i = 0; i < 3; ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return s.size() == 3 || s[3] == ' ' || s[3] == '-';
}

// "5 days", "1 day", "36 hours".
std::string duration_words(std::int64_t seconds) {
    if (seconds >= 86400 && seconds % 86400 == 0) {
        const auto days = seconds / 86400;
        return std::to_string(days) + (days == 1 ? " day" : " days");
    }
    const auto hours = (seconds + 3599) / 3600;
    return std::to_string(hours) + (hours == 1 ? " hour" : " hours");
}

// The lines of a message's header section (up to the first empty line),
// without their line ends (CRLF or a bare LF).
std::vector<std::string_view> header_lines(std::string_view msg) {
    std::vector<std::string_view> lines;
    std::size_t pos = 0;
    while (pos < msg.size()) {
        auto nl = msg.find('\n', pos);
        const std::size_t next = nl == std::string_view::npos ? msg.size() : nl + 1;
        if (nl == std::string_view::npos) nl = msg.size();
        std::string_view line = msg.substr(pos, nl - pos);
        pos = next;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;
        lines.push_back(line);
    }
    return lines;
}

// The original's header section, up to the first empty line or the first
// line that is not a header field, as 7-bit CRLF lines of at most max_line.
std::string returned_headers(std::string_view msg) {
    std::string out;
    std::size_t last_field = 0;  // where the field being copied starts in `out`
    bool in_field = false;
    for (std::string_view line : header_lines(msg)) {
        const bool continuation = line.front() == ' ' || line.front() == '\t';
        if (continuation) {
            if (!in_field) break;
        } else {
            const auto colon = line.find(':');
            if (colon == 0 || colon == std::string_view::npos) break;
            bool name_ok = true;
            for (std::size_t i = 0; i < colon; ++i) {
                const auto c = static_cast<unsigned char>(line[i]);
                if (c <= 32 || c >= 127) name_ok = false;
            }
            if (!name_ok) break;
            last_field = out.size();
            in_field = true;
        }
        std::string copy;
        copy.reserve(line.size() < max_line ? line.size() : max_line);
        for (const char ch : line.substr(0, max_line)) {
            const auto c = static_cast<unsigned char>(ch);
            copy += ((is_ctl(c) && c != '\t') || c >= 128) ? '?' : ch;
        }
        if (out.size() + copy.size() + 2 > max_returned_headers) {
            out.resize(last_field);  // whole fields only
            break;
        }
        out += copy + "\r\n";
    }
    return out;
}

std::string notification_text(const dsn_request& r, const std::string& host) {
    const bool delay = r.type == dsn_request::kind::delay;
    std::string t;
    t += fold("", "This is the mail system at host " + host + ".");
    t += "\r\n";
    if (delay) {
        t += "####################################################################\r\n";
        t += "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n";
        t += "####################################################################\r\n";
        t += "\r\n";
        t += "Your message has not yet been delivered to one or more recipients.\r\n";
        if (r.retry_until > 0 && r.arrival_date > 0 && r.retry_until > r.arrival_date) {
            t += fold("", "The mail system will keep trying until the message is " +
                              duration_words(r.retry_until - r.arrival_date) + " old.");
        } else {
            t += "The mail system will keep trying to deliver it, and will tell you\r\n";
            t += "if it gives up.\r\n";
        }
        t += "\r\n";
        t += "The headers of your message are attached below.\r\n";
    } else {
        t += "I'm sorry to have to inform you that your message could not\r\n";
        t += "be delivered to one or more recipients. The headers of your\r\n";
        t += "message are attached below.\r\n";
    }
    t += "\r\n";
    t += "For further assistance, please send mail to postmaster.\r\n";
    t += "\r\n";
    t += "If you do so, please include this problem report.\r\n";
    t += "\r\n";
    t += "                   The mail system\r\n";
    for (const auto& rc : r.recipients) {
        std::string line = "<" + clean_address(rc.address) + ">: ";
        const std::string remote = clean_host(rc.remote_mta);
        const std::string diag = clean(rc.diagnostic, max_diagnostic);
        if (!remote.empty() && !diag.empty()) {
            line += "host " + remote + " said: " + diag;
        } else if (!diag.empty()) {
            line += diag;
        } else if (!remote.empty()) {
            line += (delay ? "delivery to host " + remote + " is delayed" : "delivery to host " + remote + " failed");
        } else {
            line += delay ? "delivery is delayed" : "delivery failed";
        }
        const std::string status = clean(rc.status, 16);
        if (diag.empty() && valid_status(status)) line += " (status " + status + ")";
        t += "\r\n";
        t += fold("", line, "    ");
    }
    return t;
}

std::string delivery_status(const dsn_request& r, const std::string& host) {
    const bool delay = r.type == dsn_request::kind::delay;
    std::string d = fold("Reporting-MTA: dns; ", host);
    const std::string id = clean(r.original_id, max_value);
    if (!id.empty()) d += fold("X-Queue-ID: ", id);
    if (r.arrival_date > 0) d += "Arrival-Date: " + utc_date(r.arrival_date) + "\r\n";
    for (const auto& rc : r.recipients) {
        const std::string addr = clean_address(rc.address);
        d += "\r\n";
        d += fold("Final-Recipient: rfc822; ", addr);
        d += fold("Original-Recipient: rfc822; ", addr);
        d += delay ? "Action: delayed\r\n" : "Action: failed\r\n";
        std::string status = clean(rc.status, 16);
        if (!valid_status(status)) status = delay ? "4.0.0" : "5.0.0";
        d += "Status: " + status + "\r\n";
        const std::string remote = clean_host(rc.remote_mta);
        if (!remote.empty()) d += fold("Remote-MTA: dns; ", remote);
        const std::string diag = clean(rc.diagnostic, max_diagnostic);
        if (!diag.empty()) d += fold(looks_like_smtp_reply(diag) ? "Diagnostic-Code: smtp; " : "Diagnostic-Code: X-Subrelay; ", diag);
        if (delay && r.retry_until > 0) d += "Will-Retry-Until: " + utc_date(r.retry_until) + "\r\n";
    }
    return d;
}

std::string generated_message_id(const dsn_request& r, const std::string& host, const wall_time& now,
                                 random_source& random) {
    std::string left = text::utc_digits(now.unix_seconds);
    const std::string id = clean_token(r.original_id, "-_", 64);
    if (!id.empty()) left += "." + id;
    left += r.type == dsn_request::kind::delay ? ".delay." : ".bounce.";
    left += random_hex(8, random);
    std::string right = clean_token(host, ".-");
    if (right.empty()) right = "localhost";
    return "<" + left + "@" + right + ">";
}

}  // namespace

std::string build_dsn(const dsn_request& r, const clock& wall_clock, random_source& random) {
    const wall_time now = wall_clock.now();
    const bool delay = r.type == dsn_request::kind::delay;
    std::string host = clean_host(r.reporting_mta);
    if (host.empty()) host = "localhost";

    const std::string part1 = notification_text(r, host);
    const std::string part2 = delivery_status(r, host);
    const std::string part3 = returned_headers(r.original_message);

    // The boundary must not occur in anything it delimits, nor in the
    // original: a predictable first choice, then random ones.
    const std::string id_part = clean_token(r.original_id, "", 30);
    std::string boundary = "----=_subrelay_dsn_" + (id_part.empty() ? std::string("notice") : id_part);
    const auto collides = [&](const std::string& b) {
        return r.original_message.find(b) != std::string::npos || part1.find(b) != std::string::npos ||
               part2.find(b) != std::string::npos || part3.find(b) != std::string::npos;
    };
    while (collides(boundary)) boundary = "----=_subrelay_dsn_" + random_hex(32, random);

    std::string postmaster = clean_address(r.postmaster);
    if (postmaster.empty()) postmaster = "MAILER-DAEMON@" + host;
    std::string date = clean(r.date, 200);
    if (date.empty()) date = text::rfc5322_date(now.unix_seconds, now.utc_offset_seconds);
    std::string message_id = clean(r.message_id, max_value);
    std::erase(message_id, ' ');
    if (message_id.empty()) message_id = generated_message_id(r, host, now, random);

    std::string m;
    m += fold("From: ", "\"Mail Delivery System\" <" + postmaster + ">");
    m += fold("To: ", "<" + clean_address(r.recipient) + ">");
    m += delay ? "Subject: Delayed Mail (still being retried)\r\n" : "Subject: Undelivered Mail Returned to Sender\r\n";
    m += "Date: " + date + "\r\n";
    m += "Message-ID: " + message_id + "\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "Auto-Submitted: auto-replied\r\n";
    m += "Content-Type: multipart/report; report-type=delivery-status;\r\n";
    m += "\tboundary=\"" + boundary + "\"\r\n";
    m += "\r\n";
    m += "This is a MIME-encapsulated message.\r\n";
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: text/plain; charset=us-ascii\r\n";
    m += "Content-Description: Notification\r\n";
    m += "\r\n";
    m += part1;
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: message/delivery-status\r\n";
    m += "Content-Description: Delivery report\r\n";
    m += "\r\n";
    m += part2;
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: text/rfc822-headers\r\n";
    m += delay ? "Content-Description: Delayed Message Headers\r\n" : "Content-Description: Undelivered Message Headers\r\n";
    m += "\r\n";
    m += part3;
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

namespace {

struct header_field {
    std::string name;  // lower case
    std::string value; // unfolded, untrimmed
};

// The header section (up to the first empty line), unfolded.
std::vector<header_field> header_fields(std::string_view msg) {
    std::vector<header_field> fields;
    for (std::string_view line : header_lines(msg)) {
        if (line.front() == ' ' || line.front() == '\t') {
            if (fields.empty()) break;
            fields.back().value += line;
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) break;
        fields.push_back({ascii_lower(trim(line.substr(0, colon))), std::string(line.substr(colon + 1))});
    }
    return fields;
}

// Removes RFC 5322 comments "( ... )", nested, honoring quoted strings
// and backslash escapes.
std::string strip_comments(std::string_view s) {
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '\\' && i + 1 < s.size()) {
            if (depth == 0) {
                out += c;
                out += s[i + 1];
            }
            ++i;
            continue;
        }
        if (depth == 0 && c == '"') quoted = !quoted;
        if (!quoted && c == '(') {
            ++depth;
            continue;
        }
        if (!quoted && c == ')' && depth > 0) {
            --depth;
            continue;
        }
        if (depth == 0) out += c;
    }
    return out;
}

// Splits "type/subtype; a=b; c="d;e"" on the semicolons outside quotes.
std::vector<std::string> split_params(std::string_view s) {
    std::vector<std::string> parts(1);
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '\\' && quoted && i + 1 < s.size()) {
            parts.back() += s[++i];
            continue;
        }
        if (c == '"') {
            quoted = !quoted;
            continue;  // quotes dropped: values arrive unquoted
        }
        if (c == ';' && !quoted) {
            parts.emplace_back();
            continue;
        }
        parts.back() += c;
    }
    return parts;
}

bool auto_submitted(std::string_view value) {
    const std::string v = strip_comments(value);
    std::string_view token = trim(v);
    const auto end = token.find_first_of("; \t");
    if (end != std::string_view::npos) token = token.substr(0, end);
    return ascii_lower(token) != "no";
}

bool delivery_status_report(std::string_view value) {
    const auto parts = split_params(strip_comments(value));
    if (ascii_lower(trim(parts[0])) != "multipart/report") return false;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const std::string_view p = parts[i];
        const auto eq = p.find('=');
        if (eq == std::string_view::npos) continue;
        if (ascii_lower(trim(p.substr(0, eq))) == "report-type" &&
            ascii_lower(trim(p.substr(eq + 1))) == "delivery-status")
            return true;
    }
    return false;
}

}  // namespace

bool is_automatic(std::string_view envelope_sender, std::string_view message) {
    const std::string_view sender = trim(envelope_sender);
    if (sender.empty() || sender == "<>") return true;
    for (const auto& f : header_fields(message)) {
        if (f.name == "auto-submitted" && auto_submitted(f.value)) return true;
        if (f.name == "content-type" && delivery_status_report(f.value)) return true;
    }
    return false;
}

}  // namespace subrelay::smtp
