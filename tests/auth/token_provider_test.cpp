#include "auth/token_provider.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "test_tls.hpp"

namespace {

namespace asio = boost::asio;
using namespace subrelay::auth;
using namespace subrelay::auth::test;

constexpr const char* secret = "s3cr&t+val=ue~ x%";

std::string token_json(const std::string& token, const boost::json::value& expires_in) {
    boost::json::object o;
    o["token_type"] = "Bearer";
    o["expires_in"] = expires_in;
    o["ext_expires_in"] = expires_in;
    o["access_token"] = token;
    return boost::json::serialize(o);
}

canned_response ok(const std::string& token, const boost::json::value& expires_in = 3599) {
    canned_response r;
    r.body = token_json(token, expires_in);
    return r;
}

canned_response aad_error(int status, const std::string& error, const std::string& description) {
    boost::json::object o;
    o["error"] = error;
    o["error_description"] = description;
    o["error_codes"] = boost::json::array{7000215};
    o["timestamp"] = "2024-05-01 10:00:00Z";
    o["trace_id"] = "11111111-2222-3333-4444-555555555555";
    canned_response r;
    r.status = status;
    r.body = boost::json::serialize(o);
    return r;
}

class token_provider_test : public ::testing::Test {
protected:
    token_provider_test() {
        ca_file_ = dir_.path() / "ca.pem";
        std::ofstream(ca_file_) << ca_.cert_pem();
        server_ = std::make_unique<https_test_server>(
            ioc_, server_context(ca_.issue("127.0.0.1", "IP:127.0.0.1")),
            [this](const captured_request& req) { return handler_(req); });
        cfg_.token_url = server_->url("/tenant-id/oauth2/v2.0/token");
        cfg_.client_id = "00000000-app-id";
        cfg_.scope = "https://outlook.office365.com/.default";
        cfg_.ca_file = ca_file_;
        cfg_.timeout_seconds = 10;
    }

    std::unique_ptr<token_source> make() {
        return subrelay::auth::make_token_provider(ioc_.get_executor(), cfg_,
                                                   subrelay::auth::make_client_secret_grant(cfg_, secret));
    }

    // A provider on a clock the test moves (clock_ starts at the real now).
    std::unique_ptr<token_source> make_with_clock() {
        clock_ = std::chrono::steady_clock::now();
        return subrelay::auth::make_token_provider(ioc_.get_executor(), cfg_,
                                                   subrelay::auth::make_client_secret_grant(cfg_, secret),
                                                   [this] { return clock_; });
    }
    std::chrono::steady_clock::time_point clock_;

    // Serves "token-1", "token-2", ... for successive requests.
    void serve_counting_tokens(const boost::json::value& expires_in = 3599) {
        handler_ = [this, expires_in](const captured_request&) {
            return ok("token-" + std::to_string(server_->requests().size()), expires_in);
        };
    }

    // Runs n concurrent get() calls; returns each call's token or error text.
    std::vector<std::string> concurrent_gets(token_source& source, int n) {
        std::vector<std::string> results;
        int done = 0;
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(ioc_, source.get(), [&](std::exception_ptr e, access_token t) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const token_error& err) {
                        results.push_back(std::string("error: ") + err.what());
                    } catch (const std::exception& err) {
                        results.push_back(std::string("other error: ") + err.what());
                    }
                } else {
                    results.push_back(t.value);
                }
                if (++done == n) {
                    ioc_.stop();
                }
            });
        }
        ioc_.restart();
        ioc_.run();
        return results;
    }

    temp_dir dir_;
    test_ca ca_;
    std::filesystem::path ca_file_;
    asio::io_context ioc_;
    std::function<canned_response(const captured_request&)> handler_;
    std::unique_ptr<https_test_server> server_;
    subrelay::conf::oauth_config cfg_;
};

