#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "relay/server/admin.hpp"

namespace subrelay::relay {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(admin_route, paths_and_methods) {
    EXPECT_EQ(route(http::verb::get, "/metrics"), admin_endpoint::metrics);
    EXPECT_EQ(route(http::verb::get, "/metrics?x=1"), admin_endpoint::metrics);
    EXPECT_EQ(route(http::verb::get, "/healthz"), admin_endpoint::healthz);
    EXPECT_EQ(route(http::verb::get, "/readyz"), admin_endpoint::readyz);
    EXPECT_EQ(route(http::verb::get, "/"), admin_endpoint::not_found);
    EXPECT_EQ(route(http::verb::get, "/metrics/"), admin_endpoint::not_found);
    EXPECT_EQ(route(http::verb::post, "/metrics"), admin_endpoint::method_not_allowed);
    EXPECT_EQ(route(http::verb::head, "/healthz"), admin_endpoint::method_not_allowed);
    EXPECT_EQ(route(http::verb::delete_, "/nothing"), admin_endpoint::not_found);
}

TEST(admin_readiness, ready_when_everything_is) {
    const boost::json::array tokens{boost::json::object{{"profile", "default"}, {"mailbox", ""}, {"ready", true}, {"error", ""}}};
    const admin_reply r = readiness_reply(true, true, tokens);
    EXPECT_EQ(r.status, 200U);
    EXPECT_EQ(r.content_type, "application/json");
    const auto body = boost::json::parse(r.body).as_object();
    EXPECT_TRUE(body.at("ready").as_bool());
    EXPECT_TRUE(body.at("not_ready").as_array().empty());
}

TEST(admin_readiness, names_what_is_not_ready) {
    const boost::json::array tokens{
        boost::json::object{{"profile", "default"}, {"mailbox", ""}, {"ready", false}, {"error", "configuration"}},
        boost::json::object{{"profile", "gmail"}, {"mailbox", "a@example.org"}, {"ready", true}, {"error", ""}}};
    const admin_reply r = readiness_reply(false, false, tokens);
    EXPECT_EQ(r.status, 503U);
    const auto body = boost::json::parse(r.body).as_object();
    EXPECT_FALSE(body.at("ready").as_bool());
    EXPECT_EQ(boost::json::serialize(body.at("not_ready")), R"(["spool","policy","token:default"])");
    EXPECT_EQ(body.at("tokens").as_array().at(0).at("error").as_string(), "configuration");
}

// A real listener on a free loopback port, its loop on a thread of its own.
class admin_server_test : public ::testing::Test {
protected:
    void SetUp() override {
        admin_server::handlers h;
        h.metrics = []() -> asio::awaitable<std::string> {
            std::string text = "# TYPE x counter\nx 1\n";
            co_return text;
        };
        h.readiness = []() -> asio::awaitable<admin_reply> {
            admin_reply r = readiness_reply(true, true, boost::json::array{});
            co_return r;
        };
        server_ = std::make_unique<admin_server>(io_, conf::listen_address{"127.0.0.1", 0}, std::move(h));
        server_->start();
        thread_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        asio::post(io_, [this] { server_->stop(); });
        io_.stop();
        thread_.join();
    }

    // Sends `request` on a new connection and reads until the server closes.
    std::string exchange(const std::string& request) {
        asio::io_context client;
        asio::ip::tcp::socket s(client);
        s.connect(server_->local_endpoint());
        asio::write(s, asio::buffer(request));
        std::string out;
        boost::system::error_code ec;
        asio::read(s, asio::dynamic_buffer(out), ec);
        return out;
    }

    asio::io_context io_;
    std::unique_ptr<admin_server> server_;
    std::thread thread_;
};

TEST_F(admin_server_test, answers_the_endpoints) {
    const std::string close = "Host: x\r\nConnection: close\r\n\r\n";
    const std::string metrics = exchange("GET /metrics HTTP/1.1\r\n" + close);
    EXPECT_THAT(metrics, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(metrics, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    EXPECT_THAT(metrics, HasSubstr("\r\n\r\n# TYPE x counter\nx 1\n"));
    const std::string health = exchange("GET /healthz HTTP/1.1\r\n" + close);
    EXPECT_THAT(health, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(health, HasSubstr("\r\n\r\nok\n"));
    EXPECT_THAT(exchange("GET /readyz HTTP/1.1\r\n" + close), HasSubstr("\"ready\":true"));
    EXPECT_THAT(exchange("GET /nope HTTP/1.1\r\n" + close), StartsWith("HTTP/1.1 404 Not Found\r\n"));
    const std::string post = exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n" + close);
    EXPECT_THAT(post, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
    EXPECT_THAT(post, HasSubstr("Allow: GET\r\n"));
}

TEST_F(admin_server_test, keeps_the_connection_for_several_requests) {
    const std::string two = exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(two.find("HTTP/1.1 200 OK"), 0U);
    EXPECT_NE(two.find("HTTP/1.1 200 OK", 10), std::string::npos);
}

TEST_F(admin_server_test, closes_on_a_header_over_the_limit) {
    const std::string big = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(admin_server::max_header, 'a') +
                            "\r\n\r\n";
    EXPECT_EQ(exchange(big), "");
}

}  // namespace
}  // namespace subrelay::relay
