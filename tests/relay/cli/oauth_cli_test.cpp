#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "relay/cli/cli.hpp"
#include "relay/server/control.hpp"
#include "tests/relay/fake_relay.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

struct result {
    int status;
    std::string out;
    std::string err;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class oauth_cli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-oauth-cli");
        config_ = (dir_ / "relay.toml").string();
        fs::create_directories(dir_ / "tokens");
        std::ofstream(config_) << R"([server]
submission = []
[spool]
dir = "var/spool"
[upstream]
mailbox = "relay@contoso.com"
[oauth]
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret_file = "client-secret"
[oauth.profiles.delegated]
grant = "refresh_token"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
refresh_token_file = "tokens/delegated.token"
mailboxes = ["scanner@contoso.com"]
[oauth.profiles.gmail]
provider = "google"
service_account_file = "service-account.json"
mailboxes = ["alice@example.com", "bob@example.com"]
)";
        spool_dir_ = dir_ / "var" / "spool";
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    result run(std::vector<std::string> args, bool with_config = true) {
        args.insert(args.begin(), "oauth");
        if (with_config) {
            args.emplace_back("--config");
            args.push_back(config_);
        }
        std::istringstream in;
        std::ostringstream out, err;
        const int status = subrelay::relay::run_cli(args, in, out, err);
        return {status, out.str(), err.str()};
    }

    // A running relay that reports `status` for its token sources.
    void relay_reports(json::value status) {
        relay_.emplace(spool_dir_, [status](const json::object&) {
            return json::object{{"ok", true}, {"status", status}};
        });
    }

    fs::path dir_;
    std::string config_;
    fs::path spool_dir_;
    std::optional<subrelay::test_support::fake_relay> relay_;
};

TEST_F(oauth_cli, usage_errors) {
    const auto none = run({}, false);
    EXPECT_EQ(none.status, 2);
    EXPECT_TRUE(contains(none.err, "which action?")) << none.err;
    EXPECT_TRUE(contains(none.err, "usage: subrelay oauth login")) << none.err;

    const auto unknown = run({"frobnicate"});
    EXPECT_EQ(unknown.status, 2);
    EXPECT_TRUE(contains(unknown.err, "subrelay oauth: unknown action 'frobnicate'")) << unknown.err;

    const auto option = run({"status", "--colour"});
    EXPECT_EQ(option.status, 2);
    EXPECT_TRUE(contains(option.err, "unknown option '--colour'")) << option.err;

    EXPECT_EQ(run({"login", "--json"}).status, 2);
    EXPECT_EQ(run({"status", "--profile", "delegated"}).status, 2);
    EXPECT_EQ(run({"status", "--json=yes"}).status, 2);
    EXPECT_EQ(run({"login", "--profile="}).status, 2);
    EXPECT_EQ(run({"status", "extra"}).status, 2);

    const auto missing = run({"login", "--profile"}, false);
    EXPECT_EQ(missing.status, 2);
    EXPECT_TRUE(contains(missing.err, "--profile needs a value")) << missing.err;
    const auto missing_config = run({"status", "-c"}, false);
    EXPECT_EQ(missing_config.status, 2);
    EXPECT_TRUE(contains(missing_config.err, "-c needs a value")) << missing_config.err;

    const auto help = run({"--help"}, false);
    EXPECT_EQ(help.status, 0);
    EXPECT_TRUE(contains(help.out, "usage: subrelay oauth login [--profile NAME]")) << help.out;
    EXPECT_TRUE(contains(help.out, "subrelay oauth status [--json]")) << help.out;
}

TEST_F(oauth_cli, bad_config_fails) {
    std::ofstream(config_) << "[upstream]\nport = \"many\"\n";
    const auto r = run({"status"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, "upstream.port")) << r.err;
}

TEST_F(oauth_cli, login_unknown_profile_names_the_known_ones) {
    const auto r = run({"login", "--profile", "nobody"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, "subrelay oauth login: no profile \"nobody\"")) << r.err;
    EXPECT_TRUE(contains(r.err, "the profiles are: default, delegated, gmail")) << r.err;
    EXPECT_EQ(r.out, "");
}

TEST_F(oauth_cli, login_refuses_client_credentials_profiles) {
    const auto r = run({"login"});  // the default profile
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, "profile default uses grant = client_credentials: no sign-in needed")) << r.err;
    const auto g = run({"login", "--profile=gmail"});
    EXPECT_EQ(g.status, 1);
    EXPECT_TRUE(contains(g.err, "profile gmail uses grant = client_credentials: no sign-in needed")) << g.err;
    EXPECT_EQ(r.out + g.out, "");
}

TEST_F(oauth_cli, login_checks_the_token_directory_before_signing_in) {
    fs::remove_all(dir_ / "tokens");
    const auto r = run({"login", "--profile", "delegated"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, "oauth.profiles.delegated.refresh_token_file")) << r.err;
    EXPECT_TRUE(contains(r.err, "does not exist")) << r.err;
    EXPECT_EQ(r.out, "") << "no sign-in may start when the token cannot be stored";
}

