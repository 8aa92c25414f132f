// [cluster]: the Redis URL the nodes share their limits through, and the
// fallback share. The URL's password must never reach a message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "conf/config.hpp"
#include "messages.hpp"

namespace subrelay::conf {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using test_support::messages;

// The smallest valid configuration (a directory upstream needs no OAuth).
constexpr std::string_view minimal = R"(
[server]
submission = []
[upstream]
kind = "directory"
directory = "outbox"
)";

parse_result parse_cluster(std::string_view lines) {
    return parse_text(std::string(minimal) + "[cluster]\n" + std::string(lines) + "\n", "relay.toml");
}

// The one error of a [cluster] table, as a user reads it.
std::string only_error(std::string_view lines) {
    const auto r = parse_cluster(lines);
    EXPECT_EQ(r.errors.size(), 1U) << ::testing::PrintToString(messages(r));
    return r.errors.empty() ? std::string() : r.errors.front().to_string();
}

redis_endpoint parsed(std::string_view url) {
    redis_endpoint e;
    std::string why;
    EXPECT_TRUE(parse_redis_url(url, e, why)) << url << ": " << why;
    return e;
}

// Why `url` is refused (empty when it is not).
std::string refusal(std::string_view url) {
    redis_endpoint e;
    std::string why;
    EXPECT_FALSE(parse_redis_url(url, e, why)) << url;
    return why;
}

TEST(cluster_config, defaults_are_no_cluster) {
    const auto r = parse_text(minimal, "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_FALSE(r.cfg.cluster.redis.has_value());
    EXPECT_EQ(r.cfg.cluster.nodes, 1U);
    EXPECT_EQ(r.cfg.cluster.key_prefix, "subrelay:");
    EXPECT_EQ(r.cfg.cluster.timeout_ms, 250U);
}

TEST(cluster_config, every_key_is_read) {
    const auto r = parse_cluster(R"(redis = "redis://:s3cret@redis.example.test:6380/2"
nodes = 3
key_prefix = "relay-a:"
timeout_ms = 100)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    const auto& c = r.cfg.cluster;
    ASSERT_TRUE(c.redis.has_value());
    EXPECT_EQ(c.redis->host, "redis.example.test");
    EXPECT_EQ(c.redis->port, 6380);
    EXPECT_EQ(c.redis->database, 2U);
    EXPECT_EQ(c.redis->password, "s3cret");
    EXPECT_FALSE(c.redis->is_unix());
    EXPECT_EQ(c.nodes, 3U);
    EXPECT_EQ(c.key_prefix, "relay-a:");
    EXPECT_EQ(c.timeout_ms, 100U);
}

TEST(cluster_config, empty_redis_is_no_cluster) {
    const auto r = parse_cluster(R"(redis = "")");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_FALSE(r.cfg.cluster.redis.has_value());
}

TEST(cluster_config, tcp_urls) {
    auto e = parsed("redis://10.0.0.5:6379");
    EXPECT_EQ(e.host, "10.0.0.5");
    EXPECT_EQ(e.port, 6379);
    EXPECT_EQ(e.database, 0U);
    EXPECT_TRUE(e.password.empty());
    EXPECT_EQ(e.location(), "10.0.0.5:6379");

    e = parsed("redis://redis-1.internal:7000/15");
    EXPECT_EQ(e.host, "redis-1.internal");
    EXPECT_EQ(e.port, 7000);
    EXPECT_EQ(e.database, 15U);

    e = parsed("redis://[::1]:6379/0");
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.location(), "[::1]:6379");

    e = parsed("REDIS://localhost:6379");  // the scheme in any case, as in any URL
    EXPECT_EQ(e.host, "localhost");
}

TEST(cluster_config, passwords_are_percent_decoded) {
    EXPECT_EQ(parsed("redis://:pa%40ss%2Fw%3Ard%25@h:1").password, "pa@ss/w:rd%");
    // The last '@' ends the password, so '@' and '/' may also stand as they are.
    EXPECT_EQ(parsed("redis://:a@b/c@h:1/3").password, "a@b/c");
    EXPECT_EQ(parsed("redis://:a@b/c@h:1/3").database, 3U);
    EXPECT_EQ(parsed("redis://:a@b/c@h:1/3").location(), "h:1");
}

