#include <gtest/gtest.h>

#include "conf/config.hpp"

namespace subrelay::conf {
namespace {

struct good_case {
    const char* text;
    const char* host;
    std::uint16_t port;
    const char* round_trip;
};

class listen_address_good : public ::testing::TestWithParam<good_case> {};

TEST_P(listen_address_good, parses_and_round_trips) {
    const auto& c = GetParam();
    listen_address a;
    std::string why = "untouched";
    ASSERT_TRUE(parse_listen_address(c.text, a, why)) << why;
    EXPECT_EQ(a.host, c.host);
    EXPECT_EQ(a.port, c.port);
    EXPECT_EQ(a.to_string(), c.round_trip);
    EXPECT_TRUE(why.empty());
}

INSTANTIATE_TEST_SUITE_P(
    addresses, listen_address_good,
    ::testing::Values(good_case{"127.0.0.1:2587", "127.0.0.1", 2587, "127.0.0.1:2587"},
                      good_case{"0.0.0.0:587", "0.0.0.0", 587, "0.0.0.0:587"},
                      good_case{"127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0"},
                      good_case{"10.1.2.3:65535", "10.1.2.3", 65535, "10.1.2.3:65535"},
                      good_case{"[::1]:2587", "::1", 2587, "[::1]:2587"},
                      good_case{"[::]:465", "::", 465, "[::]:465"},
                      good_case{"[fe80::1:2]:25", "fe80::1:2", 25, "[fe80::1:2]:25"},
                      good_case{"[::ffff:192.0.2.1]:587", "::ffff:192.0.2.1", 587, "[::ffff:192.0.2.1]:587"}));

class listen_address_bad : public ::testing::TestWithParam<const char*> {};

TEST_P(listen_address_bad, is_rejected_with_a_reason) {
    listen_address a{"keep", 7};
    std::string why;
    EXPECT_FALSE(parse_listen_address(GetParam(), a, why));
    EXPECT_EQ(why.rfind("expected HOST:PORT", 0), 0U) << why;
    EXPECT_NE(why.find(GetParam()), std::string::npos) << "the reason quotes the input: " << why;
    EXPECT_EQ(a.host, "keep");
    EXPECT_EQ(a.port, 7);
}

INSTANTIATE_TEST_SUITE_P(addresses, listen_address_bad,
                         ::testing::Values("", "127.0.0.1", "127.0.0.1:", ":587", "127.0.0.1:65536",
                                           "127.0.0.1:-1", "127.0.0.1:58x", "127.0.0.1:+587", "256.0.0.1:587",
                                           "localhost:587", "::1:587", "[::1]587", "[::1]:", "[::1:587",
                                           "[127.0.0.1]:587", "[nope]:587", "127.0.0.1:0000587", " 127.0.0.1:587"));

}  // namespace
}  // namespace subrelay::conf
