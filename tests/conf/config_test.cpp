#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <unistd.h>

#include <array>
#include <fstream>

#include "conf/config.hpp"
#include "messages.hpp"

namespace subrelay::conf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The smallest valid configuration for the default upstream (kind = smtp).
constexpr std::string_view minimal = R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
mailbox = "relay@contoso.com"
[oauth]
token_url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
client_id = "app"
client_secret_file = "client-secret"
)";

using test_support::messages;

// Parses `text` as "relay.toml" and expects exactly one error.
std::string only_error(std::string_view text) {
    const auto r = parse_text(text, "relay.toml");
    EXPECT_EQ(r.errors.size(), 1U) << ::testing::PrintToString(messages(r));
    return r.errors.empty() ? std::string() : r.errors.front().to_string();
}

std::string with(std::string_view extra) { return std::string(minimal) + std::string(extra); }

// The minimal file with `line` added to [section] (the table is created if needed).
std::string set(std::string_view section, std::string_view line) {
    std::string text(minimal);
    const std::string header = "[" + std::string(section) + "]\n";
    const auto at = text.find(header);
    if (at == std::string::npos) return text + header + std::string(line) + "\n";
    text.insert(at + header.size(), std::string(line) + "\n");
    return text;
}

// The minimal file without the line that starts with `prefix`.
std::string without(std::string_view prefix) {
    std::string text(minimal);
    const auto at = text.find("\n" + std::string(prefix));
    if (at == std::string::npos) return text;
    const auto end = text.find('\n', at + 1);
    text.erase(at, end - at);
    return text;
}

TEST(config, minimal_file_is_valid) {
    const auto r = parse_text(minimal, "relay.toml");
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_TRUE(r.warnings.empty());
    EXPECT_EQ(r.cfg.source, std::filesystem::path("relay.toml"));
}

TEST(config, defaults) {
    const auto r = parse_text(minimal, "relay.toml");
    ASSERT_TRUE(r.ok());
    const auto& c = r.cfg;
    std::array<char, 256> host{};
    ASSERT_EQ(::gethostname(host.data(), host.size() - 1), 0);
    EXPECT_EQ(c.server.hostname, std::string(host.data()));
    ASSERT_EQ(c.server.submission.size(), 1U);
    EXPECT_EQ(c.server.submission[0].to_string(), "0.0.0.0:587");
    EXPECT_TRUE(c.server.submissions.empty());
    EXPECT_EQ(c.server.max_message_size, 36700160U);
    EXPECT_EQ(c.server.max_recipients, 500U);
    EXPECT_TRUE(c.server.require_tls_for_auth);
    EXPECT_EQ(c.server.max_connections, 200U);
    EXPECT_EQ(c.server.idle_timeout_seconds, 300U);
    EXPECT_EQ(c.server.session_timeout_seconds, 1800U);
    EXPECT_EQ(c.server.tls_handshake_timeout_seconds, 60U);
    EXPECT_TRUE(c.server.auth_default_domain.empty());
    EXPECT_TRUE(c.server.proxy_protocol_from.empty());
    EXPECT_TRUE(c.device_networks.empty());
    EXPECT_TRUE(c.tls.session_tickets);
    EXPECT_EQ(c.tls.session_cache_size, 20480U);
    EXPECT_EQ(c.tls.session_timeout_seconds, 7200U);
    EXPECT_EQ(c.policy.file, std::filesystem::path("policy.toml"));
    EXPECT_EQ(c.spool.dir, std::filesystem::path("spool"));
    EXPECT_EQ(c.upstream.kind, upstream_kind::smtp);
    EXPECT_EQ(c.upstream.host, "smtp.office365.com");
    EXPECT_EQ(c.upstream.port, 587);
    EXPECT_EQ(c.upstream.tls, upstream_tls::starttls);
    EXPECT_TRUE(c.upstream.ca_file.empty());
    EXPECT_EQ(c.upstream.max_connections_per_mailbox, 3U);
    EXPECT_EQ(c.upstream.connect_timeout_seconds, 30U);
    EXPECT_EQ(c.upstream.command_timeout_seconds, 300U);
    EXPECT_EQ(c.upstream.retry_initial_seconds, 300U);
    EXPECT_EQ(c.upstream.retry_max_seconds, 3600U);
    EXPECT_EQ(c.upstream.max_connection_age_seconds, 600U);
    EXPECT_EQ(c.oauth.scope, "https://outlook.office365.com/.default");
    EXPECT_TRUE(c.oauth.client_secret_env.empty());
    EXPECT_TRUE(c.oauth.ca_file.empty());
    EXPECT_EQ(c.oauth.timeout_seconds, 30U);
    EXPECT_EQ(c.log.level, "info");
}

