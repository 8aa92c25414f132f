#pragma once
// A small HTTPS client (Boost.Beast over OpenSSL) for the token endpoint:
// TLS >= 1.2, certificate and host-name verification, one request per
// connection, a deadline on the whole exchange.
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace subrelay::auth {

struct http_response {
    int status = 0;
    std::string content_type;
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

}  // namespace subrelay::auth
