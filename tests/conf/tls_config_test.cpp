// [tls]: one certificate or a list of them (cert_file[i] with key_file[i]),
// and the session resumption settings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conf/config.hpp"
#include "messages.hpp"

namespace subrelay::conf {
namespace {

using ::testing::ElementsAre;

// A STARTTLS listener (so [tls] is required) and a directory upstream.
std::string with_tls(const std::string& tls_lines) {
    return "[server]\nsubmission = [\"127.0.0.1:0\"]\n[tls]\n" + tls_lines +
           "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n";
}

using test_support::messages;

TEST(tls_config, one_certificate_as_strings) {
    const auto r = parse_text(with_tls("cert_file = \"rsa.pem\"\nkey_file = \"rsa.key\"\n"), "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.cfg.tls.certificates.size(), 1U);
    EXPECT_EQ(r.cfg.tls.certificates[0].cert_file, std::filesystem::path("/etc/subrelay/rsa.pem"));
    EXPECT_EQ(r.cfg.tls.certificates[0].key_file, std::filesystem::path("/etc/subrelay/rsa.key"));
}

TEST(tls_config, lists_pair_certificates_with_keys_in_order) {
    const auto r = parse_text(
        with_tls("cert_file = [\"rsa.pem\", \"/abs/ecdsa.pem\"]\nkey_file = [\"rsa.key\", \"ecdsa.key\"]\n"),
        "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.cfg.tls.certificates.size(), 2U);
    EXPECT_EQ(r.cfg.tls.certificates[0].cert_file, std::filesystem::path("/etc/subrelay/rsa.pem"));
    EXPECT_EQ(r.cfg.tls.certificates[0].key_file, std::filesystem::path("/etc/subrelay/rsa.key"));
    EXPECT_EQ(r.cfg.tls.certificates[1].cert_file, std::filesystem::path("/abs/ecdsa.pem"));
    EXPECT_EQ(r.cfg.tls.certificates[1].key_file, std::filesystem::path("/etc/subrelay/ecdsa.key"));
}

TEST(tls_config, a_one_element_list_is_a_string) {
    const auto r = parse_text(with_tls("cert_file = [\"rsa.pem\"]\nkey_file = \"rsa.key\"\n"), "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.cfg.tls.certificates.size(), 1U);
    EXPECT_EQ(r.cfg.tls.certificates[0].key_file, std::filesystem::path("rsa.key"));
}

TEST(tls_config, lists_of_different_lengths) {
    const auto r = parse_text(with_tls("cert_file = [\"rsa.pem\", \"ecdsa.pem\"]\nkey_file = \"rsa.key\"\n"), "relay.toml");
    EXPECT_THAT(messages(r), ElementsAre("relay.toml: tls.key_file: names 1 file but tls.cert_file names 2; each "
                                         "certificate needs its own key, in the same order"));
    const auto more = parse_text(with_tls("cert_file = [\"a\"]\nkey_file = [\"a\", \"b\", \"c\"]\n"), "relay.toml");
    EXPECT_THAT(messages(more), ElementsAre("relay.toml: tls.key_file: names 3 files but tls.cert_file names 1; each "
                                            "certificate needs its own key, in the same order"));
}

TEST(tls_config, wrong_types_name_the_element) {
    const auto r = parse_text(with_tls("cert_file = [\"rsa.pem\", 7]\nkey_file = [\"rsa.key\", \"ecdsa.key\"]\n"),
                              "relay.toml");
    EXPECT_THAT(messages(r), ElementsAre("relay.toml: tls.cert_file[1]: expected a string, got an integer"));
    const auto scalar = parse_text(with_tls("cert_file = \"rsa.pem\"\nkey_file = true\n"), "relay.toml");
    EXPECT_THAT(messages(scalar),
                ElementsAre("relay.toml: tls.key_file: expected a string or an array of strings, got a boolean"));
    const auto table = parse_text(with_tls("cert_file = { path = \"x\" }\nkey_file = \"k\"\n"), "relay.toml");
    EXPECT_THAT(messages(table),
                ElementsAre("relay.toml: tls.cert_file: expected a string or an array of strings, got a table"));
}

TEST(tls_config, empty_names_and_empty_lists) {
    const auto r = parse_text(with_tls("cert_file = [\"rsa.pem\", \"\"]\nkey_file = [\"rsa.key\", \"e.key\"]\n"),
                              "relay.toml");
    EXPECT_THAT(messages(r), ElementsAre("relay.toml: tls.cert_file[1]: must not be empty"));
    const auto empty = parse_text(with_tls("cert_file = []\nkey_file = []\n"), "relay.toml");
    EXPECT_THAT(messages(empty), ElementsAre("relay.toml: tls.cert_file: must name at least one file",
                                             "relay.toml: tls.key_file: must name at least one file"));
    const auto blank = parse_text(with_tls("cert_file = \"\"\nkey_file = \"k\"\n"), "relay.toml");
    EXPECT_THAT(messages(blank), ElementsAre("relay.toml: tls.cert_file: must not be empty"));
}

TEST(tls_config, files_are_required_only_with_a_listener) {
    const auto none = parse_text(
        "[server]\nsubmission = []\n[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n", "relay.toml");
    ASSERT_TRUE(none.ok()) << ::testing::PrintToString(messages(none));
    EXPECT_TRUE(none.cfg.tls.certificates.empty());
    const auto missing = parse_text(with_tls("session_tickets = false\n"), "relay.toml");
    EXPECT_THAT(messages(missing),
                ElementsAre("relay.toml: tls.cert_file: is required", "relay.toml: tls.key_file: is required"));
}

TEST(tls_config, session_resumption_settings) {
    const auto r = parse_text(with_tls("cert_file = \"c\"\nkey_file = \"k\"\nsession_tickets = false\n"
                                       "session_cache_size = 0\nsession_timeout_seconds = 300\n"),
                              "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_FALSE(r.cfg.tls.session_tickets);
    EXPECT_EQ(r.cfg.tls.session_cache_size, 0U);
    EXPECT_EQ(r.cfg.tls.session_timeout_seconds, 300U);

    const auto bad = parse_text(with_tls("cert_file = \"c\"\nkey_file = \"k\"\nsession_tickets = \"yes\"\n"
                                         "session_cache_size = -1\nsession_timeout_seconds = 86400\nsession_cache = 1\n"),
                                "relay.toml");
    EXPECT_THAT(messages(bad),
                ElementsAre("relay.toml: tls.session_tickets: expected a boolean, got a string",
                            "relay.toml: tls.session_cache_size: must be between 0 and 10000000, got -1",
                            "relay.toml: tls.session_timeout_seconds: must be between 1 and 43200, got 86400",
                            "relay.toml: tls.session_cache: unknown key"));
}

}  // namespace
}  // namespace subrelay::conf