TEST(config, proxy_protocol_from_lists_networks_and_addresses) {
    const auto r = parse_text(set("server", R"(proxy_protocol_from = ["10.0.0.0/24", "2001:db8::7", "127.0.0.1"])"),
                              "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    const auto& from = r.cfg.server.proxy_protocol_from;
    ASSERT_EQ(from.size(), 3U);
    EXPECT_EQ(from[0].to_string(), "10.0.0.0/24");
    EXPECT_TRUE(from[0].contains(std::string_view("10.0.0.9")));
    EXPECT_FALSE(from[0].contains(std::string_view("10.0.1.9")));
    EXPECT_TRUE(from[1].contains(std::string_view("2001:db8::7")));
    EXPECT_TRUE(from[2].contains(std::string_view("127.0.0.1")));
    EXPECT_FALSE(from[2].contains(std::string_view("127.0.0.5")));
}

TEST(config, proxy_protocol_from_names_a_bad_network) {
    EXPECT_THAT(only_error(set("server", R"(proxy_protocol_from = ["10.0.0.0/24", "haproxy.local"])")),
                StartsWith("relay.toml: server.proxy_protocol_from[1]: \"haproxy.local\" "));
    EXPECT_THAT(only_error(set("server", R"(proxy_protocol_from = "10.0.0.1")")),
                StartsWith("relay.toml: server.proxy_protocol_from: "));
}

TEST(config, full_file_is_read) {
    const auto r = parse_text(R"(
[server]
hostname = "relay.example.test"
submission = ["127.0.0.1:2587", "[::1]:2587"]
submissions = ["127.0.0.1:2465"]
max_message_size = 1048576
max_recipients = 50
require_tls_for_auth = true
max_connections = 20
idle_timeout_seconds = 60
session_timeout_seconds = 600
[tls]
cert_file = "/etc/subrelay/cert.pem"
key_file = "/etc/subrelay/key.pem"
[policy]
file = "/etc/subrelay/policy.toml"
[spool]
dir = "/var/spool/subrelay"
[upstream]
kind = "smtp"
host = "mail.example.test"
port = 465
tls = "implicit"
ca_file = "/etc/subrelay/ca.pem"
mailbox = "relay@contoso.com"
max_connections_per_mailbox = 2
connect_timeout_seconds = 10
command_timeout_seconds = 120
retry_initial_seconds = 30
retry_max_seconds = 600
[oauth]
token_url = "https://login.example.test/token"
client_id = "client"
client_secret_env = "SUBRELAY_CLIENT_SECRET"
scope = "https://outlook.office365.com/.default"
timeout_seconds = 15
[log]
level = "debug"
)",
                              "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    const auto& c = r.cfg;
    EXPECT_EQ(c.server.hostname, "relay.example.test");
    ASSERT_EQ(c.server.submission.size(), 2U);
    EXPECT_EQ(c.server.submission[0].host, "127.0.0.1");
    EXPECT_EQ(c.server.submission[0].port, 2587);
    EXPECT_EQ(c.server.submission[1].host, "::1");
    ASSERT_EQ(c.server.submissions.size(), 1U);
    EXPECT_EQ(c.server.submissions[0].to_string(), "127.0.0.1:2465");
    EXPECT_EQ(c.server.max_message_size, 1048576U);
    EXPECT_EQ(c.server.max_recipients, 50U);
    EXPECT_EQ(c.server.max_connections, 20U);
    EXPECT_EQ(c.server.idle_timeout_seconds, 60U);
    EXPECT_EQ(c.server.session_timeout_seconds, 600U);
    EXPECT_EQ(c.spool.dir, std::filesystem::path("/var/spool/subrelay"));
    EXPECT_EQ(c.upstream.host, "mail.example.test");
    EXPECT_EQ(c.upstream.port, 465);
    EXPECT_EQ(c.upstream.tls, upstream_tls::implicit);
    EXPECT_EQ(c.upstream.ca_file, std::filesystem::path("/etc/subrelay/ca.pem"));
    EXPECT_EQ(c.upstream.max_connections_per_mailbox, 2U);
    EXPECT_EQ(c.upstream.connect_timeout_seconds, 10U);
    EXPECT_EQ(c.upstream.command_timeout_seconds, 120U);
    EXPECT_EQ(c.upstream.retry_initial_seconds, 30U);
    EXPECT_EQ(c.upstream.retry_max_seconds, 600U);
    EXPECT_EQ(c.oauth.token_url, "https://login.example.test/token");
    EXPECT_EQ(c.oauth.client_id, "client");
    EXPECT_EQ(c.oauth.client_secret_env, "SUBRELAY_CLIENT_SECRET");
    EXPECT_TRUE(c.oauth.client_secret_file.empty());
    EXPECT_EQ(c.oauth.timeout_seconds, 15U);
    EXPECT_EQ(c.log.level, "debug");
}

TEST(config, relative_paths_are_resolved_against_the_config_directory) {
    const auto r = parse_text(R"(
[tls]
cert_file = "tls/cert.pem"
key_file = "/abs/key.pem"
[upstream]
mailbox = "relay@contoso.com"
ca_file = ""
[oauth]
token_url = "https://login.example.test/token"
client_id = "app"
client_secret_file = "../secrets/client-secret"
ca_file = "ca.pem"
)",
                              "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.cfg.tls.certificates.size(), 1U);
    EXPECT_EQ(r.cfg.tls.certificates[0].cert_file, std::filesystem::path("/etc/subrelay/tls/cert.pem"));
    EXPECT_EQ(r.cfg.tls.certificates[0].key_file, std::filesystem::path("/abs/key.pem"));
    EXPECT_EQ(r.cfg.policy.file, std::filesystem::path("/etc/subrelay/policy.toml"));
    EXPECT_EQ(r.cfg.spool.dir, std::filesystem::path("/etc/subrelay/spool"));
    EXPECT_TRUE(r.cfg.upstream.ca_file.empty());
    EXPECT_EQ(r.cfg.oauth.client_secret_file, std::filesystem::path("/etc/secrets/client-secret"));
    EXPECT_EQ(r.cfg.oauth.ca_file, std::filesystem::path("/etc/subrelay/ca.pem"));
}

TEST(config, paths_beside_a_config_in_the_current_directory_stay_relative) {
    const auto r = parse_text(minimal, "relay.toml");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.cfg.tls.certificates.size(), 1U);
    EXPECT_EQ(r.cfg.tls.certificates[0].cert_file, std::filesystem::path("cert.pem"));
    EXPECT_EQ(r.cfg.oauth.client_secret_file, std::filesystem::path("client-secret"));
    const auto sub = parse_text(minimal, "conf/relay.toml");
    ASSERT_TRUE(sub.ok());
    ASSERT_EQ(sub.cfg.tls.certificates.size(), 1U);
    EXPECT_EQ(sub.cfg.tls.certificates[0].cert_file, std::filesystem::path("conf/cert.pem"));
    EXPECT_EQ(sub.cfg.spool.dir, std::filesystem::path("conf/spool"));
}

