#include "auth/device_code.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "auth/token_provider.hpp"
#include "test_tls.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace subrelay::auth;
using namespace subrelay::auth::test;

constexpr const char* device_code = "DAQABIQEAAADdevice-code-0123456789abcdefghijklmnopqrstuvwxyz";
constexpr const char* refresh_token = "M.C105_BAY.0.U.-refresh-token-0123456789abcdefghijklmnop";
constexpr const char* access_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.access.token";
constexpr const char* client_secret = "GOCSPX-client-secret+value/=";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

canned_response json_response(int status, const boost::json::object& o) {
    canned_response r;
    r.status = status;
    r.body = boost::json::serialize(o);
    return r;
}

// Entra ID's device authorization answer.
canned_response microsoft_authorization() {
    boost::json::object o;
    o["user_code"] = "B7KLMNPQR";
    o["device_code"] = device_code;
    o["verification_uri"] = "https://microsoft.com/devicelogin";
    o["expires_in"] = 900;
    o["interval"] = 5;
    o["message"] = "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the "
                   "code B7KLMNPQR to authenticate.";
    return json_response(200, o);
}

// Google's: verification_url, no message.
canned_response google_authorization() {
    boost::json::object o;
    o["device_code"] = device_code;
    o["user_code"] = "GQVQ-JKEC";
    o["verification_url"] = "https://www.google.com/device";
    o["expires_in"] = 1800;
    o["interval"] = 5;
    return json_response(200, o);
}

// An error answer as Entra ID sends it (code in the description and in error_codes).
canned_response ms_error(const std::string& error, long code, const std::string& text, int status = 400) {
    boost::json::object o;
    o["error"] = error;
    o["error_description"] = "AADSTS" + std::to_string(code) + ": " + text +
                             "\r\nTrace ID: 0b4a2f4e-3c1d-4e6f-9a8b-1c2d3e4f5a6b"
                             "\r\nTimestamp: 2024-05-01 10:00:00Z";
    o["error_codes"] = boost::json::array{code};
    o["trace_id"] = "0b4a2f4e-3c1d-4e6f-9a8b-1c2d3e4f5a6b";
    return json_response(status, o);
}

canned_response google_error(int status, const std::string& error, const std::string& description) {
    boost::json::object o;
    o["error"] = error;
    o["error_description"] = description;
    return json_response(status, o);
}

canned_response pending() {
    return ms_error("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. "
                                                    "Continue polling.");
}

canned_response slow_down() { return google_error(403, "slow_down", "Forbidden"); }

canned_response tokens(bool with_refresh_token = true) {
    boost::json::object o;
    o["token_type"] = "Bearer";
    o["scope"] = "https://outlook.office.com/SMTP.Send";
    o["expires_in"] = 3599;
    o["access_token"] = access_token;
    if (with_refresh_token) o["refresh_token"] = refresh_token;
    return json_response(200, o);
}

class device_code_test : public ::testing::Test {
protected:
    device_code_test() {
        ca_file_ = dir_.path() / "ca.pem";
        std::ofstream(ca_file_) << ca_.cert_pem();
        server_ = std::make_unique<https_test_server>(ioc_, server_context(ca_.issue("127.0.0.1", "IP:127.0.0.1")),
                                                      [this](const captured_request& req) { return answer(req); });
        cfg_.name = "alice";
        cfg_.provider = subrelay::conf::oauth_provider::microsoft;
        cfg_.grant = subrelay::conf::oauth_grant::refresh_token;
        cfg_.device_code_url = server_->url("/tenant-id/oauth2/v2.0/devicecode");
        cfg_.token_url = server_->url("/tenant-id/oauth2/v2.0/token");
        cfg_.client_id = "00000000-app-id";
        cfg_.scope = "https://outlook.office.com/SMTP.Send offline_access";
        cfg_.ca_file = ca_file_;
        cfg_.timeout_seconds = 10;
        auth_.device_code = device_code;
        auth_.user_code = "B7KLMNPQR";
        auth_.verification_uri = "https://microsoft.com/devicelogin";
        clock_ = std::chrono::steady_clock::now();
    }

    void use_google() {
        cfg_.provider = subrelay::conf::oauth_provider::google;
        cfg_.device_code_url = server_->url("/device/code");
        cfg_.token_url = server_->url("/token");
        cfg_.client_id = "1234-abc.apps.googleusercontent.com";
        cfg_.scope = "https://mail.google.com/";
    }

