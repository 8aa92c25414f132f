#include "smtp/text/time.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace subrelay::text {

namespace {

std::tm utc(std::int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return tm;
}

// The UTC date and time through `format`, which takes year, month, day,
// hour, minute and second, in that order.
std::string utc_as(const char* format, std::int64_t unix_seconds) {
    const std::tm tm = utc(unix_seconds);
    char buf[96];
    std::snprintf(buf, sizeof buf, format, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
}

}  // namespace

std::string iso8601_utc(std::int64_t unix_seconds) { return utc_as("%04d-%02d-%02dT%02d:%02d:%02dZ", unix_seconds); }

std::string utc_date_time(std::int64_t unix_seconds) {
    return utc_as("%04d-%02d-%02d %02d:%02d:%02d UTC", unix_seconds);
}

std::string utc_digits(std::int64_t unix_seconds) { return utc_as("%04d%02d%02d%02d%02d%02d", unix_seconds); }

std::string rfc5322_date(std::int64_t unix_seconds, long utc_offset_seconds) {
    static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::tm tm = utc(unix_seconds + utc_offset_seconds);
    const long offset_minutes = std::labs(utc_offset_seconds) / 60;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
                  days[static_cast<std::size_t>(tm.tm_wday % 7)], tm.tm_mday,
                  months[static_cast<std::size_t>(tm.tm_mon % 12)], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec, utc_offset_seconds < 0 ? '-' : '+', offset_minutes / 60, offset_minutes % 60);
    return buf;
}

}  // namespace subrelay::text
