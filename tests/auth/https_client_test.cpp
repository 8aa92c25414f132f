#include "auth/https_client.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include <boost/asio/ip/tcp.hpp>

#include "test_tls.hpp"

namespace {

namespace asio = boost::asio;
using namespace subrelay::auth;
using namespace subrelay::auth::test;

TEST(form_encode, encodes_reserved_characters_and_spaces) {
    EXPECT_EQ(form_encode({}), "");
    EXPECT_EQ(form_encode({{"a", "b"}}), "a=b");
    EXPECT_EQ(form_encode({{"a b", "c&d=e"}, {"x", ""}}), "a+b=c%26d%3De&x=");
    EXPECT_EQ(form_encode({{"scope", "https://outlook.office365.com/.default"}}),
              "scope=https%3A%2F%2Foutlook.office365.com%2F.default");
    EXPECT_EQ(form_encode({{"k", "A-Z_a.z*0~9+%/?#"}}), "k=A-Z_a.z*0%7E9%2B%25%2F%3F%23");
    EXPECT_EQ(form_encode({{"k", "\xC3\xA9\n"}}), "k=%C3%A9%0A");
}

TEST(form_encode, round_trips_through_a_decoder) {
    const form_fields fields{{"grant_type", "client_credentials"}, {"client_secret", "a+b c&d=e%f~g"}};
    const auto decoded = form_decode(form_encode(fields));
    EXPECT_EQ(decoded.at("grant_type"), "client_credentials");
    EXPECT_EQ(decoded.at("client_secret"), "a+b c&d=e%f~g");
}

class https_client_test : public ::testing::Test {
protected:
    https_client_test() {
        ca_file_ = dir_.path() / "ca.pem";
        std::ofstream(ca_file_) << ca_.cert_pem();
    }

    temp_dir dir_;
    test_ca ca_;
    std::filesystem::path ca_file_;
    asio::io_context ioc_;
};

TEST_F(https_client_test, posts_a_form_and_returns_the_response) {
    https_test_server server(ioc_, server_context(ca_.issue("127.0.0.1", "IP:127.0.0.1")), [](const captured_request&) {
        canned_response r;
        r.status = 201;
        r.content_type = "text/plain";
        r.body = "hello";
        return r;
    });
    const auto res = run(ioc_, https_post_form(server.url("/t/path?x=1&y=2"), {{"a", "1 2"}, {"b", "&"}}, ca_file_,
                                               std::chrono::seconds(10)));
    EXPECT_EQ(res.status, 201);
    EXPECT_EQ(res.content_type, "text/plain");
    EXPECT_EQ(res.body, "hello");
    ASSERT_EQ(server.requests().size(), 1U);
    const auto& req = server.requests()[0];
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.target, "/t/path?x=1&y=2");
    EXPECT_EQ(req.content_type, "application/x-www-form-urlencoded");
    EXPECT_EQ(req.body, "a=1+2&b=%26");
}

TEST_F(https_client_test, untrusted_certificate_is_refused) {
    https_test_server server(ioc_, server_context(ca_.issue("127.0.0.1", "IP:127.0.0.1")),
                             [](const captured_request&) { return canned_response{}; });
    // No ca_file: only the system CAs, which do not include the test CA.
    try {
        run(ioc_, https_post_form(server.url("/"), {{"client_secret", "do-not-leak"}}, {}, std::chrono::seconds(10)));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("127.0.0.1:" + std::to_string(server.port())), std::string::npos) << what;
        EXPECT_NE(what.find("TLS handshake"), std::string::npos) << what;
        EXPECT_EQ(what.find("do-not-leak"), std::string::npos) << what;
    }
    EXPECT_TRUE(server.requests().empty());
}

TEST_F(https_client_test, host_name_mismatch_is_refused) {
    https_test_server server(ioc_, server_context(ca_.issue("other.example", "DNS:other.example")),
                             [](const captured_request&) { return canned_response{}; });
    try {
        run(ioc_, https_post_form(server.url("/"), {{"client_secret", "do-not-leak"}}, ca_file_,
                                  std::chrono::seconds(10)));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("TLS handshake"), std::string::npos) << what;
        EXPECT_EQ(what.find("do-not-leak"), std::string::npos) << what;
    }
    EXPECT_TRUE(server.requests().empty());
}

TEST_F(https_client_test, only_https_urls) {
    EXPECT_THROW(run(ioc_, https_post_form("http://127.0.0.1:1/", {}, {}, std::chrono::seconds(1))),
                 std::runtime_error);
    EXPECT_THROW(run(ioc_, https_post_form("not a url", {}, {}, std::chrono::seconds(1))), std::runtime_error);
}

TEST_F(https_client_test, connection_refused_names_host_and_port) {
    std::uint16_t port = 0;
    {
        asio::ip::tcp::acceptor probe(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
        port = probe.local_endpoint().port();
    }
    try {
        run(ioc_, https_post_form("https://127.0.0.1:" + std::to_string(port) + "/token", {{"k", "v"}}, ca_file_,
                                  std::chrono::seconds(5)));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
        EXPECT_NE(what.find("connect"), std::string::npos) << what;
    }
}

TEST_F(https_client_test, a_server_that_never_answers_times_out) {
    https_test_server server(ioc_, server_context(ca_.issue("127.0.0.1", "IP:127.0.0.1")), [](const captured_request&) {
        canned_response r;
        r.never_answer = true;
        return r;
    });
    try {
        run(ioc_, https_post_form(server.url("/"), {{"k", "v"}}, ca_file_, std::chrono::seconds(1)));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("timed out"), std::string::npos) << what;
    }
    EXPECT_EQ(server.requests().size(), 1U);
}

}  // namespace
