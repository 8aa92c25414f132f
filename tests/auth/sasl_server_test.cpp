#include "auth/sasl_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/password.hpp"

namespace {

using subrelay::auth::hash_password;
using subrelay::auth::password_record;
using subrelay::auth::sasl_result;
using subrelay::auth::sasl_server;
using status = sasl_result::status;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string plain(std::string_view authzid, std::string_view authcid, std::string_view password) {
    std::string out(authzid);
    out.push_back('\0');
    out.append(authcid);
    out.push_back('\0');
    out.append(password);
    return out;
}

class sasl_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        accounts_ = new std::map<std::string, std::string>{
            {"scanner@contoso.com", hash_password("scan-pass")},
            {"printer", hash_password("print-pass", "$6$")},
        };
    }
    static void TearDownTestSuite() {
        delete accounts_;
        accounts_ = nullptr;
    }

    sasl_server make() {
        return sasl_server("relay.example.net", [this](std::string_view identity) -> std::optional<std::string> {
            seen_.emplace_back(identity);
            auto it = accounts_->find(lower(identity));
            if (it == accounts_->end()) {
                return std::nullopt;
            }
            return it->second;
        });
    }

    static std::map<std::string, std::string>* accounts_;
    std::vector<std::string> seen_;
};

std::map<std::string, std::string>* sasl_test::accounts_ = nullptr;

TEST_F(sasl_test, offers_plain_and_login_only) {
    auto server = make();
    const std::string mechs = server.mechanisms();
    EXPECT_NE(mechs.find("PLAIN"), std::string::npos) << mechs;
    EXPECT_NE(mechs.find("LOGIN"), std::string::npos) << mechs;
    EXPECT_EQ(mechs.find("CRAM-MD5"), std::string::npos) << mechs;
    EXPECT_EQ(mechs.find("DIGEST-MD5"), std::string::npos) << mechs;
    EXPECT_EQ(mechs.find("ANONYMOUS"), std::string::npos) << mechs;
}

TEST_F(sasl_test, plain_success_with_initial_response) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("", "scanner@contoso.com", "scan-pass"));
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "scanner@contoso.com");
    ASSERT_EQ(seen_.size(), 1U);
    EXPECT_EQ(seen_[0], "scanner@contoso.com");
}

TEST_F(sasl_test, plain_success_without_initial_response) {
    auto server = make();
    const auto first = server.start("PLAIN", std::nullopt);
    ASSERT_EQ(first.state, status::challenge);
    EXPECT_EQ(first.challenge, "");
    const auto r = server.step(plain("", "scanner@contoso.com", "scan-pass"));
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "scanner@contoso.com");
}

TEST_F(sasl_test, mechanism_names_are_case_insensitive) {
    auto server = make();
    EXPECT_EQ(server.start("plain", plain("", "printer", "print-pass")).state, status::success);
}

TEST_F(sasl_test, plain_wrong_password_fails) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("", "scanner@contoso.com", "wrong"));
    EXPECT_EQ(r.state, status::failure);
    EXPECT_TRUE(r.identity.empty());
}

TEST_F(sasl_test, plain_empty_password_fails) {
    auto server = make();
    EXPECT_NE(server.start("PLAIN", plain("", "scanner@contoso.com", "")).state, status::success);
}

TEST_F(sasl_test, plain_unknown_user_fails) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("", "nobody@contoso.com", "scan-pass"));
    EXPECT_EQ(r.state, status::failure);
    ASSERT_FALSE(seen_.empty());
    EXPECT_EQ(seen_[0], "nobody@contoso.com");
}

TEST_F(sasl_test, identity_is_passed_and_returned_as_typed) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("", "Scanner@Contoso.COM", "scan-pass"));
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "Scanner@Contoso.COM");
    ASSERT_EQ(seen_.size(), 1U);
    EXPECT_EQ(seen_[0], "Scanner@Contoso.COM");
}

TEST_F(sasl_test, no_realm_is_appended_to_bare_names) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("", "printer", "print-pass"));
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "printer");
    ASSERT_EQ(seen_.size(), 1U);
    EXPECT_EQ(seen_[0], "printer");
}

TEST_F(sasl_test, plain_authzid_other_than_authcid_fails) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("ceo@contoso.com", "scanner@contoso.com", "scan-pass"));
    EXPECT_EQ(r.state, status::failure);
    EXPECT_TRUE(r.identity.empty());
}

TEST_F(sasl_test, plain_authzid_equal_to_authcid_succeeds) {
    auto server = make();
    const auto r = server.start("PLAIN", plain("scanner@contoso.com", "scanner@contoso.com", "scan-pass"));
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "scanner@contoso.com");
}

TEST_F(sasl_test, plain_malformed_message_is_not_success) {
    auto server = make();
    const auto r = server.start("PLAIN", std::string("no-nul-bytes-here"));
    EXPECT_EQ(r.state, status::malformed);
    EXPECT_TRUE(seen_.empty());
}

TEST_F(sasl_test, login_two_steps_success) {
    auto server = make();
    const auto first = server.start("LOGIN", std::nullopt);
    ASSERT_EQ(first.state, status::challenge);
    EXPECT_EQ(first.challenge, "Username:");
    const auto second = server.step("scanner@contoso.com");
    ASSERT_EQ(second.state, status::challenge);
    EXPECT_EQ(second.challenge, "Password:");
    const auto r = server.step("scan-pass");
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "scanner@contoso.com");
}

