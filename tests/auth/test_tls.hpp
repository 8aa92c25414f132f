#pragma once
// Test-only TLS helpers: a throwaway CA and server certificates made with
// the OpenSSL API at test time, and a tiny in-process HTTPS server.
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

namespace subrelay::auth::test {

// A directory removed (with its contents) on destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

struct pem_pair {
    std::string cert;
    std::string key;
};

// A self-signed CA that issues server certificates.
class test_ca {
public:
    test_ca();
    ~test_ca();
    test_ca(const test_ca&) = delete;
    test_ca& operator=(const test_ca&) = delete;

    [[nodiscard]] std::string cert_pem() const;
    // A server certificate; san like "IP:127.0.0.1,DNS:localhost".
    [[nodiscard]] pem_pair issue(const std::string& common_name, const std::string& san) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A server TLS context with the given certificate and key.
std::shared_ptr<boost::asio::ssl::context> server_context(const pem_pair& pair);

// What the server saw.
struct captured_request {
    std::string method;
    std::string target;
    std::string content_type;
    std::string body;
    std::map<std::string, std::string> form;  // decoded form fields
};

struct canned_response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    bool never_answer = false;  // read the request, then stall
};

using request_handler = std::function<canned_response(const captured_request&)>;

// Accepts TLS connections on 127.0.0.1:<any free port>, one request each.
class https_test_server {
public:
    https_test_server(boost::asio::io_context& ioc, std::shared_ptr<boost::asio::ssl::context> ctx,
                      request_handler handler);
    ~https_test_server();
    https_test_server(const https_test_server&) = delete;
    https_test_server& operator=(const https_test_server&) = delete;

    [[nodiscard]] std::uint16_t port() const;
    [[nodiscard]] const std::vector<captured_request>& requests() const;
    [[nodiscard]] std::size_t connections() const;
    [[nodiscard]] std::string url(const std::string& path) const;  // https://127.0.0.1:<port><path>

private:
    struct state;
    std::shared_ptr<state> state_;
};

// Decodes application/x-www-form-urlencoded text.
std::map<std::string, std::string> form_decode(const std::string& body);

// Runs `aw` on `ioc` until it completes (other work, e.g. the server, is
// abandoned when it does) and returns its result or rethrows its exception.
template <typename T>
T run(boost::asio::io_context& ioc, boost::asio::awaitable<T> aw) {
    std::exception_ptr error;
    std::optional<T> result;
    boost::asio::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) {
            result.emplace(std::move(value));
        }
        ioc.stop();
    });
    ioc.restart();
    ioc.run();
    if (error) {
        std::rethrow_exception(error);
    }
    return std::move(*result);
}

inline void run(boost::asio::io_context& ioc, boost::asio::awaitable<void> aw) {
    std::exception_ptr error;
    boost::asio::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e) {
        error = e;
        ioc.stop();
    });
    ioc.restart();
    ioc.run();
    if (error) {
        std::rethrow_exception(error);
    }
}

}  // namespace subrelay::auth::test