TEST(config, directory_upstream_needs_no_oauth) {
    const auto r = parse_text(R"(
[server]
submission = ["127.0.0.1:0"]
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "directory"
directory = "out"
)",
                              "/srv/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.upstream.kind, upstream_kind::directory);
    EXPECT_EQ(r.cfg.upstream.directory, std::filesystem::path("/srv/out"));
    ASSERT_EQ(r.cfg.server.submission.size(), 1U);
    EXPECT_EQ(r.cfg.server.submission[0].port, 0);
}

TEST(config, no_listener_needs_no_certificate) {
    const auto r = parse_text(R"(
[server]
submission = []
[upstream]
kind = "directory"
directory = "out"
)",
                              "relay.toml");
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_TRUE(r.cfg.server.submission.empty());
}

TEST(config, error_format_is_file_key_message) {
    error e{"relay.toml", "upstream.port", "must be between 1 and 65535, got 0"};
    EXPECT_EQ(e.to_string(), "relay.toml: upstream.port: must be between 1 and 65535, got 0");
    error file_level{"relay.toml", "", "cannot read file"};
    EXPECT_EQ(file_level.to_string(), "relay.toml: cannot read file");
}

TEST(config_errors, unknown_key) {
    EXPECT_EQ(only_error(with("[log]\nlevel = \"info\"\ncolour = true\n")), "relay.toml: log.colour: unknown key");
}