    // The server's answers, one per request; the last one repeats.
    void script(std::vector<canned_response> answers) { script_ = std::move(answers); }

    canned_response answer(const captured_request&) {
        const std::size_t i = std::min(served_++, script_.size() - 1);
        return script_.at(i);
    }

    // Options on the test's clock: each wait is recorded and moves the clock.
    device_poll_options fake_time() {
        device_poll_options o;
        o.sleep = [this](std::chrono::milliseconds d) { return fake_sleep(d); };
        o.now = [this] { return clock_; };
        return o;
    }

    asio::awaitable<void> fake_sleep(std::chrono::milliseconds d) {
        sleeps_.push_back(std::chrono::duration_cast<std::chrono::seconds>(d).count());
        clock_ += d;
        co_return;
    }

    std::string poll(std::string secret = {}) {
        return run(ioc_, poll_for_refresh_token(cfg_, auth_, std::move(secret), fake_time()));
    }

    // Runs the poll, expecting a token_error, and checks that its message
    // and hint keep the secrets out.
    token_error poll_error(const std::string& secret = {}) {
        try {
            (void)poll(secret);
        } catch (const token_error& e) {
            expect_no_secrets(e.what());
            expect_no_secrets(e.hint());
            return e;
        }
        ADD_FAILURE() << "expected token_error";
        return token_error("none", oauth_failure::retryable);
    }

    static void expect_no_secrets(const std::string& text) {
        for (const char* secret : {device_code, refresh_token, access_token, client_secret})
            EXPECT_FALSE(contains(text, secret)) << text;
    }

    [[nodiscard]] const captured_request& request(std::size_t i) const { return server_->requests().at(i); }

    temp_dir dir_;
    test_ca ca_;
    std::filesystem::path ca_file_;
    asio::io_context ioc_;
    std::vector<canned_response> script_{tokens()};
    std::size_t served_ = 0;
    std::unique_ptr<https_test_server> server_;
    subrelay::conf::oauth_config cfg_;
    device_authorization auth_;
    std::chrono::steady_clock::time_point clock_;
    std::vector<long> sleeps_;  // seconds
};

// ---- start_device_authorization ---------------------------------------------------

TEST_F(device_code_test, start_parses_microsofts_answer) {
    script({microsoft_authorization()});
    const device_authorization a = run(ioc_, start_device_authorization(cfg_));
    EXPECT_EQ(a.device_code, device_code);
    EXPECT_EQ(a.user_code, "B7KLMNPQR");
    EXPECT_EQ(a.verification_uri, "https://microsoft.com/devicelogin");
    EXPECT_EQ(a.expires_in, 900s);
    EXPECT_EQ(a.interval, 5s);
    EXPECT_TRUE(contains(a.message, "enter the code B7KLMNPQR")) << a.message;
    ASSERT_EQ(server_->requests().size(), 1U);
    EXPECT_EQ(request(0).method, "POST");
    EXPECT_EQ(request(0).target, "/tenant-id/oauth2/v2.0/devicecode");
    EXPECT_EQ(request(0).content_type, "application/x-www-form-urlencoded");
}

TEST_F(device_code_test, start_parses_googles_answer_with_verification_url) {
    use_google();
    script({google_authorization()});
    const device_authorization a = run(ioc_, start_device_authorization(cfg_));
    EXPECT_EQ(a.device_code, device_code);
    EXPECT_EQ(a.user_code, "GQVQ-JKEC");
    EXPECT_EQ(a.verification_uri, "https://www.google.com/device");
    EXPECT_EQ(a.expires_in, 1800s);
    EXPECT_EQ(a.interval, 5s);
    EXPECT_EQ(a.message, "");
    ASSERT_EQ(server_->requests().size(), 1U);
    EXPECT_EQ(request(0).target, "/device/code");
    EXPECT_EQ(request(0).form.at("scope"), "https://mail.google.com/");
}

TEST_F(device_code_test, start_sends_exactly_client_id_and_scope) {
    cfg_.client_secret_env = "SUBRELAY_DEVICE_TEST_SECRET";  // a secret source must not matter here
    script({microsoft_authorization()});
    (void)run(ioc_, start_device_authorization(cfg_));
    ASSERT_EQ(server_->requests().size(), 1U);
    const auto& form = request(0).form;
    EXPECT_EQ(form.size(), 2U);
    EXPECT_EQ(form.at("client_id"), "00000000-app-id");
    EXPECT_EQ(form.at("scope"), "https://outlook.office.com/SMTP.Send offline_access");
}