// Found by the token_response fuzz target: "expires_in": 3.59e101 was
// converted from double to an integer that cannot hold it (undefined), and a
// long life in digits overflowed the clock once the refresh time was computed.
TEST(read_token_answer, lives_are_clamped) {
    constexpr std::int64_t ten_years = 10LL * 365 * 24 * 3600;
    const auto huge = read_token_answer(R"({"access_token":"t","expires_in":3.59e101})");
    EXPECT_EQ(huge.problem, "");
    EXPECT_EQ(huge.expires_in, ten_years);
    EXPECT_EQ(read_token_answer(R"({"access_token":"t","expires_in":"999999999999"})").expires_in, ten_years);
    EXPECT_EQ(read_token_answer(R"({"access_token":"t","expires_in":9223372036854775807})").expires_in, ten_years);
    EXPECT_EQ(read_token_answer(R"({"access_token":"t","expires_in":-1e300})").expires_in, 0);
    EXPECT_EQ(read_token_answer(R"({"access_token":"t","expires_in":3599.5})").expires_in, 3599);
    EXPECT_EQ(read_token_answer(R"({"access_token":"t"})").expires_in, 600);
    EXPECT_EQ(read_token_answer(R"({"access_token":"t","token_type":"MAC"})").kind, oauth_failure::configuration);
    EXPECT_NE(read_token_answer("<html>").problem, "");
}

TEST_F(token_provider_test, sends_the_client_credentials_form) {
    serve_counting_tokens();
    auto provider = make();
    const auto before = std::chrono::steady_clock::now();
    const access_token t = run(ioc_, provider->get());
    EXPECT_EQ(t.value, "token-1");
    EXPECT_GT(t.expires_at, before + std::chrono::seconds(3500));
    EXPECT_EQ(provider->fetch_count(), 1U);

    ASSERT_EQ(server_->requests().size(), 1U);
    const auto& req = server_->requests()[0];
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.target, "/tenant-id/oauth2/v2.0/token");
    EXPECT_EQ(req.content_type, "application/x-www-form-urlencoded");
    EXPECT_EQ(req.form.size(), 4U);
    EXPECT_EQ(req.form.at("grant_type"), "client_credentials");
    EXPECT_EQ(req.form.at("client_id"), "00000000-app-id");
    EXPECT_EQ(req.form.at("client_secret"), secret);
    EXPECT_EQ(req.form.at("scope"), "https://outlook.office365.com/.default");
}

TEST_F(token_provider_test, cached_token_is_reused) {
    serve_counting_tokens();
    auto provider = make();
    const auto pair = run(ioc_, [&]() -> asio::awaitable<std::pair<std::string, std::string>> {
        auto a = co_await provider->get();
        auto b = co_await provider->get();
        co_return std::pair{a.value, b.value};
    }());
    EXPECT_EQ(pair.first, "token-1");
    EXPECT_EQ(pair.second, "token-1");
    EXPECT_EQ(provider->fetch_count(), 1U);
    EXPECT_EQ(server_->requests().size(), 1U);
}

TEST_F(token_provider_test, expires_in_as_string_is_accepted) {
    serve_counting_tokens("3599");
    auto provider = make();
    const auto before = std::chrono::steady_clock::now();
    const access_token t = run(ioc_, provider->get());
    EXPECT_EQ(t.value, "token-1");
    EXPECT_GT(t.expires_at, before + std::chrono::seconds(3500));
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-1");
    EXPECT_EQ(provider->fetch_count(), 1U);
}

TEST_F(token_provider_test, expired_lifetime_is_not_cached) {
    serve_counting_tokens(0);
    auto provider = make();
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-1");
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-2");
    EXPECT_EQ(provider->fetch_count(), 2U);
}

TEST_F(token_provider_test, concurrent_gets_share_one_fetch) {
    serve_counting_tokens();
    auto provider = make();
    const auto results = concurrent_gets(*provider, 25);
    ASSERT_EQ(results.size(), 25U);
    for (const auto& r : results) {
        EXPECT_EQ(r, "token-1");
    }
    EXPECT_EQ(provider->fetch_count(), 1U);
    EXPECT_EQ(server_->requests().size(), 1U);
    EXPECT_EQ(server_->connections(), 1U);
}

TEST_F(token_provider_test, invalidate_forces_a_new_fetch) {
    serve_counting_tokens();
    auto provider = make();
    const access_token first = run(ioc_, provider->get());
    EXPECT_EQ(first.value, "token-1");

    provider->invalidate("some-other-token");
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-1");
    EXPECT_EQ(provider->fetch_count(), 1U);

    provider->invalidate(first.value);
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-2");
    EXPECT_EQ(provider->fetch_count(), 2U);
    EXPECT_EQ(server_->requests().size(), 2U);

    // Invalidating the old token again leaves the new one alone.
    provider->invalidate(first.value);
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-2");
    EXPECT_EQ(provider->fetch_count(), 2U);
}