TEST(cluster_config, unix_socket_urls) {
    auto e = parsed("unix:///run/redis/redis-server.sock");
    EXPECT_TRUE(e.is_unix());
    EXPECT_EQ(e.socket, std::filesystem::path("/run/redis/redis-server.sock"));
    EXPECT_EQ(e.database, 0U);
    EXPECT_EQ(e.location(), "/run/redis/redis-server.sock");

    e = parsed("unix:///run/redis/redis-server.sock?db=4");
    EXPECT_EQ(e.database, 4U);
}

TEST(cluster_config, malformed_urls_are_refused_with_the_reason) {
    EXPECT_THAT(refusal("10.0.0.5:6379"), StartsWith("expected redis://HOST:PORT[/DB]"));
    EXPECT_THAT(refusal("http://10.0.0.5:6379"), HasSubstr("got a http:// URL"));
    EXPECT_THAT(refusal("rediss://h:6379"), HasSubstr("TLS (rediss://) is not supported"));
    EXPECT_THAT(refusal("redis://h"), HasSubstr("the port is missing"));
    EXPECT_THAT(refusal("redis://h:"), HasSubstr("port must be a number from 1 to 65535"));
    EXPECT_THAT(refusal("redis://h:0"), HasSubstr("port must be a number from 1 to 65535"));
    EXPECT_THAT(refusal("redis://h:65536"), HasSubstr("port must be a number from 1 to 65535"));
    EXPECT_THAT(refusal("redis://h:+1"), HasSubstr("port must be a number"));
    EXPECT_THAT(refusal("redis://h:63 79"), HasSubstr("port must be a number"));
    EXPECT_THAT(refusal("redis://:6379"), HasSubstr("the host is missing"));
    EXPECT_THAT(refusal("redis://bad_host:6379"), HasSubstr("\"bad_host\" is not a host name or an IP address"));
    EXPECT_THAT(refusal("redis://-h:6379"), HasSubstr("is not a host name"));
    EXPECT_THAT(refusal("redis://a..b:6379"), HasSubstr("is not a host name"));
    EXPECT_THAT(refusal("redis://::1:6379"), HasSubstr("IPv6 address goes in brackets"));
    EXPECT_THAT(refusal("redis://[::1:6379"), HasSubstr("closing ']'"));
    EXPECT_THAT(refusal("redis://[::g]:6379"), HasSubstr("is not an IPv6 address"));
    EXPECT_THAT(refusal("redis://[::1]6379"), HasSubstr("the port is missing"));
    EXPECT_THAT(refusal("redis://h:6379/"), HasSubstr("the database must be a number"));
    EXPECT_THAT(refusal("redis://h:6379/x"), HasSubstr("the database must be a number"));
    EXPECT_THAT(refusal("redis://h:6379/-1"), HasSubstr("the database must be a number"));
    EXPECT_THAT(refusal("redis://h:6379/1/2"), HasSubstr("the database must be a number"));
    EXPECT_THAT(refusal("redis://h:6379/99999999999"), HasSubstr("the database must be a number"));
    EXPECT_THAT(refusal("redis://h:6379?db=1"), HasSubstr("takes no query"));
    EXPECT_THAT(refusal("redis://user:pw@h:6379"), HasSubstr("a user name is not supported"));
    EXPECT_THAT(refusal("redis://:@h:6379"), HasSubstr("the password is empty"));
    EXPECT_THAT(refusal("redis://:p%zz@h:6379"), HasSubstr("not a %XX escape"));
    EXPECT_THAT(refusal("redis://:p%4@h:6379"), HasSubstr("not a %XX escape"));
    EXPECT_THAT(refusal("redis://:p%00@h:6379"), HasSubstr("%00"));
    EXPECT_THAT(refusal("unix://run/redis.sock"), HasSubstr("absolute path"));
    EXPECT_THAT(refusal("unix://"), HasSubstr("absolute path"));
    EXPECT_THAT(refusal("unix:///run/redis/"), HasSubstr("names a directory"));
    EXPECT_THAT(refusal("unix:///run/re dis.sock"), HasSubstr("blanks"));
    EXPECT_THAT(refusal("unix:///" + std::string(120, 'x')), HasSubstr("longer than 107 bytes"));
    EXPECT_THAT(refusal("unix:///run/redis.sock?database=1"), HasSubstr("not \"database\""));
    EXPECT_THAT(refusal("unix:///run/redis.sock?db=1&x=2"), HasSubstr("the only parameter is db=N"));
    EXPECT_THAT(refusal("unix:///run/redis.sock?db="), HasSubstr("the database must be a number"));
    EXPECT_THAT(refusal("unix://:pw@/run/redis.sock"), HasSubstr("takes no password"));
}