TEST_F(sasl_test, login_with_initial_response_asks_for_password) {
    auto server = make();
    const auto first = server.start("LOGIN", std::string("printer"));
    ASSERT_EQ(first.state, status::challenge);
    EXPECT_EQ(first.challenge, "Password:");
    const auto r = server.step("print-pass");
    ASSERT_EQ(r.state, status::success);
    EXPECT_EQ(r.identity, "printer");
}

TEST_F(sasl_test, login_wrong_password_fails) {
    auto server = make();
    ASSERT_EQ(server.start("LOGIN", std::nullopt).state, status::challenge);
    ASSERT_EQ(server.step("scanner@contoso.com").state, status::challenge);
    EXPECT_EQ(server.step("nope").state, status::failure);
}

TEST_F(sasl_test, login_unknown_user_fails) {
    auto server = make();
    ASSERT_EQ(server.start("LOGIN", std::nullopt).state, status::challenge);
    ASSERT_EQ(server.step("ghost").state, status::challenge);
    EXPECT_EQ(server.step("scan-pass").state, status::failure);
}

TEST_F(sasl_test, unknown_or_disabled_mechanisms_are_bad_mechanism) {
    auto server = make();
    EXPECT_EQ(server.start("XYZZY", std::nullopt).state, status::bad_mechanism);
    auto s2 = make();
    EXPECT_EQ(s2.start("CRAM-MD5", std::nullopt).state, status::bad_mechanism);
    auto s3 = make();
    EXPECT_EQ(s3.start("ANONYMOUS", std::string("x")).state, status::bad_mechanism);
    auto s4 = make();
    EXPECT_EQ(s4.start("", std::nullopt).state, status::bad_mechanism);
}

TEST_F(sasl_test, lookup_exception_is_a_failure) {
    sasl_server server("relay.example.net", [](std::string_view) -> std::optional<std::string> {
        throw std::runtime_error("policy unavailable");
    });
    EXPECT_EQ(server.start("PLAIN", plain("", "printer", "print-pass")).state, status::failure);
}

TEST_F(sasl_test, a_stored_hash_that_is_malformed_fails) {
    sasl_server server("relay.example.net",
                       [](std::string_view) -> std::optional<std::string> { return std::string("*"); });
    EXPECT_EQ(server.start("PLAIN", plain("", "printer", "print-pass")).state, status::failure);
}

TEST_F(sasl_test, a_locked_account_fails_even_with_its_password) {
    sasl_server server("relay.example.net", [](std::string_view) -> std::optional<password_record> {
        return password_record(accounts_->at("printer"), true);
    });
    const auto r = server.start("PLAIN", plain("", "printer", "print-pass"));
    EXPECT_EQ(r.state, status::failure);
    EXPECT_TRUE(r.identity.empty());
}

TEST_F(sasl_test, global_init_is_idempotent) {
    EXPECT_NO_THROW(sasl_server::global_init());
    EXPECT_NO_THROW(sasl_server::global_init());
}


// libsasl2's LOGIN plugin leaked the password buffer for a user name with a
// NUL or over 255 octets: such names never reach it.
TEST_F(sasl_test, malformed_login_user_names_never_reach_the_plugin) {
    for (const std::string& user : {std::string("scan\0ner", 8), std::string(256, 'u'), std::string(),
                                    std::string("a\r\nb")}) {
        auto server = make();
        const auto challenge = server.start("LOGIN", std::nullopt);
        ASSERT_EQ(challenge.state, status::challenge);
        const auto r = server.step(user);
        EXPECT_EQ(r.state, status::malformed) << user.size();
        EXPECT_FALSE(r.reason.empty());
        EXPECT_TRUE(seen_.empty()) << "the lookup ran for a malformed name";
    }
    auto with_initial = make();
    EXPECT_EQ(with_initial.start("login", std::string(300, 'u')).state, status::malformed);
}

TEST_F(sasl_test, malformed_plain_credentials_never_reach_the_plugin) {
    auto server = make();
    EXPECT_EQ(server.start("PLAIN", std::string("no-nul-at-all")).state, status::malformed);
    auto second = make();
    EXPECT_EQ(second.start("PLAIN", plain("", std::string(256, 'u'), "pw")).state, status::malformed);
    auto third = make();
    EXPECT_EQ(third.start("PLAIN", plain(std::string(256, 'z'), "scanner@contoso.com", "pw")).state,
              status::malformed);
    auto fourth = make();
    EXPECT_EQ(fourth.start("PLAIN", plain("", "scanner@contoso.com", std::string(1025, 'p'))).state,
              status::malformed);
    EXPECT_TRUE(seen_.empty());
    // At the limits, still a normal check.
    auto fine = make();
    EXPECT_EQ(fine.start("PLAIN", plain("", std::string(255, 'u'), std::string(1024, 'p'))).state, status::failure);
}

TEST(malformed_credentials, says_what_is_wrong) {
    EXPECT_EQ(subrelay::auth::malformed_credentials("LOGIN", 0, std::string(256, 'u')), "a user name over 255 octets");
    EXPECT_EQ(subrelay::auth::malformed_credentials("LOGIN", 0, std::string("a\0b", 3)), "a control character in the user name");
    EXPECT_EQ(subrelay::auth::malformed_credentials("LOGIN", 1, std::string("p\0w", 3)), "a NUL in the password");
    EXPECT_EQ(subrelay::auth::malformed_credentials("LOGIN", 0, "printer"), std::nullopt);
    EXPECT_EQ(subrelay::auth::malformed_credentials("PLAIN", 0, std::string("\0printer\0pw", 11)), std::nullopt);
    EXPECT_EQ(subrelay::auth::malformed_credentials("PLAIN", 0, std::string("printer\0pw", 10)),
              "PLAIN credentials without their two NULs");
}

}  // namespace