TEST_F(token_provider_test, error_response_names_the_aadsts_code_and_hides_the_secret) {
    handler_ = [](const captured_request& req) {
        // Even a server that echoes the secret does not get it into messages.
        return aad_error(401, "invalid_client",
                         "AADSTS7000215: Invalid client secret provided (" + req.form.at("client_secret") +
                             ").\r\nTrace ID: 11111111-2222\r\nCorrelation ID: 3333\r\nTimestamp: 2024-05-01 10:00:00Z");
    };
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        const std::string what = e.what();
        EXPECT_FALSE(e.transient()) << what;
        EXPECT_NE(what.find("AADSTS7000215"), std::string::npos) << what;
        EXPECT_NE(what.find("invalid_client"), std::string::npos) << what;
        EXPECT_NE(what.find("401"), std::string::npos) << what;
        EXPECT_NE(what.find("127.0.0.1"), std::string::npos) << what;
        EXPECT_EQ(what.find(secret), std::string::npos) << what;
        EXPECT_EQ(what.find("Trace ID"), std::string::npos) << what;
    }
    EXPECT_EQ(provider->fetch_count(), 1U);
}

TEST_F(token_provider_test, aadsts_code_from_error_codes_when_description_lacks_it) {
    handler_ = [](const captured_request&) { return aad_error(400, "unauthorized_client", "The client is not allowed."); };
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        const std::string what = e.what();
        EXPECT_FALSE(e.transient());
        EXPECT_NE(what.find("AADSTS7000215"), std::string::npos) << what;
        EXPECT_NE(what.find("unauthorized_client"), std::string::npos) << what;
        EXPECT_NE(what.find("The client is not allowed."), std::string::npos) << what;
    }
}

TEST_F(token_provider_test, concurrent_callers_share_one_error_then_the_endpoint_rests) {
    int calls = 0;
    handler_ = [&calls](const captured_request&) {
        ++calls;
        if (calls == 1) {
            return aad_error(503, "temporarily_unavailable", "AADSTS90033: A transient error has occurred.");
        }
        return ok("token-after-error");
    };
    auto provider = make_with_clock();
    const auto results = concurrent_gets(*provider, 10);
    ASSERT_EQ(results.size(), 10U);
    for (const auto& r : results) {
        EXPECT_EQ(r.rfind("error: ", 0), 0U) << r;
        EXPECT_NE(r.find("AADSTS90033"), std::string::npos) << r;
    }
    EXPECT_EQ(provider->fetch_count(), 1U);
    // Within the backoff (at least 1.5 s after the first failure) the error is
    // repeated without asking the endpoint again.
    clock_ += std::chrono::milliseconds(1400);
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);
    EXPECT_EQ(provider->fetch_count(), 1U);
    // After it (at most 2.5 s), the endpoint is asked again.
    clock_ += std::chrono::milliseconds(1200);
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-after-error");
    EXPECT_EQ(provider->fetch_count(), 2U);
    EXPECT_EQ(provider->status().last_error, "");
}

TEST_F(token_provider_test, backoff_doubles_between_failures) {
    handler_ = [](const captured_request&) { return aad_error(503, "temporarily_unavailable", "AADSTS50196: busy"); };
    auto provider = make_with_clock();
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);   // failure 1: wait 1.5-2.5 s
    clock_ += std::chrono::milliseconds(2600);
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);   // failure 2: wait 3-5 s
    EXPECT_EQ(provider->fetch_count(), 2U);
    clock_ += std::chrono::milliseconds(2900);
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);
    EXPECT_EQ(provider->fetch_count(), 2U) << "asked again before the doubled wait";
    clock_ += std::chrono::milliseconds(2200);
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);
    EXPECT_EQ(provider->fetch_count(), 3U);
    EXPECT_NE(provider->status().last_error.find("AADSTS50196"), std::string::npos) << provider->status().last_error;
}

TEST_F(token_provider_test, renewed_at_80_percent_of_the_lifetime) {
    serve_counting_tokens(1000);
    auto provider = make_with_clock();
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-1");
    clock_ += std::chrono::seconds(799);
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-1");
    EXPECT_EQ(provider->fetch_count(), 1U);
    clock_ += std::chrono::seconds(2);
    EXPECT_EQ(run(ioc_, provider->get()).value, "token-2");
    EXPECT_EQ(provider->fetch_count(), 2U);
}

