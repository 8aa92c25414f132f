#include "smtp/received.hpp"

#include "smtp/text/time.hpp"

namespace subrelay::smtp {

namespace {

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
    std::string first = "Received: from " + (info.helo.empty() ? std::string("unknown") : sanitize(info.helo));
    if (!info.client_ip.empty()) {
        const bool v6 = info.client_ip.find(':') != std::string::npos;
        first += " ([" + std::string(v6 ? "IPv6:" : "") + sanitize(info.client_ip) + "])";
    }
    std::string by = "by " + sanitize(info.by);
    if (!info.protocol.empty()) by += " with " + sanitize(info.protocol);
    if (!info.id.empty()) by += " id " + sanitize(info.id);

    std::string out = first + "\r\n\t" + by;
    if (!info.tls.empty()) out += "\r\n\t(" + sanitize(info.tls) + ")";
    if (!info.single_recipient.empty()) out += "\r\n\tfor <" + sanitize(info.single_recipient) + ">";
    out += "; " + sanitize(info.date) + "\r\n";
    return out;
}

std::string rfc5322_date_now(const clock& wall_clock) {
    const wall_time now = wall_clock.now();
    return text::rfc5322_date(now.unix_seconds, now.utc_offset_seconds);
}

}  // namespace subrelay::smtp