TEST_F(device_code_test, start_accepts_numbers_in_strings_and_defaults) {
    boost::json::object o;
    o["device_code"] = device_code;
    o["user_code"] = "B7KLMNPQR";
    o["verification_uri"] = "https://microsoft.com/devicelogin";
    o["expires_in"] = "600";  // Microsoft's older endpoints
    script({json_response(200, o)});
    const device_authorization a = run(ioc_, start_device_authorization(cfg_));
    EXPECT_EQ(a.expires_in, 600s);
    EXPECT_EQ(a.interval, 5s);  // RFC 8628 3.2: 5 s when none is given
}

TEST_F(device_code_test, start_error_answer_is_a_token_error_with_the_diagnosis) {
    script({ms_error("unauthorized_client", 700016,
                     "Application with identifier '00000000-app-id' was not found in the directory 'Contoso'.")});
    try {
        (void)run(ioc_, start_device_authorization(cfg_));
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        const std::string what = e.what();
        EXPECT_EQ(e.kind(), oauth_failure::configuration);
        EXPECT_TRUE(contains(what, "HTTP 400: AADSTS700016: unauthorized_client")) << what;
        EXPECT_TRUE(contains(what, "/tenant-id/oauth2/v2.0/devicecode")) << what;
        EXPECT_FALSE(contains(what, "Trace ID")) << what;
        EXPECT_TRUE(contains(e.hint(), "client id")) << e.hint();
    }
}

TEST_F(device_code_test, start_google_invalid_scope_explains_the_device_flow_limit) {
    use_google();
    script({google_error(400, "invalid_scope", "Invalid device flow scope: https://mail.google.com/")});
    try {
        (void)run(ioc_, start_device_authorization(cfg_));
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        EXPECT_EQ(e.kind(), oauth_failure::configuration);
        EXPECT_TRUE(contains(e.what(), "invalid_scope")) << e.what();
        EXPECT_TRUE(contains(e.hint(), "https://mail.google.com/")) << e.hint();
        EXPECT_TRUE(contains(e.hint(), "oauth.profiles.alice.scope")) << e.hint();
    }
}

TEST_F(device_code_test, start_malformed_answer_is_a_runtime_error) {
    boost::json::object no_user_code;
    no_user_code["device_code"] = device_code;
    no_user_code["verification_uri"] = "https://microsoft.com/devicelogin";
    canned_response html;
    html.content_type = "text/html";
    html.body = "<html><body>Proxy login</body></html>";
    boost::json::object bad_interval = boost::json::parse(microsoft_authorization().body).as_object();
    bad_interval["interval"] = "soon";
    for (const auto& [response, expected] : std::vector<std::pair<canned_response, std::string>>{
             {json_response(200, no_user_code), "no user_code"},
             {html, "not a JSON object"},
             {json_response(200, bad_interval), "invalid interval"}}) {
        SCOPED_TRACE(expected);
        script({response});
        served_ = 0;
        try {
            (void)run(ioc_, start_device_authorization(cfg_));
            ADD_FAILURE() << "expected std::runtime_error";
        } catch (const token_error& e) {
            ADD_FAILURE() << "a malformed answer is not a token_error: " << e.what();
        } catch (const std::runtime_error& e) {
            EXPECT_TRUE(contains(e.what(), expected)) << e.what();
            expect_no_secrets(e.what());
        }
    }
}

TEST_F(device_code_test, start_without_settings_names_the_key) {
    cfg_.device_code_url.clear();
    try {
        (void)run(ioc_, start_device_authorization(cfg_));
        FAIL() << "expected std::runtime_error";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(contains(e.what(), "oauth.profiles.alice.device_code_url")) << e.what();
    }
    EXPECT_EQ(server_->requests().size(), 0U);
}

// ---- poll_for_refresh_token -----------------------------------------------------

TEST_F(device_code_test, poll_pending_three_times_then_success) {
    script({pending(), pending(), pending(), tokens()});
    EXPECT_EQ(poll(), refresh_token);
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 5, 5, 5}));
    ASSERT_EQ(server_->requests().size(), 4U);
    for (const auto& req : server_->requests()) {
        EXPECT_EQ(req.target, "/tenant-id/oauth2/v2.0/token");
        EXPECT_EQ(req.form.size(), 3U);
        EXPECT_EQ(req.form.at("grant_type"), "urn:ietf:params:oauth:grant-type:device_code");
        EXPECT_EQ(req.form.at("client_id"), "00000000-app-id");
        EXPECT_EQ(req.form.at("device_code"), device_code);
    }
}

