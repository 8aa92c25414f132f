#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "messages.hpp"

namespace subrelay::conf {
namespace {

using ::testing::ElementsAre;

constexpr std::string_view minimal = R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "directory"
directory = "out"
)";

parse_result parse(std::string_view extra) { return parse_text(std::string(minimal) + std::string(extra), "relay.toml"); }

using test_support::messages;

TEST(device_network, every_setting_is_read) {
    const auto r = parse(R"(
[[device_network]]
networks = ["10.1.20.0/24", "192.0.2.7"]
listeners = ["submission", "submissions", "127.0.0.1:2587"]
tls_min_version = "1.0"
tls_security_level = 0
tls_ciphers = "DEFAULT:@SECLEVEL=0"
auth_without_tls = true
bare_lf = "accept"

[[device_network]]
networks = ["2001:db8::/48"]
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.cfg.device_networks.size(), 2U);
    const auto& d = r.cfg.device_networks[0];
    ASSERT_EQ(d.networks.size(), 2U);
    EXPECT_EQ(d.networks[0].to_string(), "10.1.20.0/24");
    EXPECT_EQ(d.networks[1].to_string(), "192.0.2.7");
    EXPECT_THAT(d.listeners, ElementsAre("submission", "submissions", "127.0.0.1:2587"));
    EXPECT_EQ(d.tls_min_version, tls_version::v1_0);
    EXPECT_EQ(d.tls_security_level, 0);
    EXPECT_EQ(d.tls_ciphers, "DEFAULT:@SECLEVEL=0");
    EXPECT_TRUE(d.auth_without_tls);
    EXPECT_TRUE(d.accept_bare_lf);
    EXPECT_TRUE(d.has_tls_settings());
    // Plaintext passwords are worth a warning at start.
    ASSERT_EQ(r.warnings.size(), 1U);
    EXPECT_EQ(r.warnings[0].key, "device_network[0].auth_without_tls");

    const auto& plain = r.cfg.device_networks[1];
    EXPECT_TRUE(plain.listeners.empty());
    EXPECT_EQ(plain.tls_min_version, tls_version::v1_2);
    EXPECT_EQ(plain.tls_security_level, -1);
    EXPECT_FALSE(plain.auth_without_tls);
    EXPECT_FALSE(plain.accept_bare_lf);
    EXPECT_FALSE(plain.has_tls_settings());
}

TEST(device_network, errors_name_the_key) {
    const auto r = parse(R"(
[[device_network]]
networks = ["10.1.20.0/24", "10.1.20.7/24", "nowhere"]
listeners = ["smtp"]
tls_min_version = "1.4"
tls_security_level = 6
bare_lf = "fix"
auth_without_tls = "yes"
colour = "red"

[[device_network]]
tls_ciphers = 3

[[device_network]]
networks = []

)");
    EXPECT_THAT(messages(r),
                ElementsAre(R"(relay.toml: device_network[0].networks[1]: "10.1.20.7/24" has host bits set; use "10.1.20.0/24")",
                            R"(relay.toml: device_network[0].networks[2]: "nowhere" is not an IPv4 or IPv6 address or network)",
                            R"(relay.toml: device_network[0].listeners[0]: "smtp" is not a listener ("submission", "submissions" or a listen address "host:port"))",
                            R"(relay.toml: device_network[0].tls_min_version: expected one of "1.0", "1.1", "1.2", "1.3", got "1.4")",
                            "relay.toml: device_network[0].tls_security_level: must be between 0 and 5, got 6",
                            "relay.toml: device_network[0].auth_without_tls: expected a boolean, got a string",
                            R"(relay.toml: device_network[0].bare_lf: expected one of "reject", "accept", got "fix")",
                            "relay.toml: device_network[0].colour: unknown key",
                            "relay.toml: device_network[1].networks: is required",
                            "relay.toml: device_network[1].tls_ciphers: expected a string, got an integer",
                            "relay.toml: device_network[2].networks: must list at least one network"));
}

TEST(device_network, one_network_twice_for_the_same_listeners) {
    const auto r = parse(R"(
[[device_network]]
networks = ["10.1.20.0/24"]
[[device_network]]
networks = ["10.1.20.0/24"]
listeners = ["submissions"]
[[device_network]]
networks = ["192.0.2.0/24", "10.1.20.0/24"]
)");
    EXPECT_THAT(messages(r), ElementsAre(R"(relay.toml: device_network[2].networks[1]: "10.1.20.0/24" is already in device_network[0])"));
}

TEST(device_network, not_a_table) {
    const auto r = parse_text("device_network = [1]\n" + std::string(minimal), "relay.toml");
    EXPECT_THAT(messages(r), ElementsAre("relay.toml: device_network[0]: expected a table, got an integer"));
}

TEST(device_network, most_specific_network_wins) {
    const auto r = parse(R"(
[[device_network]]
networks = ["10.0.0.0/8"]
bare_lf = "accept"

[[device_network]]
networks = ["10.1.20.0/24", "2001:db8::/32"]
tls_min_version = "1.0"

[[device_network]]
networks = ["10.1.20.7"]
listeners = ["submissions"]
auth_without_tls = true
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    const auto& c = r.cfg;
    const auto* wide = &c.device_networks[0];
    const auto* floor = &c.device_networks[1];
    const auto* one = &c.device_networks[2];
    EXPECT_EQ(c.device_network_for("10.9.9.9", "submission", "0.0.0.0:587"), wide);
    EXPECT_EQ(c.device_network_for("10.1.20.8", "submission", "0.0.0.0:587"), floor);
    EXPECT_EQ(c.device_network_for("::ffff:10.1.20.8", "submission", "0.0.0.0:587"), floor);
    EXPECT_EQ(c.device_network_for("2001:db8::5", "submission", "0.0.0.0:587"), floor);
    EXPECT_EQ(c.device_network_for("10.1.20.7", "submissions", "0.0.0.0:465"), one);
    EXPECT_EQ(c.device_network_for("10.1.20.7", "submission", "0.0.0.0:587"), floor)
        << "a profile for another listener does not apply";
    EXPECT_EQ(c.device_network_for("192.0.2.1", "submission", "0.0.0.0:587"), nullptr);
    EXPECT_EQ(c.device_network_for("unknown", "submission", "0.0.0.0:587"), nullptr);
}

TEST(server_settings, handshake_timeout_and_default_domain) {
    auto r = parse("[server]\ntls_handshake_timeout_seconds = 15\nauth_default_domain = \"contoso.com\"\n");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.server.tls_handshake_timeout_seconds, 15U);
    EXPECT_EQ(r.cfg.server.auth_default_domain, "contoso.com");
    r = parse("[server]\ntls_handshake_timeout_seconds = 0\nauth_default_domain = \"@contoso.com\"\n");
    EXPECT_THAT(messages(r),
                ElementsAre("relay.toml: server.tls_handshake_timeout_seconds: must be greater than 0, got 0",
                            R"(relay.toml: server.auth_default_domain: "@contoso.com" is not a valid domain)"));
}

}  // namespace
}  // namespace subrelay::conf