TEST(config_errors, unknown_table) {
    EXPECT_EQ(only_error(with("[limits]\nrate = 3\n")), "relay.toml: limits: unknown key");
}

TEST(config_errors, unknown_top_level_key) {
    EXPECT_EQ(only_error(std::string("verbose = true\n") + std::string(minimal)), "relay.toml: verbose: unknown key");
}

TEST(config_errors, wrong_types) {
    EXPECT_EQ(only_error(with("[server]\nmax_recipients = \"500\"\n")),
              "relay.toml: server.max_recipients: expected an integer, got a string");
    EXPECT_EQ(only_error(with("[server]\nrequire_tls_for_auth = 1\n")),
              "relay.toml: server.require_tls_for_auth: expected a boolean, got an integer");
    EXPECT_EQ(only_error(with("[server]\nhostname = 1.5\n")), "relay.toml: server.hostname: expected a string, got a float");
    EXPECT_EQ(only_error(with("[server]\nsubmission = \"127.0.0.1:587\"\n")),
              "relay.toml: server.submission: expected an array, got a string");
    EXPECT_EQ(only_error(with("[server]\nsubmission = [\"127.0.0.1:587\", 587]\n")),
              "relay.toml: server.submission[1]: expected a string, got an integer");
    EXPECT_EQ(only_error(with("[spool]\ndir = false\n")), "relay.toml: spool.dir: expected a string, got a boolean");
    EXPECT_EQ(only_error(std::string("server = 5\n") + std::string(minimal)),
              "relay.toml: server: expected a table, got an integer");
}

