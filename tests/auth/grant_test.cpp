// What each grant puts in the token request, and how the refresh-token
// grant keeps a rotated token.
#include "auth/grant.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>

#include <boost/json.hpp>

#include "smtp/text/base64.hpp"
#include "test_tls.hpp"

namespace {

using subrelay::auth::form_fields;
using subrelay::auth::make_grant;
using subrelay::auth::refresh_token_store;
using subrelay::conf::oauth_config;

const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);

std::map<std::string, std::string> as_map(const form_fields& f) {
    std::map<std::string, std::string> m;
    for (const auto& [k, v] : f) EXPECT_TRUE(m.emplace(k, v).second) << "field twice: " << k;
    return m;
}

// The bytes a base64url text stands for; throws when it is not base64url.
std::string from_base64url(std::string_view text) { return subrelay::text::base64url_decode(text).value(); }

// The header and claims of a compact JWT.
std::pair<boost::json::object, boost::json::object> decode_jwt(const std::string& jwt) {
    const auto a = jwt.find('.');
    const auto b = jwt.find('.', a + 1);
    EXPECT_NE(b, std::string::npos) << jwt;
    return {boost::json::parse(from_base64url(jwt.substr(0, a))).as_object(),
            boost::json::parse(from_base64url(jwt.substr(a + 1, b - a - 1))).as_object()};
}

class memory_store final : public refresh_token_store {
public:
    std::optional<std::string> token;
    bool fail_saves = false;
    [[nodiscard]] std::optional<std::string> load() const override { return token; }
    void save(const std::string& t) override {
        if (fail_saves) throw std::runtime_error("disk full");
        token = t;
    }
};

class grant_test : public ::testing::Test {
protected:
    grant_test() {
        // An RSA certificate as an admin would register for the app.
        cert_ = dir_.path() / "app.crt";
        key_ = dir_.path() / "app.key";
        const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=subrelay-app -keyout " +
                                key_.string() + " -out " + cert_.string() + " 2>/dev/null";
        EXPECT_EQ(std::system(cmd.c_str()), 0);
        std::ifstream in(key_);
        key_pem_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        profile_.name = "p";
        profile_.token_url = "https://login.example.test/tenant/oauth2/v2.0/token";
        profile_.client_id = "app-id";
        profile_.scope = "https://outlook.office365.com/.default";
    }
    subrelay::auth::test::temp_dir dir_;
    std::filesystem::path cert_;
    std::filesystem::path key_;
    std::string key_pem_;
    oauth_config profile_;
};

TEST_F(grant_test, certificate_credential_signs_a_fresh_assertion_each_time) {
    profile_.certificate_file = cert_;
    profile_.private_key_file = key_;
    auto g = make_grant(profile_, "relay@contoso.com", nullptr);
    const auto first = as_map(g->request(now));
    EXPECT_EQ(first.at("grant_type"), "client_credentials");
    EXPECT_EQ(first.at("client_id"), "app-id");
    EXPECT_EQ(first.at("scope"), profile_.scope);
    EXPECT_EQ(first.at("client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    EXPECT_EQ(first.count("client_secret"), 0U);
    const auto [header, claims] = decode_jwt(first.at("client_assertion"));
    EXPECT_EQ(header.at("alg").as_string(), "PS256");
    EXPECT_TRUE(header.contains("x5t#S256"));
    EXPECT_EQ(claims.at("aud").as_string(), profile_.token_url);
    EXPECT_EQ(claims.at("iss").as_string(), "app-id");
    EXPECT_EQ(claims.at("sub").as_string(), "app-id");
    EXPECT_EQ(claims.at("iat").to_number<std::int64_t>(), 1'800'000'000);
    const auto second = as_map(g->request(now));
    EXPECT_NE(decode_jwt(second.at("client_assertion")).second.at("jti"), claims.at("jti"));
    EXPECT_NE(g->describe().find("certificate"), std::string::npos);
}

TEST_F(grant_test, rs256_when_asked) {
    profile_.certificate_file = cert_;
    profile_.private_key_file = key_;
    profile_.assertion_alg = subrelay::conf::oauth_assertion_alg::rs256;
    auto g = make_grant(profile_, "relay@contoso.com", nullptr);
    const auto [header, claims] = decode_jwt(as_map(g->request(now)).at("client_assertion"));
    EXPECT_EQ(header.at("alg").as_string(), "RS256");
    EXPECT_TRUE(header.contains("x5t"));
}

TEST_F(grant_test, an_unreadable_key_or_certificate_names_its_profile_key) {
    profile_.certificate_file = cert_;
    profile_.private_key_file = dir_.path() / "missing.key";
    try {
        (void)make_grant(profile_, "relay@contoso.com", nullptr);
        ADD_FAILURE() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("oauth.profiles.p.private_key_file: ", 0), 0U) << e.what();
    }

    profile_.certificate_file = dir_.path() / "missing.crt";
    profile_.private_key_file = key_;
    try {
        (void)make_grant(profile_, "relay@contoso.com", nullptr);
        ADD_FAILURE() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("oauth.profiles.p.certificate_file: ", 0), 0U) << e.what();
        EXPECT_NE(std::string(e.what()).find("missing.crt"), std::string::npos) << e.what();
    }
}

TEST_F(grant_test, client_secret_from_the_environment) {
    ::setenv("SUBRELAY_GRANT_TEST_SECRET", "s3cret", 1);
    profile_.client_secret_env = "SUBRELAY_GRANT_TEST_SECRET";
    auto g = make_grant(profile_, "relay@contoso.com", nullptr);
    const auto f = as_map(g->request(now));
    EXPECT_EQ(f.at("client_secret"), "s3cret");
    EXPECT_EQ(g->secrets(), std::vector<std::string>{"s3cret"});
    ::unsetenv("SUBRELAY_GRANT_TEST_SECRET");
}

TEST_F(grant_test, refresh_token_is_rotated_into_the_store) {
    profile_.grant = subrelay::conf::oauth_grant::refresh_token;
    profile_.scope = "https://outlook.office.com/SMTP.Send offline_access";
    auto store = std::make_shared<memory_store>();
    store->token = "rt-1";
    auto g = make_grant(profile_, "scanner@contoso.com", store);
    auto f = as_map(g->request(now));
    EXPECT_EQ(f.at("grant_type"), "refresh_token");
    EXPECT_EQ(f.at("refresh_token"), "rt-1");
    EXPECT_EQ(f.at("scope"), profile_.scope);
    EXPECT_EQ(f.count("client_secret"), 0U) << "a public client sends no secret";
    g->accepted(boost::json::parse(R"({"access_token":"a","refresh_token":"rt-2"})").as_object());
    EXPECT_EQ(store->token, "rt-2");
    g->accepted(boost::json::parse(R"({"access_token":"b"})").as_object());  // not rotated
    EXPECT_EQ(store->token, "rt-2");
    EXPECT_EQ(as_map(g->request(now)).at("refresh_token"), "rt-2");
    const auto secrets = g->secrets();
    EXPECT_NE(std::find(secrets.begin(), secrets.end(), "rt-2"), secrets.end());
}

TEST_F(grant_test, a_rotated_token_that_cannot_be_stored_is_still_used) {
    profile_.grant = subrelay::conf::oauth_grant::refresh_token;
    auto store = std::make_shared<memory_store>();
    store->token = "rt-1";
    auto g = make_grant(profile_, "scanner@contoso.com", store);
    (void)g->request(now);
    store->fail_saves = true;
    EXPECT_THROW(g->accepted(boost::json::parse(R"({"refresh_token":"rt-2"})").as_object()), std::runtime_error);
    EXPECT_EQ(store->token, "rt-1") << "the stored token is never lost";
    // The platform now only knows rt-2: the next request must use it.
    EXPECT_EQ(as_map(g->request(now)).at("refresh_token"), "rt-2");
    store->fail_saves = false;
    EXPECT_EQ(as_map(g->request(now)).at("refresh_token"), "rt-2");
    EXPECT_EQ(store->token, "rt-2") << "stored at the next chance";
}

TEST_F(grant_test, no_refresh_token_yet_asks_for_a_sign_in) {
    profile_.grant = subrelay::conf::oauth_grant::refresh_token;
    auto g = make_grant(profile_, "scanner@contoso.com", std::make_shared<memory_store>());
    try {
        (void)g->request(now);
        ADD_FAILURE() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("subrelay oauth login"), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)make_grant(profile_, "scanner@contoso.com", nullptr), std::runtime_error);
}