TEST_F(oauth_cli, status_without_a_running_relay_lists_the_profiles) {
    const auto r = run({"status"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "no status from the relay: it does not answer on")) << r.out;
    const auto def = r.out.find("profile default\n");
    const auto del = r.out.find("profile delegated\n");
    const auto gm = r.out.find("profile gmail\n");
    ASSERT_NE(def, std::string::npos) << r.out;
    ASSERT_NE(del, std::string::npos) << r.out;
    ASSERT_NE(gm, std::string::npos) << r.out;
    EXPECT_LT(def, del) << "the default profile comes first";
    EXPECT_LT(del, gm);
    EXPECT_TRUE(contains(r.out, "microsoft (global cloud), tenant contoso.onmicrosoft.com")) << r.out;
    EXPECT_TRUE(contains(r.out, "client credentials with a client secret")) << r.out;
    EXPECT_TRUE(contains(r.out, "unknown (no status from the relay)")) << r.out;
    EXPECT_TRUE(contains(r.out, "not signed in: run `subrelay oauth login --profile delegated`")) << r.out;

    const auto j = run({"status", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    const json::object doc = json::parse(j.out).as_object();
    EXPECT_FALSE(doc.at("status_present").as_bool());
    EXPECT_TRUE(doc.at("status_written_at").is_null());
    EXPECT_TRUE(contains(std::string(doc.at("status_note").as_string()), "(is it running?)"));
    const json::array& profiles = doc.at("profiles").as_array();
    ASSERT_EQ(profiles.size(), 3u);
    EXPECT_EQ(profiles[0].at("profile").as_string(), "default");
    EXPECT_EQ(profiles[1].at("profile").as_string(), "delegated");
    EXPECT_FALSE(profiles[1].at("signed_in").as_bool());
    EXPECT_TRUE(profiles[1].at("sources").as_array().empty());
}

TEST_F(oauth_cli, status_refresh_profile_signed_in_or_not) {
    auto r = run({"status"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "not signed in: run `subrelay oauth login --profile delegated`")) << r.out;

    const fs::path token = dir_ / "tokens" / "delegated.token";
    std::ofstream(token) << "1.AQ-refresh-token-never-shown\n";
    r = run({"status"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(contains(r.out, "not signed in")) << r.out;
    EXPECT_TRUE(contains(r.out, "stored in " + token.string() + ", written ")) << r.out;
    EXPECT_FALSE(contains(r.out, "refresh-token-never-shown")) << r.out;

    const auto j = run({"status", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    EXPECT_FALSE(contains(j.out, "refresh-token-never-shown"));
    const json::value doc = json::parse(j.out);
    const json::object& delegated = doc.at("profiles").as_array()[1].as_object();
    EXPECT_TRUE(delegated.at("signed_in").as_bool());
    EXPECT_NEAR(static_cast<double>(delegated.at("refresh_token_written_at").as_int64()),
                static_cast<double>(now_seconds()), 60.0);
}

TEST_F(oauth_cli, status_reads_the_relay_status_file) {
    const std::int64_t now = now_seconds();
    json::array sources;
    sources.emplace_back(json::object{{"profile", "default"},
                                      {"mailbox", ""},
                                      {"grant", "client credentials with a client secret"},
                                      {"obtained_at", now - 12 * 60 - 10},
                                      {"expires_at", now + 48 * 60 + 30},
                                      {"fetches", 3},
                                      {"last_error", ""},
                                      {"hint", ""}});
    sources.emplace_back(json::object{
        {"profile", "delegated"},
        {"mailbox", ""},
        {"grant", "refresh token with no client secret (a public client)"},
        {"obtained_at", now - 2 * 3600},
        {"expires_at", now - 3600},
        {"fetches", 7},
        {"last_error", "token request to login.microsoftonline.com failed: HTTP 400: AADSTS50173: invalid_grant"},
        {"hint", "the refresh token was revoked: sign in again with `subrelay oauth login`"}});
    sources.emplace_back(json::object{{"profile", "gmail"},
                                      {"mailbox", "alice@example.com"},
                                      {"grant", "Google service account relay@x acting as alice@example.com"},
                                      {"obtained_at", now - 30},
                                      {"expires_at", now + 3570},
                                      {"fetches", 1},
                                      {"last_error", ""},
                                      {"hint", ""}});
    sources.emplace_back(json::object{{"profile", "gmail"},
                                      {"mailbox", "bob@example.com"},
                                      {"grant", "Google service account relay@x acting as bob@example.com"},
                                      {"obtained_at", 0},
                                      {"expires_at", 0},
                                      {"fetches", 2},
                                      {"last_error", "HTTP 401: unauthorized_client"},
                                      {"hint", "allow domain-wide delegation"}});
    relay_reports(json::object{{"written_at", now - 5}, {"sources", std::move(sources)}});

    const auto r = run({"status"});
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string& out = r.out;
    EXPECT_FALSE(contains(out, "no status from the relay")) << out;
    EXPECT_TRUE(contains(out, "relay status as of 5 s ago")) << out;
    EXPECT_TRUE(contains(out, "obtained 12 min ago")) << out;
    EXPECT_TRUE(contains(out, "(in 48 min)")) << out;
    EXPECT_TRUE(contains(out, "requests:      3\n")) << out;
    EXPECT_TRUE(contains(out, "last error:    none")) << out;
    // The delegated profile: its grant as the relay describes it, the expired token, the error and hint.
    EXPECT_TRUE(contains(out, "refresh token with no client secret (a public client)")) << out;
    EXPECT_TRUE(contains(out, "obtained 2 h ago")) << out;
    EXPECT_TRUE(contains(out, "(expired 1 h ago)")) << out;
    EXPECT_TRUE(contains(out, "requests:      7\n")) << out;
    EXPECT_TRUE(contains(out, "AADSTS50173: invalid_grant")) << out;
    EXPECT_TRUE(contains(out, "hint:          the refresh token was revoked")) << out;
    EXPECT_TRUE(contains(out, "not signed in: run `subrelay oauth login --profile delegated`")) << out;
    // A service account: one block per mailbox.
    EXPECT_TRUE(contains(out, "profile gmail, mailbox alice@example.com\n")) << out;
    EXPECT_TRUE(contains(out, "profile gmail, mailbox bob@example.com\n")) << out;
    EXPECT_TRUE(contains(out, "obtained 30 s ago")) << out;
    EXPECT_TRUE(contains(out, "token:         none yet")) << out;
    EXPECT_TRUE(contains(out, "HTTP 401: unauthorized_client")) << out;

    const auto j = run({"status", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    const json::object doc = json::parse(j.out).as_object();
    EXPECT_TRUE(doc.at("status_present").as_bool());
    EXPECT_EQ(doc.at("status_written_at").as_int64(), now - 5);
    EXPECT_EQ(doc.at("control_socket").as_string(), subrelay::relay::control_socket_path(spool_dir_).string());
    const json::array& profiles = doc.at("profiles").as_array();
    ASSERT_EQ(profiles.size(), 3u);

    const json::object& def = profiles[0].as_object();
    EXPECT_EQ(def.at("profile").as_string(), "default");
    EXPECT_EQ(def.at("provider").as_string(), "microsoft");
    EXPECT_EQ(def.at("cloud").as_string(), "global");
    EXPECT_EQ(def.at("grant").as_string(), "client_credentials");
    EXPECT_EQ(def.at("token_url").as_string(),
              "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    const json::array& def_sources = def.at("sources").as_array();
    ASSERT_EQ(def_sources.size(), 1u);
    EXPECT_EQ(def_sources[0].at("fetches").to_number<std::int64_t>(), 3);
    EXPECT_EQ(def_sources[0].at("obtained_at").as_int64(), now - 12 * 60 - 10);
    EXPECT_NEAR(static_cast<double>(def_sources[0].at("age_seconds").as_int64()), 730.0, 5.0);
    EXPECT_FALSE(def_sources[0].at("expired").as_bool());

    const json::object& del = profiles[1].as_object();
    EXPECT_EQ(del.at("grant").as_string(), "refresh_token");
    EXPECT_FALSE(del.at("signed_in").as_bool());
    const json::object& del_source = del.at("sources").as_array()[0].as_object();
    EXPECT_TRUE(del_source.at("expired").as_bool());
    EXPECT_TRUE(contains(std::string(del_source.at("last_error").as_string()), "AADSTS50173"));
    EXPECT_TRUE(contains(std::string(del_source.at("hint").as_string()), "sign in again"));

    const json::object& gmail = profiles[2].as_object();
    EXPECT_TRUE(gmail.at("per_mailbox").as_bool());
    const json::array& gmail_sources = gmail.at("sources").as_array();
    ASSERT_EQ(gmail_sources.size(), 2u);
    EXPECT_EQ(gmail_sources[0].at("mailbox").as_string(), "alice@example.com");
    EXPECT_EQ(gmail_sources[1].at("mailbox").as_string(), "bob@example.com");
    EXPECT_TRUE(gmail_sources[1].at("age_seconds").is_null());
}

TEST_F(oauth_cli, status_survives_a_relay_answer_without_a_status) {
    relay_reports(json::string("{\"written_at\": 12, \"sources\": ["));
    const auto r = run({"status"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "no status from the relay")) << r.out;
    EXPECT_TRUE(contains(r.out, "the relay's answer holds no status")) << r.out;
    EXPECT_TRUE(contains(r.out, "profile default\n")) << r.out;
    const auto j = run({"status", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    EXPECT_FALSE(json::parse(j.out).at("status_present").as_bool());
}

}  // namespace