TEST(config_errors, out_of_range) {
    EXPECT_EQ(only_error(with("[server]\nmax_message_size = 0\n")),
              "relay.toml: server.max_message_size: must be greater than 0, got 0");
    EXPECT_EQ(only_error(with("[server]\nidle_timeout_seconds = -5\n")),
              "relay.toml: server.idle_timeout_seconds: must be greater than 0, got -5");
    EXPECT_EQ(only_error(with("[server]\nsession_timeout_seconds = 0\n")),
              "relay.toml: server.session_timeout_seconds: must be greater than 0, got 0");
    EXPECT_EQ(only_error(with("[server]\nmax_recipients = 4294967296\n")),
              "relay.toml: server.max_recipients: must be at most 4294967295, got 4294967296");
    EXPECT_EQ(only_error(set("upstream", "port = 0")), "relay.toml: upstream.port: must be between 1 and 65535, got 0");
    EXPECT_EQ(only_error(set("upstream", "port = 65536")),
              "relay.toml: upstream.port: must be between 1 and 65535, got 65536");
    EXPECT_EQ(only_error(set("upstream", "max_connections_per_mailbox = 0")),
              "relay.toml: upstream.max_connections_per_mailbox: must be greater than 0, got 0");
    EXPECT_EQ(only_error(set("upstream", "connect_timeout_seconds = 0")),
              "relay.toml: upstream.connect_timeout_seconds: must be greater than 0, got 0");
    EXPECT_EQ(only_error(set("upstream", "command_timeout_seconds = 0")),
              "relay.toml: upstream.command_timeout_seconds: must be greater than 0, got 0");
    EXPECT_EQ(only_error(set("oauth", "timeout_seconds = 0")),
              "relay.toml: oauth.timeout_seconds: must be greater than 0, got 0");
    EXPECT_EQ(only_error(set("upstream", "retry_initial_seconds = 600\nretry_max_seconds = 60")),
              "relay.toml: upstream.retry_max_seconds: must not be less than upstream.retry_initial_seconds (600)");
}

TEST(config_errors, bad_listen_address) {
    const auto e = only_error(set("server", R"(submission = ["127.0.0.1:2587", "localhost"])"));
    EXPECT_THAT(e, StartsWith("relay.toml: server.submission[1]: expected HOST:PORT"));
    EXPECT_THAT(e, HasSubstr("got \"localhost\""));
    EXPECT_THAT(only_error(set("server", R"(submissions = ["::1:465"])")),
                StartsWith("relay.toml: server.submissions[0]: expected HOST:PORT"));
}