TEST_F(grant_test, google_refresh_sends_the_secret_and_no_scope) {
    profile_.provider = subrelay::conf::oauth_provider::google;
    profile_.grant = subrelay::conf::oauth_grant::refresh_token;
    profile_.scope = "https://mail.google.com/";
    ::setenv("SUBRELAY_GRANT_TEST_SECRET", "gsecret", 1);
    profile_.client_secret_env = "SUBRELAY_GRANT_TEST_SECRET";
    auto store = std::make_shared<memory_store>();
    store->token = "1//google";
    const auto f = as_map(make_grant(profile_, "me@example.com", store)->request(now));
    EXPECT_EQ(f.at("client_secret"), "gsecret");
    EXPECT_EQ(f.count("scope"), 0U);
    ::unsetenv("SUBRELAY_GRANT_TEST_SECRET");
}

TEST_F(grant_test, service_account_acts_for_the_mailbox_or_the_subject) {
    boost::json::object key;
    key["type"] = "service_account";
    key["client_email"] = "relay@project.iam.gserviceaccount.com";
    key["private_key_id"] = "kid-1";
    key["private_key"] = key_pem_;
    key["token_uri"] = "https://oauth2.googleapis.com/token";
    const auto file = dir_.path() / "sa.json";
    std::ofstream(file) << boost::json::serialize(key);
    profile_.provider = subrelay::conf::oauth_provider::google;
    profile_.token_url = "https://oauth2.googleapis.com/token";
    profile_.scope = "https://mail.google.com/";
    profile_.service_account_file = file;
    const auto f = as_map(make_grant(profile_, "reports@example.com", nullptr)->request(now));
    EXPECT_EQ(f.at("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
    const auto [header, claims] = decode_jwt(f.at("assertion"));
    EXPECT_EQ(header.at("kid").as_string(), "kid-1");
    EXPECT_EQ(claims.at("iss").as_string(), "relay@project.iam.gserviceaccount.com");
    EXPECT_EQ(claims.at("sub").as_string(), "reports@example.com");
    EXPECT_EQ(claims.at("scope").as_string(), "https://mail.google.com/");
    EXPECT_EQ(claims.at("aud").as_string(), "https://oauth2.googleapis.com/token");

    profile_.subject = "boss@example.com";
    const auto g = make_grant(profile_, "reports@example.com", nullptr);
    EXPECT_EQ(decode_jwt(as_map(g->request(now)).at("assertion")).second.at("sub").as_string(), "boss@example.com");
    EXPECT_NE(g->describe().find("boss@example.com"), std::string::npos);
}

}  // namespace
