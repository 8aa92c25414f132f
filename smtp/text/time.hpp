#pragma once
// Text forms of a moment given as seconds since the epoch. These only
// format: none of them reads the clock.
#include <cstdint>
#include <string>

namespace subrelay::text {

// ISO 8601 in UTC, as the CLI and the queue state show times:
// "2026-11-28T12:00:00Z".
std::string iso8601_utc(std::int64_t unix_seconds);

// "2026-11-28 12:00:00 UTC" (certificate expiry in test-upstream).
std::string utc_date_time(std::int64_t unix_seconds);

// The UTC date and time as 14 digits, "20261128120000" (generated ids).
std::string utc_digits(std::int64_t unix_seconds);

// RFC 5322 date-time shown `utc_offset_seconds` east of UTC, with English
// names whatever the locale: rfc5322_date(0, 3600) ==
// "Thu, 01 Jan 1970 01:00:00 +0100".
std::string rfc5322_date(std::int64_t unix_seconds, long utc_offset_seconds = 0);

}  // namespace subrelay::text