TEST(config_errors, duplicate_listen_address) {
    EXPECT_EQ(only_error(set("server", R"(submission = ["127.0.0.1:2587"]
submissions = ["127.0.0.1:2587"])")),
              "relay.toml: server.submissions[0]: \"127.0.0.1:2587\" is listed more than once");
    // Port 0 picks a free port each time: not a duplicate.
    EXPECT_TRUE(parse_text(set("server", R"(submission = ["127.0.0.1:0"]
submissions = ["127.0.0.1:0"])"), "relay.toml").ok());
}

TEST(config_errors, enumerations) {
    EXPECT_EQ(only_error(set("upstream", R"(tls = "ssl")")),
              R"(relay.toml: upstream.tls: expected one of "starttls", "implicit", "none", got "ssl")");
    EXPECT_EQ(only_error(set("log", R"(level = "verbose")")),
              R"(relay.toml: log.level: expected one of "trace", "debug", "info", "warn", "error", got "verbose")");
    // An unknown kind is reported once; requirements of either kind are not guessed.
    EXPECT_EQ(only_error(set("upstream", R"(kind = "pigeon")")),
              R"(relay.toml: upstream.kind: expected one of "smtp", "directory", "graph", got "pigeon")");
}

TEST(config_errors, tls_files_are_required_with_a_listener) {
    const auto r = parse_text(without("cert_file"), "relay.toml");
    EXPECT_THAT(messages(r), ElementsAre("relay.toml: tls.cert_file: is required"));
    const auto both = parse_text(without("key_file").replace(without("key_file").find("cert_file"), 0, "# "), "relay.toml");
    EXPECT_THAT(messages(both), ElementsAre("relay.toml: tls.cert_file: is required", "relay.toml: tls.key_file: is required"));
}

TEST(config_errors, smtp_upstream_requirements) {
    EXPECT_EQ(only_error(without("mailbox")), R"(relay.toml: upstream.mailbox: is required for upstream.kind = "smtp")");
    EXPECT_EQ(only_error(without("token_url")),
              "relay.toml: oauth.tenant: is required to find the token endpoint (or set token_url)");
    EXPECT_EQ(only_error(without("client_id")), R"(relay.toml: oauth.client_id: is required for grant = "client_credentials")");
    EXPECT_EQ(only_error(without("client_secret_file")),
              "relay.toml: oauth: one of client_secret_file, client_secret_env, client_secret_credential and "
              R"(certificate_file is required for grant = "client_credentials")");
    EXPECT_EQ(only_error(set("oauth", R"(client_secret_env = "SECRET")")),
              "relay.toml: oauth: set only one of client_secret_file, client_secret_env and client_secret_credential");
    EXPECT_EQ(only_error(set("upstream", R"(mailbox = "relay at contoso")").replace(
                  set("upstream", R"(mailbox = "relay at contoso")").find("mailbox = \"relay@"), 0, "# ")),
              R"(relay.toml: upstream.mailbox: "relay at contoso" is not a valid address)");
}

TEST(config_errors, token_url_must_be_https) {
    const std::string text = std::string(minimal).replace(minimal.find("https://login"), 8, "http://");
    EXPECT_EQ(only_error(text), "relay.toml: oauth.token_url: must be an https:// URL");
}

TEST(config_errors, directory_upstream_needs_a_directory) {
    const auto r = parse_text(R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "directory"
)",
                              "relay.toml");
    EXPECT_THAT(messages(r), ElementsAre(R"(relay.toml: upstream.directory: is required for upstream.kind = "directory")"));
}

TEST(config_errors, every_problem_is_reported) {
    const auto r = parse_text(R"(
[server]
submission = ["127.0.0.1:2587", "nowhere"]
max_message_size = 0
idle_timeout_seconds = "5m"
[tls]
cert_file = "cert.pem"
[upstream]
port = 70000
tls = "none"
typo = 1
[oauth]
token_url = "http://insecure.example.test/token"
client_id = "app"
)",
                              "relay.toml");
    EXPECT_FALSE(r.ok());
    const auto m = messages(r);
    EXPECT_EQ(m.size(), 9U) << ::testing::PrintToString(m);
    EXPECT_THAT(m, ::testing::UnorderedElementsAre(
                       StartsWith("relay.toml: server.submission[1]: expected HOST:PORT"),
                       "relay.toml: server.max_message_size: must be greater than 0, got 0",
                       "relay.toml: server.idle_timeout_seconds: expected an integer, got a string",
                       "relay.toml: tls.key_file: is required",
                       "relay.toml: upstream.port: must be between 1 and 65535, got 70000",
                       "relay.toml: upstream.typo: unknown key",
                       R"(relay.toml: upstream.mailbox: is required for upstream.kind = "smtp")",
                       "relay.toml: oauth.token_url: must be an https:// URL",
                       "relay.toml: oauth: one of client_secret_file, client_secret_env, client_secret_credential and "
                       R"(certificate_file is required for grant = "client_credentials")"));
    ASSERT_EQ(r.warnings.size(), 1U);
    EXPECT_EQ(r.warnings[0].key, "upstream.tls");
}

TEST(config_errors, syntax_error_gives_one_error_with_the_line) {
    const auto r = parse_text("[server]\nhostname = \"relay\"\nmax_recipients = = 5\n[tls]\n", "relay.toml");
    ASSERT_EQ(r.errors.size(), 1U);
    EXPECT_TRUE(r.errors[0].key.empty());
    EXPECT_THAT(r.errors[0].to_string(), StartsWith("relay.toml: syntax error at line 3"));
}

TEST(config_warnings, upstream_without_tls) {
    const auto r = parse_text(set("upstream", R"(tls = "none")"), "relay.toml");
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.cfg.upstream.tls, upstream_tls::none);
    ASSERT_EQ(r.warnings.size(), 1U);
    EXPECT_EQ(r.warnings[0].key, "upstream.tls");
    EXPECT_FALSE(r.warnings[0].message.empty());
}