TEST(cluster_config, errors_name_the_key) {
    EXPECT_EQ(only_error(R"(redis = "redis://h")"),
              "relay.toml: cluster.redis: the port is missing (HOST:PORT; Redis's own is 6379)");
    EXPECT_THAT(only_error("nodes = 0"), StartsWith("relay.toml: cluster.nodes: must be between 1 and 1000"));
    EXPECT_THAT(only_error("timeout_ms = 0"), StartsWith("relay.toml: cluster.timeout_ms: must be between 1 and 60000"));
    EXPECT_THAT(only_error(R"(key_prefix = "has space:")"),
                StartsWith("relay.toml: cluster.key_prefix: must be at most 64 printable ASCII characters"));
    EXPECT_THAT(only_error("redis = 6379"), StartsWith("relay.toml: cluster.redis: expected a string"));
    EXPECT_THAT(only_error("node = 2"), StartsWith("relay.toml: cluster.node: unknown key"));
}

// Whatever is wrong with a URL that carries a password, the password is
// in no message.
TEST(cluster_config, the_password_is_never_in_a_message) {
    const std::string secret = "Hunter2Secret";
    for (const std::string& url : std::initializer_list<std::string>{
             "redis://:" + secret + "@h",                 // no port
             "redis://:" + secret + "@h:99999",           // bad port
             "redis://:" + secret + "@bad_host:6379",     // bad host
             "redis://:" + secret + "@h:6379/x",          // bad database
             "redis://:" + secret + "%zz@h:6379",         // bad escape
             "redis://" + secret + "@h:6379",             // no colon: read as a user name
             "redis://admin:" + secret + "@h:6379",       // a user name
             "redis://:" + secret + "@h:6379?db=1",       // a query
             "redis://:" + secret + "/x@[::g]:6379",      // bad IPv6
             "redis://:" + secret,                        // no '@': no host
             "redis://:" + secret + ":6379",              // no '@'
             "rediss://:" + secret + "@h:6379",           // TLS
             "http://:" + secret + "@h:6379",             // another scheme
             secret,                                      // the password alone
             secret + "@h:6379",                          // no scheme
             "unix://:" + secret + "@/run/redis.sock",    // a password on a socket
             "unix:///run/redis.sock?password=" + secret, // not a parameter
         }) {
        const auto r = parse_cluster("redis = \"" + url + "\"");
        ASSERT_FALSE(r.ok()) << url;
        for (const auto& m : messages(r)) EXPECT_THAT(m, Not(HasSubstr(secret))) << url;
    }
}

TEST(cluster_config, masked_urls_hide_the_password_only) {
    EXPECT_EQ(mask_redis_url("redis://:s3cret@10.0.0.5:6379/2"), "redis://:***@10.0.0.5:6379/2");
    EXPECT_EQ(mask_redis_url("redis://:a@b/c@h:1"), "redis://:***@h:1");
    EXPECT_EQ(mask_redis_url("redis://user:pw@h:1"), "redis://***@h:1");
    EXPECT_EQ(mask_redis_url("redis://10.0.0.5:6379"), "redis://10.0.0.5:6379");
    EXPECT_EQ(mask_redis_url("unix:///run/redis.sock?db=1"), "unix:///run/redis.sock?db=1");
}

}  // namespace
}  // namespace subrelay::conf
