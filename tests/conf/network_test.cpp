#include "conf/network.hpp"

#include <gtest/gtest.h>

namespace subrelay::conf {
namespace {

TEST(network, parse_and_print) {
    const auto parse = [](std::string_view text) {
        network n;
        std::string why;
        EXPECT_TRUE(network::parse(text, n, why)) << text << ": " << why;
        return n;
    };
    EXPECT_EQ(parse("10.1.20.0/24").to_string(), "10.1.20.0/24");
    EXPECT_EQ(parse("10.1.20.0/24").prefix, 120U);
    EXPECT_EQ(parse("10.1.20.7").to_string(), "10.1.20.7");
    EXPECT_EQ(parse("10.1.20.7").prefix, 128U);
    EXPECT_EQ(parse("0.0.0.0/0").to_string(), "0.0.0.0/0");
    EXPECT_EQ(parse("2001:DB8::/32").to_string(), "2001:db8::/32");
    EXPECT_EQ(parse("::1").to_string(), "::1");
    EXPECT_EQ(parse("::/0").to_string(), "::/0");
    EXPECT_EQ(parse("::ffff:10.1.20.0/120"), parse("10.1.20.0/24"));

    for (std::string_view bad : {"", "10.1.20.0/", "10.1.20.0/-1", "10.1.20.0/+8", "10.1.20.0/129", "10.1.20",
                                 "10.1.20.256", "2001:db8::/129", "fe80::1%eth0", "10.1.20.0/24/1", "/24", " 10.0.0.1"}) {
        network n;
        std::string why;
        EXPECT_FALSE(network::parse(bad, n, why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

TEST(network, contains) {
    network n;
    std::string why;
    ASSERT_TRUE(network::parse("10.1.20.0/24", n, why));
    EXPECT_TRUE(n.contains("10.1.20.0"));
    EXPECT_TRUE(n.contains("10.1.20.255"));
    EXPECT_TRUE(n.contains("::ffff:10.1.20.7"));
    EXPECT_FALSE(n.contains("10.1.21.0"));
    EXPECT_FALSE(n.contains("::1"));
    EXPECT_FALSE(n.contains("garbage"));
    ASSERT_TRUE(network::parse("0.0.0.0/0", n, why));
    EXPECT_TRUE(n.contains("203.0.113.9"));
    EXPECT_FALSE(n.contains("2001:db8::1")) << "all of IPv4 is not all of IPv6";
    ASSERT_TRUE(network::parse("::/0", n, why));
    EXPECT_TRUE(n.contains("2001:db8::1"));
    EXPECT_TRUE(n.contains("203.0.113.9"));
    ASSERT_TRUE(network::parse("fe80::/10", n, why));
    EXPECT_TRUE(n.contains("fe80::1%eth0")) << "a zone is ignored";
    EXPECT_TRUE(n.contains("febf::1"));
    EXPECT_FALSE(n.contains("fec0::1"));
    ASSERT_TRUE(network::parse("10.0.0.0/9", n, why));
    EXPECT_TRUE(n.contains("10.127.255.255"));
    EXPECT_FALSE(n.contains("10.128.0.0"));
}

TEST(listener_names, kinds_and_addresses) {
    for (std::string_view good : {"submission", "submissions", "127.0.0.1:587", "[::1]:465", "relay.test:2587"})
        EXPECT_TRUE(valid_listener_name(good)) << good;
    for (std::string_view bad : {"", "smtp", ":587", "127.0.0.1:", "127.0.0.1:65536", "::1:587", "a b:25", "[]:25"})
        EXPECT_FALSE(valid_listener_name(bad)) << bad;
}

TEST(listener_names, an_empty_list_names_every_listener) {
    EXPECT_TRUE(listener_named({}, "submission", "127.0.0.1:587"));
    EXPECT_TRUE(listener_named({"submissions"}, "submissions", "127.0.0.1:465"));
    EXPECT_TRUE(listener_named({"127.0.0.1:465"}, "submissions", "127.0.0.1:465"));
    EXPECT_FALSE(listener_named({"submissions"}, "submission", "127.0.0.1:587"));
    EXPECT_FALSE(listener_named({"127.0.0.1:465"}, "submission", "127.0.0.1:587"));
}

}  // namespace
}  // namespace subrelay::conf