TEST(config_warnings, authentication_without_tls) {
    const auto r = parse_text(set("server", "require_tls_for_auth = false"), "relay.toml");
    EXPECT_TRUE(r.ok());
    EXPECT_FALSE(r.cfg.server.require_tls_for_auth);
    ASSERT_EQ(r.warnings.size(), 1U);
    EXPECT_EQ(r.warnings[0].key, "server.require_tls_for_auth");
}

class config_file : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("subrelay-conf-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(config_file, reads_and_resolves_beside_the_file) {
    const auto file = dir_ / "relay.toml";
    std::ofstream(file) << minimal;
    const auto r = parse_file(file);
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.source, file);
    ASSERT_EQ(r.cfg.tls.certificates.size(), 1U);
    EXPECT_EQ(r.cfg.tls.certificates[0].cert_file, dir_ / "cert.pem");
    EXPECT_EQ(r.cfg.policy.file, dir_ / "policy.toml");
    EXPECT_EQ(r.cfg.spool.dir, dir_ / "spool");
}

TEST_F(config_file, missing_file_cannot_be_read) {
    const auto file = dir_ / "absent.toml";
    const auto r = parse_file(file);
    ASSERT_EQ(r.errors.size(), 1U);
    EXPECT_THAT(r.errors[0].to_string(), StartsWith(file.string() + ": cannot read file"));
}

TEST_F(config_file, errors_name_the_file_as_given) {
    const auto file = dir_ / "relay.toml";
    std::ofstream(file) << with("[log]\nlevel = 3\n");
    const auto r = parse_file(file);
    EXPECT_THAT(messages(r), ElementsAre(file.string() + ": log.level: expected a string, got an integer"));
}

