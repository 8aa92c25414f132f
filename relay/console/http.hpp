#pragma once
// What the console sees of an HTTP exchange, as plain values: the admin
// listener (relay/server/admin.cpp) turns Beast's messages into a request
// and a response back into Beast's, so every page is a function that tests
// call without a socket. And the small codecs the pages need: form and
// query decoding, cookies, HTML escaping.
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subrelay::console {

struct request {
    std::string method;        // "GET", "POST", ...
    std::string target;        // path and query, as sent
    std::string cookie;        // the Cookie header ("" if none)
    std::string content_type;  // of the body
    std::string body;
    std::string client_ip;
    bool tls = false;          // the listener speaks TLS: cookies get Secure
};

struct response {
    unsigned status = 200;
    std::string content_type = "text/html; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // besides the security headers every page gets
};

// Form fields (application/x-www-form-urlencoded) or a query string: the
// last value of a repeated name wins in `fields`, all of them in `all`.
struct form {
    std::map<std::string, std::string> fields;
    std::vector<std::pair<std::string, std::string>> all;
    [[nodiscard]] std::string get(const std::string& name) const;
    [[nodiscard]] bool has(const std::string& name) const { return fields.count(name) != 0; }
    [[nodiscard]] std::vector<std::string> every(const std::string& name) const;
};
form parse_form(std::string_view encoded);

// %XX and '+' decoded; a malformed escape is kept as written.
std::string url_decode(std::string_view s);
// Everything but unreserved characters escaped (a path segment or a query value).
std::string url_encode(std::string_view s);

// The path of a target, decoded segment by segment: "/users/a%40b" -> {"users", "a@b"}.
std::vector<std::string> path_segments(std::string_view target);
// The query of a target ("" when none), undecoded.
std::string_view query_of(std::string_view target);

// The value of cookie `name` in a Cookie header, or "".
std::string cookie_value(std::string_view header, std::string_view name);

// &, <, >, " and ' as entities.
std::string html_escape(std::string_view s);

// Constant-time comparison of two secrets (session and CSRF tokens).
bool same_secret(std::string_view a, std::string_view b);

// A random token: `bytes` random bytes as lower-case hex. Throws std::runtime_error.
std::string random_token(std::size_t bytes = 32);

}  // namespace subrelay::console
