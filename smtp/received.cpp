#include "smtp/received.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>

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

std::string rfc5322_date(std::time_t when, long utc_offset_seconds) {
    static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t shifted = when + static_cast<std::time_t>(utc_offset_seconds);
    std::tm tm{};
    gmtime_r(&shifted, &tm);
    const long offset_minutes = std::labs(utc_offset_seconds) / 60;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[static_cast<std::size_t>(tm.tm_wday % 7)],
                  tm.tm_mday, months[static_cast<std::size_t>(tm.tm_mon % 12)], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec, utc_offset_seconds < 0 ? '-' : '+', offset_minutes / 60, offset_minutes % 60);
    return buf;
}

std::string rfc5322_date_now() {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    return rfc5322_date(now, local.tm_gmtoff);
}

}  // namespace subrelay::smtp