TEST_F(device_code_test, poll_waits_the_servers_interval) {
    auth_.interval = 8s;
    script({pending(), tokens()});
    EXPECT_EQ(poll(), refresh_token);
    EXPECT_EQ(sleeps_, (std::vector<long>{8, 8}));
}

TEST_F(device_code_test, poll_slow_down_adds_five_seconds_from_then_on) {
    script({pending(), slow_down(), pending(), tokens()});
    EXPECT_EQ(poll(), refresh_token);
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 5, 10, 10}));
}

TEST_F(device_code_test, poll_each_slow_down_adds_five_seconds) {
    script({slow_down(), slow_down(), pending(), tokens()});
    EXPECT_EQ(poll(), refresh_token);
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 10, 15, 15}));
}

TEST_F(device_code_test, poll_googles_pending_and_slow_down_status_codes) {
    use_google();
    script({google_error(428, "authorization_pending", "Precondition Required"), slow_down(), tokens()});
    EXPECT_EQ(poll(client_secret), refresh_token);
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 5, 10}));
}

TEST_F(device_code_test, poll_expired_token_is_sign_in_needed) {
    script({pending(), ms_error("expired_token", 70020,
                                "The provided value for the input parameter 'device_code' is not valid.")});
    const token_error e = poll_error();
    EXPECT_EQ(e.kind(), oauth_failure::sign_in_needed);
    EXPECT_TRUE(contains(e.what(), "expired_token")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "`subrelay oauth login`")) << e.hint();
    EXPECT_EQ(server_->requests().size(), 2U);
}

TEST_F(device_code_test, poll_authorization_declined_is_sign_in_needed) {
    script({pending(), ms_error("authorization_declined", 70000, "The user declined the request.")});
    const token_error e = poll_error();
    EXPECT_EQ(e.kind(), oauth_failure::sign_in_needed);
    EXPECT_TRUE(contains(e.what(), "authorization_declined")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "declined")) << e.hint();
    EXPECT_EQ(server_->requests().size(), 2U);
}

TEST_F(device_code_test, poll_googles_access_denied_is_a_declined_sign_in) {
    use_google();
    script({google_error(403, "access_denied", "Forbidden")});
    const token_error e = poll_error(client_secret);
    EXPECT_EQ(e.kind(), oauth_failure::sign_in_needed);
    EXPECT_TRUE(contains(e.hint(), "declined")) << e.hint();
}

TEST_F(device_code_test, poll_stops_at_the_deadline_while_the_server_says_pending) {
    auth_.expires_in = 22s;
    script({pending()});
    const token_error e = poll_error();
    EXPECT_EQ(e.kind(), oauth_failure::sign_in_needed);
    EXPECT_TRUE(contains(e.what(), "22 s")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "`subrelay oauth login`")) << e.hint();
    // Polls at 5, 10, 15 and 20 s; one at 25 s would come after the code died.
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 5, 5, 5}));
    EXPECT_EQ(server_->requests().size(), 4U);
}

TEST_F(device_code_test, poll_deadline_counts_slowed_down_waits) {
    auth_.expires_in = 20s;
    script({slow_down(), pending()});
    (void)poll_error();
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 10}));  // at 5 and 15 s; 25 s is too late
}

TEST_F(device_code_test, poll_answer_without_refresh_token_mentions_offline_access) {
    cfg_.scope = "https://outlook.office.com/SMTP.Send";
    script({tokens(false)});
    try {
        (void)poll();
        FAIL() << "expected std::runtime_error";
    } catch (const token_error& e) {
        FAIL() << "not a token_error: " << e.what();
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_TRUE(contains(what, "without a refresh_token")) << what;
        EXPECT_TRUE(contains(what, "offline_access")) << what;
        EXPECT_TRUE(contains(what, "oauth.profiles.alice.scope")) << what;
        expect_no_secrets(what);
    }
}

TEST_F(device_code_test, poll_sends_the_client_secret_only_when_given) {
    script({pending(), tokens()});
    EXPECT_EQ(poll(client_secret), refresh_token);
    ASSERT_EQ(server_->requests().size(), 2U);
    for (const auto& req : server_->requests()) {
        EXPECT_EQ(req.form.size(), 4U);
        EXPECT_EQ(req.form.at("client_secret"), client_secret);
    }

    served_ = 0;
    EXPECT_EQ(poll(), refresh_token);
    ASSERT_EQ(server_->requests().size(), 4U);
    for (std::size_t i = 2; i < 4; ++i) {
        EXPECT_EQ(request(i).form.size(), 3U);
        EXPECT_EQ(request(i).form.count("client_secret"), 0U);
    }
}

