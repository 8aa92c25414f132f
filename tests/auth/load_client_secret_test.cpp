#include "auth/token_provider.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "test_tls.hpp"

namespace {

using subrelay::auth::load_client_secret;
using subrelay::conf::oauth_config;

std::string message_of(const oauth_config& cfg) {
    try {
        (void)load_client_secret(cfg);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(load_client_secret, reads_file_and_strips_trailing_newline) {
    subrelay::auth::test::temp_dir dir;
    const auto file = dir.path() / "secret";
    std::ofstream(file, std::ios::binary) << "abc~DEF.123\r\n";
    oauth_config cfg;
    cfg.client_secret_file = file;
    EXPECT_EQ(load_client_secret(cfg), "abc~DEF.123");

    std::ofstream(file, std::ios::binary | std::ios::trunc) << "no-newline";
    EXPECT_EQ(load_client_secret(cfg), "no-newline");

    std::ofstream(file, std::ios::binary | std::ios::trunc) << "inner\nnewline kept\n";
    EXPECT_EQ(load_client_secret(cfg), "inner\nnewline kept");
}

TEST(load_client_secret, empty_file_is_an_error) {
    subrelay::auth::test::temp_dir dir;
    const auto file = dir.path() / "secret";
    std::ofstream(file, std::ios::binary) << "\n";
    oauth_config cfg;
    cfg.client_secret_file = file;
    const std::string what = message_of(cfg);
    EXPECT_NE(what.find("oauth.client_secret_file"), std::string::npos) << what;
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    EXPECT_NE(what.find("empty"), std::string::npos) << what;
}

TEST(load_client_secret, missing_file_is_an_error) {
    subrelay::auth::test::temp_dir dir;
    oauth_config cfg;
    cfg.client_secret_file = dir.path() / "does-not-exist";
    const std::string what = message_of(cfg);
    EXPECT_NE(what.find("oauth.client_secret_file"), std::string::npos) << what;
    EXPECT_NE(what.find("does-not-exist"), std::string::npos) << what;
}

TEST(load_client_secret, reads_environment_variable) {
    ::setenv("SUBRELAY_TEST_CLIENT_SECRET", "from-env", 1);
    oauth_config cfg;
    cfg.client_secret_env = "SUBRELAY_TEST_CLIENT_SECRET";
    EXPECT_EQ(load_client_secret(cfg), "from-env");
    ::unsetenv("SUBRELAY_TEST_CLIENT_SECRET");
}

TEST(load_client_secret, unset_or_empty_variable_is_an_error) {
    ::unsetenv("SUBRELAY_TEST_NO_SUCH_VAR");
    oauth_config cfg;
    cfg.client_secret_env = "SUBRELAY_TEST_NO_SUCH_VAR";
    std::string what = message_of(cfg);
    EXPECT_NE(what.find("SUBRELAY_TEST_NO_SUCH_VAR"), std::string::npos) << what;
    EXPECT_NE(what.find("oauth.client_secret_env"), std::string::npos) << what;

    ::setenv("SUBRELAY_TEST_EMPTY_VAR", "", 1);
    cfg.client_secret_env = "SUBRELAY_TEST_EMPTY_VAR";
    what = message_of(cfg);
    EXPECT_NE(what.find("SUBRELAY_TEST_EMPTY_VAR"), std::string::npos) << what;
    ::unsetenv("SUBRELAY_TEST_EMPTY_VAR");
}

TEST(load_client_secret, reads_a_systemd_credential) {
    subrelay::auth::test::temp_dir dir;
    std::ofstream(dir.path() / "relay-secret", std::ios::binary) << "from-credential\n";
    ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
    oauth_config cfg;
    cfg.name = "gmail";
    cfg.client_secret_credential = "relay-secret";
    EXPECT_EQ(load_client_secret(cfg), "from-credential");

    cfg.client_secret_credential = "missing";
    std::string what = message_of(cfg);
    EXPECT_NE(what.find("oauth.profiles.gmail.client_secret_credential"), std::string::npos) << what;
    EXPECT_NE(what.find("missing"), std::string::npos) << what;

    ::unsetenv("CREDENTIALS_DIRECTORY");
    what = message_of(cfg);
    EXPECT_NE(what.find("$CREDENTIALS_DIRECTORY is not set"), std::string::npos) << what;
    EXPECT_NE(what.find("LoadCredential=missing:"), std::string::npos) << what;
}

TEST(load_client_secret, errors_name_the_profile) {
    oauth_config cfg;
    cfg.name = "delegated";
    cfg.client_secret_env = "SUBRELAY_TEST_NO_SUCH_VAR";
    ::unsetenv("SUBRELAY_TEST_NO_SUCH_VAR");
    EXPECT_NE(message_of(cfg).find("oauth.profiles.delegated.client_secret_env"), std::string::npos);
    EXPECT_EQ(subrelay::auth::profile_key(cfg, ""), "oauth.profiles.delegated");
    cfg.name = "default";
    EXPECT_EQ(subrelay::auth::profile_key(cfg, "scope"), "oauth.scope");
}

TEST(read_secret_file, a_file_others_can_read_is_warned_about_but_used) {
    std::ostringstream log;
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
    subrelay::auth::test::temp_dir dir;
    const auto file = dir.path() / "open-secret";
    std::ofstream(file, std::ios::binary) << "s3cret-value\n";
    std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::others_read);
    EXPECT_EQ(subrelay::auth::read_secret_file(file, "oauth.client_secret_file"), "s3cret-value");
    std::filesystem::permissions(file, std::filesystem::perms::owner_read);
    EXPECT_EQ(subrelay::auth::read_secret_file(file, "oauth.client_secret_file"), "s3cret-value");
    spdlog::set_default_logger(previous);

    const std::string text = log.str();
    EXPECT_NE(text.find("oauth.client_secret_file: " + file.string() + " can be read or written by other users"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("can be read"), text.rfind("can be read")) << "only the open file is warned about: " << text;
    EXPECT_EQ(text.find("s3cret-value"), std::string::npos) << text;
}

TEST(load_client_secret, nothing_configured_is_an_error) {
    EXPECT_THROW((void)load_client_secret(oauth_config{}), std::runtime_error);
}

}  // namespace
