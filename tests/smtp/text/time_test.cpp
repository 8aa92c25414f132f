#include "smtp/text/time.hpp"

#include <gtest/gtest.h>

namespace subrelay::text {
namespace {

constexpr std::int64_t nov_28_2026_noon = 1795867200;  // Sat, 28 Nov 2026 12:00:00 UTC

TEST(time, iso8601_utc) {
    EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(iso8601_utc(nov_28_2026_noon), "2026-11-28T12:00:00Z");
    EXPECT_EQ(iso8601_utc(nov_28_2026_noon + 86399), "2026-11-29T11:59:59Z");
    EXPECT_EQ(iso8601_utc(951782400), "2000-02-29T00:00:00Z");  // leap day
}

TEST(time, utc_date_time) {
    EXPECT_EQ(utc_date_time(0), "1970-01-01 00:00:00 UTC");
    EXPECT_EQ(utc_date_time(nov_28_2026_noon + 3723), "2026-11-28 13:02:03 UTC");
}

TEST(time, utc_digits) {
    EXPECT_EQ(utc_digits(0), "19700101000000");
    EXPECT_EQ(utc_digits(nov_28_2026_noon + 3723), "20261128130203");
}

TEST(time, rfc5322_date) {
    EXPECT_EQ(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    EXPECT_EQ(rfc5322_date(0, 0), "Thu, 01 Jan 1970 00:00:00 +0000");
    EXPECT_EQ(rfc5322_date(0, 3600), "Thu, 01 Jan 1970 01:00:00 +0100");
    EXPECT_EQ(rfc5322_date(0, -(5 * 3600 + 30 * 60)), "Wed, 31 Dec 1969 18:30:00 -0530");
    EXPECT_EQ(rfc5322_date(nov_28_2026_noon, 0), "Sat, 28 Nov 2026 12:00:00 +0000");
    EXPECT_EQ(rfc5322_date(nov_28_2026_noon, 20700), "Sat, 28 Nov 2026 17:45:00 +0545");
}

}  // namespace
}  // namespace subrelay::text