TEST(config, admin_listens_on_loopback_by_default) {
    const auto r = parse_text(minimal, "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_TRUE(r.cfg.admin.listen.has_value());
    EXPECT_EQ(r.cfg.admin.listen->to_string(), "127.0.0.1:9587");
}

TEST(config, admin_listen_is_read_and_empty_turns_it_off) {
    auto r = parse_text(with("[admin]\nlisten = \"[::1]:0\"\n"), "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_TRUE(r.cfg.admin.listen.has_value());
    EXPECT_EQ(r.cfg.admin.listen->host, "::1");
    EXPECT_EQ(r.cfg.admin.listen->port, 0);
    r = parse_text(with("[admin]\nlisten = \"\"\n"), "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_FALSE(r.cfg.admin.listen.has_value());
}

TEST(config, admin_listen_must_be_an_address) {
    EXPECT_THAT(only_error(with("[admin]\nlisten = \"localhost\"\n")), StartsWith("relay.toml: admin.listen: "));
    EXPECT_THAT(only_error(with("[admin]\nbogus = 1\n")), HasSubstr("admin.bogus"));
}

TEST(config, admin_users_file_is_unset_by_default) {
    auto r = parse_text(minimal, "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_TRUE(r.cfg.admin.users_file.empty());
    r = parse_text(with("[admin]\nusers_file = \"\"\n"), "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_TRUE(r.cfg.admin.users_file.empty());
}

TEST(config, admin_users_file_is_resolved_like_the_policy_file) {
    auto r = parse_text(with("[admin]\nusers_file = \"console-users.toml\"\n"), "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.admin.users_file, std::filesystem::path("/etc/subrelay/console-users.toml"));
    r = parse_text(with("[admin]\nusers_file = \"../private/users.toml\"\n"), "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.admin.users_file, std::filesystem::path("/etc/private/users.toml"));
    r = parse_text(with("[admin]\nusers_file = \"/var/lib/subrelay/users.toml\"\n"), "/etc/subrelay/relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.admin.users_file, std::filesystem::path("/var/lib/subrelay/users.toml"));
    // Beside a config in the current directory: relative, as policy.file.
    r = parse_text(with("[admin]\nusers_file = \"users.toml\"\n"), "relay.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.admin.users_file, std::filesystem::path("users.toml"));
    EXPECT_EQ(r.cfg.policy.file, std::filesystem::path("policy.toml"));
}

TEST(config, admin_users_file_must_be_a_string) {
    EXPECT_EQ(only_error(with("[admin]\nusers_file = 1\n")),
              "relay.toml: admin.users_file: expected a string, got an integer");
}

TEST_F(config_file, admin_users_file_is_resolved_beside_the_file) {
    const auto file = dir_ / "relay.toml";
    std::ofstream(file) << with("[admin]\nusers_file = \"users.toml\"\n");
    const auto r = parse_file(file);
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.admin.users_file, dir_ / "users.toml");
}

}  // namespace
}  // namespace subrelay::conf

namespace {

subrelay::conf::parse_result parse_snippet(const std::string& text) {
    return subrelay::conf::parse_text(text, "/etc/subrelay/subrelay.toml");
}

TEST(config_delivery, defaults_for_the_queue_and_upstream_shaping) {
    auto r = parse_snippet("[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n");
    ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
    EXPECT_EQ(r.cfg.queue.max_lifetime_seconds, 5u * 24 * 3600);
    EXPECT_EQ(r.cfg.queue.delay_warning_seconds, 4u * 3600);
    EXPECT_EQ(r.cfg.upstream.max_messages_per_minute, 30u);
    EXPECT_EQ(r.cfg.upstream.graph_max_concurrent_requests, 4u);
    EXPECT_EQ(r.cfg.upstream.graph_max_requests_per_10_minutes, 10000u);
    EXPECT_EQ(r.cfg.upstream.auth, subrelay::conf::upstream_auth::xoauth2);
    EXPECT_EQ(r.cfg.spool.min_free_bytes, 104857600u);
}

TEST(config_delivery, graphs_limits_may_be_lowered_not_raised) {
    const std::string head = "[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n[upstream]\nkind = \"directory\"\n"
                             "directory = \"out\"\n";
    auto ok = parse_snippet(head + "graph_max_concurrent_requests = 2\ngraph_max_requests_per_10_minutes = 900\n");
    ASSERT_TRUE(ok.ok()) << ok.errors.front().to_string();
    EXPECT_EQ(ok.cfg.upstream.graph_max_concurrent_requests, 2u);
    EXPECT_EQ(ok.cfg.upstream.graph_max_requests_per_10_minutes, 900u);
    auto high = parse_snippet(head + "graph_max_concurrent_requests = 5\ngraph_max_requests_per_10_minutes = 0\n");
    ASSERT_EQ(high.errors.size(), 2u);
    EXPECT_NE(high.errors[0].to_string().find("upstream.graph_max_concurrent_requests"), std::string::npos);
    EXPECT_NE(high.errors[1].to_string().find("upstream.graph_max_requests_per_10_minutes"), std::string::npos);
}

TEST(config_delivery, auth_none_needs_no_oauth_and_cert_goes_with_key) {
    auto r = parse_snippet("[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
                           "auth = \"none\"\nhost = \"contoso-com.mail.protection.outlook.com\"\nport = 25\n"
                           "client_cert_file = \"client.pem\"\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].to_string(),
              "/etc/subrelay/subrelay.toml: upstream.client_key_file: client_cert_file and client_key_file go together");
    auto bad = parse_snippet("[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
                             "auth = \"basic\"\n[queue]\nmax_lifetime_seconds = 0\n");
    std::vector<std::string> lines;
    for (const auto& e : bad.errors) lines.push_back(e.to_string());
    EXPECT_NE(std::find(lines.begin(), lines.end(),
                        "/etc/subrelay/subrelay.toml: upstream.auth: expected one of \"xoauth2\", \"none\", got \"basic\""),
              lines.end());
    bool lifetime = false;
    for (const auto& l : lines) lifetime = lifetime || l.find("queue.max_lifetime_seconds: ") != std::string::npos;
    EXPECT_TRUE(lifetime);
}

}  // namespace
