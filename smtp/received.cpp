#include "smtp/received.hpp"

#include "smtp/address.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::smtp {

namespace {

constexpr std::size_t max_line = 998;  // RFC 5322 2.1.1, without the CRLF

// Client-supplied text must not break the header: no control characters.
std::string sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        out += (c < 32 || c == 127) ? '?' : ch;
    }
    return out;
}

}  // namespace

std::string received_header(const received_info& info) {
    const std::string helo = sanitize(std::string_view(info.helo).substr(0, max_helo_name));
    std::string first = "Received: from " + (helo.empty() ? std::string("unknown") : helo);
    if (!helo.empty() && classify_helo_name(helo) == helo_name::bare) first += " (HELO name without a domain)";
    if (!info.client_ip.empty()) {
        const bool v6 = info.client_ip.find(':') != std::string::npos;
        first += " ([" + std::string(v6 ? "IPv6:" : "") + sanitize(info.client_ip) + "])";
    }
    std::string by = "by " + sanitize(info.by);
    if (!info.protocol.empty()) by += " with " + sanitize(info.protocol);
    if (!info.id.empty()) by += " id " + sanitize(info.id);

    std::string out = first + "\r\n\t" + by;
    if (!info.tls.empty()) out += "\r\n\t(" + sanitize(info.tls) + ")";
    const std::string date = "; " + sanitize(info.date) + "\r\n";
    if (!info.single_recipient.empty()) {
        const std::string for_line = "\tfor <" + sanitize(info.single_recipient) + ">";
        if (for_line.size() + date.size() - 2 <= max_line && out.size() + 2 + for_line.size() + date.size() <= max_received_header)
            out += "\r\n" + for_line;
    }
    return out + date;
}

std::string rfc5322_date_now(const clock& wall_clock) {
    const wall_time now = wall_clock.now();
    return text::rfc5322_date(now.unix_seconds, now.utc_offset_seconds);
}

}  // namespace subrelay::smtp
