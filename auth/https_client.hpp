#pragma once
// A small HTTPS client (Boost.Beast over OpenSSL) for the token endpoint
// and Microsoft Graph: TLS >= 1.2, certificate and host-name verification,
// a deadline on each exchange. https_post_form makes one request on a
// connection of its own; an https_session keeps its connection for the next.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace subrelay::auth {

struct http_response {
    int status = 0;
    std::string content_type;
    std::string retry_after;   // the Retry-After header, "" when none
    std::string body;
};

using form_fields = std::vector<std::pair<std::string, std::string>>;

// application/x-www-form-urlencoded encoding of the fields.
std::string form_encode(const form_fields& fields);

// POSTs a form to an https:// URL. Throws std::runtime_error (with a
// message that never contains the form's values) on connection, TLS,
// timeout or protocol errors. ca_file: extra CA bundle; system CAs otherwise.
boost::asio::awaitable<http_response> https_post_form(std::string url, form_fields fields,
                                                      std::filesystem::path ca_file,
                                                      std::chrono::seconds timeout);

// One HTTPS connection to one origin, kept for request after request
// (HTTP/1.1 keep-alive); made at the first request and made again when the
// server closed it. Requests go one at a time. Errors throw
// std::runtime_error naming the host, the phase and why, never a header's
// or the body's content (they carry tokens and mail).
class https_session {
public:
    struct request {
        std::string method = "GET";   // "GET", "POST", "PATCH", "DELETE"
        std::string path;             // after the base URL's path: "/v1.0/users/x/sendMail"
        std::string bearer_token;     // sent as "Authorization: Bearer ..." when not empty
        std::string content_type;     // with a body
        std::string body;
    };
    struct tls_facts {
        bool established = false;     // the handshake completed
        std::string version;          // "TLSv1.3"
        std::string cipher;
        std::string verify_result;    // "ok", or why the certificate was not trusted
    };

    // base_url: "https://host[:port][/path]". ca_file: extra CA bundle
    // (system CAs otherwise). `timeout` bounds each request, connecting included.
    https_session(boost::asio::any_io_executor ex, const std::string& base_url, std::filesystem::path ca_file,
                  std::chrono::seconds timeout);
    ~https_session();
    https_session(const https_session&) = delete;
    https_session& operator=(const https_session&) = delete;

    // Resolves, connects and shakes hands, unless connected already.
    boost::asio::awaitable<void> connect();
    boost::asio::awaitable<http_response> send(request r);
    // Whether the last send() wrote its whole request (the server may have
    // acted on it even when no answer came).
    [[nodiscard]] bool request_written() const;
    // Whether a connection is up (the server may still have closed it).
    [[nodiscard]] bool connected() const;
    // Of the last handshake, and the server's certificate (an X509*, null
    // before a handshake; valid until the next connect()).
    [[nodiscard]] const tls_facts& tls() const;
    [[nodiscard]] const void* peer_certificate() const;
    // "host:port", for messages.
    [[nodiscard]] std::string where() const;
    // Closes at once: a pending request fails.
    void cancel();
    // A polite TLS close (at most a couple of seconds). Never throws.
    boost::asio::awaitable<void> close();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace subrelay::auth