TEST_F(token_provider_test, a_failed_renewal_keeps_the_valid_token) {
    int calls = 0;
    handler_ = [&calls](const captured_request&) {
        ++calls;
        if (calls == 1) return ok("first", 1000);
        return aad_error(503, "temporarily_unavailable", "AADSTS90033: A transient error has occurred.");
    };
    auto provider = make_with_clock();
    EXPECT_EQ(run(ioc_, provider->get()).value, "first");
    clock_ += std::chrono::seconds(900);  // past 80 %, before expiry
    EXPECT_EQ(run(ioc_, provider->get()).value, "first");
    EXPECT_EQ(provider->fetch_count(), 2U);
    EXPECT_NE(provider->status().last_error.find("AADSTS90033"), std::string::npos);
    clock_ += std::chrono::seconds(101);  // expired: the failure shows now
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);
}

TEST_F(token_provider_test, errors_carry_their_class_and_hint) {
    handler_ = [](const captured_request&) {
        return aad_error(401, "invalid_client",
                         "AADSTS7000222: The provided client secret keys for app 'x' are expired.");
    };
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        ADD_FAILURE() << "expected token_error";
    } catch (const token_error& e) {
        EXPECT_EQ(e.kind(), subrelay::auth::oauth_failure::configuration);
        EXPECT_NE(e.hint().find("expired"), std::string::npos) << e.hint();
        EXPECT_NE(std::string(e.what()).find("AADSTS7000222"), std::string::npos) << e.what();
    }
}

TEST_F(token_provider_test, server_errors_and_throttling_are_transient) {
    for (int status : {500, 502, 503, 429}) {
        handler_ = [status](const captured_request&) {
            canned_response r;
            r.status = status;
            r.content_type = "text/html";
            r.body = "<html>busy</html>";
            return r;
        };
        auto provider = make();
        try {
            (void)run(ioc_, provider->get());
            ADD_FAILURE() << "expected token_error for " << status;
        } catch (const token_error& e) {
            EXPECT_TRUE(e.transient()) << status;
            EXPECT_NE(std::string(e.what()).find(std::to_string(status)), std::string::npos) << e.what();
            EXPECT_EQ(std::string(e.what()).find("busy"), std::string::npos) << e.what();
        }
    }
}

TEST_F(token_provider_test, malformed_success_body_is_an_error) {
    handler_ = [](const captured_request&) {
        canned_response r;
        r.body = "{\"token_type\":\"Bearer\"}";
        return r;
    };
    auto provider = make();
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);

    handler_ = [](const captured_request&) {
        canned_response r;
        r.body = "not json";
        return r;
    };
    EXPECT_THROW((void)run(ioc_, provider->get()), token_error);
}

TEST_F(token_provider_test, non_bearer_token_type_is_permanent) {
    handler_ = [](const captured_request&) {
        canned_response r;
        r.body = R"({"token_type":"mac","expires_in":3599,"access_token":"x"})";
        return r;
    };
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        EXPECT_FALSE(e.transient());
    }
}

TEST_F(token_provider_test, a_server_that_never_answers_times_out) {
    handler_ = [](const captured_request&) {
        canned_response r;
        r.never_answer = true;
        return r;
    };
    cfg_.timeout_seconds = 1;
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        const std::string what = e.what();
        EXPECT_TRUE(e.transient());
        EXPECT_NE(what.find("timed out"), std::string::npos) << what;
        EXPECT_EQ(what.find(secret), std::string::npos) << what;
    }
    EXPECT_EQ(server_->requests().size(), 1U);
}

TEST_F(token_provider_test, unreachable_endpoint_is_transient) {
    cfg_.token_url = "https://127.0.0.1:1/tenant/oauth2/v2.0/token";
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        EXPECT_TRUE(e.transient());
        EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos);
    }
}

TEST_F(token_provider_test, a_non_https_token_url_is_a_permanent_error) {
    cfg_.token_url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/tenant/oauth2/v2.0/token";
    auto provider = make();
    try {
        (void)run(ioc_, provider->get());
        FAIL() << "expected token_error";
    } catch (const token_error& e) {
        EXPECT_FALSE(e.transient());
        EXPECT_NE(std::string(e.what()).find("oauth.token_url"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(server_->requests().empty());
}

}  // namespace