TEST_F(device_code_test, poll_google_without_client_secret_fails_before_polling) {
    use_google();
    try {
        (void)poll();
        FAIL() << "expected std::runtime_error";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(contains(e.what(), "client secret")) << e.what();
    }
    EXPECT_EQ(server_->requests().size(), 0U);
}

TEST_F(device_code_test, poll_other_error_is_a_token_error_with_the_diagnosis) {
    script({pending(), ms_error("invalid_client", 7000218,
                                "The request body must contain the following parameter: 'client_assertion' or "
                                "'client_secret'.",
                                401)});
    const token_error e = poll_error();
    EXPECT_EQ(e.kind(), oauth_failure::configuration);
    EXPECT_TRUE(contains(e.what(), "HTTP 401: AADSTS7000218: invalid_client")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "Allow public client flows")) << e.hint();
    EXPECT_EQ(server_->requests().size(), 2U);
}

TEST_F(device_code_test, poll_server_failure_is_retryable_and_not_retried) {
    canned_response html;
    html.status = 503;
    html.content_type = "text/html";
    html.body = "<html><body>Service Unavailable</body></html>";
    script({html});
    const token_error e = poll_error();
    EXPECT_EQ(e.kind(), oauth_failure::retryable);
    EXPECT_EQ(server_->requests().size(), 1U);
}

TEST_F(device_code_test, poll_backs_off_when_the_endpoint_does_not_answer) {
    cfg_.timeout_seconds = 1;
    canned_response hang;
    hang.never_answer = true;
    script({hang, pending(), tokens()});
    EXPECT_EQ(poll(), refresh_token);
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 10, 10}));  // RFC 8628 3.5: doubled after a timeout
    EXPECT_EQ(server_->requests().size(), 3U);
}

TEST_F(device_code_test, poll_gives_up_after_repeated_timeouts) {
    cfg_.timeout_seconds = 1;
    canned_response hang;
    hang.never_answer = true;
    script({hang});
    const token_error e = poll_error();
    EXPECT_EQ(e.kind(), oauth_failure::retryable);
    EXPECT_EQ(server_->requests().size(), 3U);
    EXPECT_EQ(sleeps_, (std::vector<long>{5, 10, 20}));
}

TEST_F(device_code_test, no_error_message_contains_the_device_code_or_a_token) {
    // A server that echoes what it was sent, and mixes tokens into errors.
    const std::string echo = std::string("device_code ") + device_code + " with secret " + client_secret;
    boost::json::object o;
    o["error"] = "invalid_grant";
    o["error_description"] = "AADSTS54005: OAuth2 Authorization code was already redeemed: " + echo +
                             " refresh " + refresh_token + " access " + access_token;
    o["refresh_token"] = refresh_token;
    o["access_token"] = access_token;
    script({json_response(400, o)});
    const token_error e = poll_error(client_secret);
    EXPECT_TRUE(contains(e.what(), "[redacted]")) << e.what();

    // Each ending: the checks are in poll_error.
    for (const auto& reply : {ms_error("expired_token", 70020, echo), ms_error("authorization_declined", 70000, echo),
                        google_error(403, "access_denied", echo), google_error(400, "unsupported_grant_type", echo),
                        google_error(500, "internal_failure", echo)}) {
        script({reply});
        served_ = 0;
        (void)poll_error(client_secret);
    }
    auth_.expires_in = 5s;
    script({pending()});
    served_ = 0;
    (void)poll_error(client_secret);

    // The device authorization endpoint's errors too: it was sent no secret,
    // but tokens in its answer stay out of the message as well.
    boost::json::object start_error;
    start_error["error"] = "invalid_request";
    start_error["error_description"] = std::string("Unexpected ") + refresh_token + " and " + access_token;
    start_error["refresh_token"] = refresh_token;
    start_error["access_token"] = access_token;
    script({json_response(400, start_error)});
    served_ = 0;
    try {
        (void)run(ioc_, start_device_authorization(cfg_));
        FAIL() << "expected token_error";
    } catch (const token_error& err) {
        expect_no_secrets(err.what());
        expect_no_secrets(err.hint());
        EXPECT_TRUE(contains(err.what(), "invalid_request")) << err.what();
    }
}

}  // namespace
