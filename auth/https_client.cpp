#include "auth/https_client.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <boost/url.hpp>

namespace subrelay::auth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A token response is a few KiB; anything larger is not one.
constexpr std::uint64_t max_body = 1024 * 1024;
constexpr std::uint32_t max_header = 64 * 1024;
// Waiting for the server's close_notify is a courtesy, not worth the deadline.
constexpr std::chrono::seconds max_shutdown_wait{2};

bool form_unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '*';
}

void append_form_component(std::string& out, std::string_view in) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : in) {
        const auto c = static_cast<unsigned char>(ch);
        if (form_unreserved(c)) {
            out.push_back(ch);
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0f]);
        }
    }
}

struct target_url {
    std::string host;           // for DNS, SNI and certificate checks (no brackets)
    std::string port;
    std::string host_header;    // as in the URL, with brackets for IPv6
    std::string target;         // path and query
    bool host_is_address = false;
};

target_url parse_url(const std::string& url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        throw std::runtime_error("HTTPS request: invalid URL");
    }
    const auto& u = *parsed;
    if (u.scheme_id() != boost::urls::scheme::https) {
        throw std::runtime_error("HTTPS request: only https:// URLs are supported (got scheme '" +
                                 std::string(u.scheme()) + "')");
    }
    if (u.has_userinfo()) {
        throw std::runtime_error("HTTPS request: credentials in the URL are not supported");
    }
    target_url t;
    t.host = u.host_address();
    if (t.host.empty()) {
        throw std::runtime_error("HTTPS request: URL without a host");
    }
    const auto ht = u.host_type();
    t.host_is_address = ht == boost::urls::host_type::ipv4 || ht == boost::urls::host_type::ipv6;
    if (u.has_port()) {
        if (u.port().empty() || u.port_number() == 0) {
            throw std::runtime_error("HTTPS request: invalid port in URL for host " + t.host);
        }
        t.port = std::to_string(u.port_number());
    } else {
        t.port = "443";
    }
    t.host_header = std::string(u.encoded_host_and_port());
    t.target = std::string(u.encoded_target());
    if (t.target.empty()) {
        t.target = "/";
    } else if (t.target.front() != '/') {
        t.target.insert(t.target.begin(), '/');
    }
    return t;
}

[[noreturn]] void fail(const target_url& t, std::string_view phase, const boost::system::error_code& ec) {
    std::string reason = ec == beast::error::timeout ? std::string("timed out") : ec.message();
    throw std::runtime_error("HTTPS request to " + t.host + ":" + t.port + ": " + std::string(phase) + ": " + reason);
}

}  // namespace

std::string form_encode(const form_fields& fields) {
    std::string out;
    for (const auto& [name, value] : fields) {
        if (!out.empty()) {
            out.push_back('&');
        }
        append_form_component(out, name);
        out.push_back('=');
        append_form_component(out, value);
    }
    return out;
}

asio::awaitable<http_response> https_post_form(std::string url, form_fields fields, std::filesystem::path ca_file,
                                               std::chrono::seconds timeout) {
    const target_url t = parse_url(url);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto ex = co_await asio::this_coro::executor;
    constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

    ssl::context ctx(ssl::context::tls_client);
    if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
        throw std::runtime_error("HTTPS request to " + t.host + ":" + t.port + ": cannot require TLS 1.2");
    }
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    boost::system::error_code ec;
    ctx.set_default_verify_paths(ec);  // missing system CAs are not fatal when ca_file is given
    if (!ca_file.empty()) {
        ctx.load_verify_file(ca_file.string(), ec);
        if (ec) {
            throw std::runtime_error("HTTPS request to " + t.host + ":" + t.port + ": cannot load CA file " +
                                     ca_file.string() + ": " + ec.message());
        }
    }
    ctx.set_verify_mode(ssl::verify_peer);

    // Resolve, bounded by the deadline: the watchdog cancels the lookup.
    auto resolver = std::make_shared<tcp::resolver>(ex);
    asio::steady_timer watchdog(ex);
    watchdog.expires_at(deadline);
    watchdog.async_wait([weak = std::weak_ptr<tcp::resolver>(resolver)](const boost::system::error_code& wec) {
        if (auto r = weak.lock(); r && !wec) {
            r->cancel();
        }
    });
    auto [rec, endpoints] = co_await resolver->async_resolve(t.host, t.port, tuple_awaitable);
    watchdog.cancel();
    if (rec) {
        if (rec == asio::error::operation_aborted && std::chrono::steady_clock::now() >= deadline) {
            fail(t, "resolve", beast::error::timeout);
        }
        fail(t, "resolve", rec);
    }

    ssl::stream<beast::tcp_stream> stream(ex, ctx);
    if (!t.host_is_address) {
        // SNI carries host names only, never addresses (RFC 6066 3).
        if (SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str()) != 1) {
            throw std::runtime_error("HTTPS request to " + t.host + ":" + t.port + ": cannot set SNI");
        }
    }
    stream.set_verify_callback(ssl::host_name_verification(t.host));

    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(endpoints, tuple_awaitable);
    if (cec) {
        fail(t, "connect", cec);
    }

    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, tuple_awaitable);
    if (hec) {
        fail(t, "TLS handshake", hec);
    }

    http::request<http::string_body> req{http::verb::post, t.target, 11};
    req.set(http::field::host, t.host_header);
    req.set(http::field::user_agent, "subrelay");
    req.set(http::field::accept, "application/json");
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.set(http::field::connection, "close");
    req.body() = form_encode(fields);
    req.prepare_payload();

    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [wec, written] = co_await http::async_write(stream, req, tuple_awaitable);
    (void)written;
    if (wec) {
        fail(t, "send request", wec);
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body);
    parser.header_limit(max_header);
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [rdec, nread] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
    (void)nread;
    if (rdec) {
        fail(t, "read response", rdec);
    }

    http_response out;
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    if (auto it = res.find(http::field::content_type); it != res.end()) {
        out.content_type = std::string(it->value());
    }
    out.body = std::move(res.body());

    // Polite TLS close; the response is complete, so errors here do not matter.
    const auto shutdown_by = std::min(deadline, std::chrono::steady_clock::now() + max_shutdown_wait);
    beast::get_lowest_layer(stream).expires_at(shutdown_by);
    auto [sec] = co_await stream.async_shutdown(tuple_awaitable);
    (void)sec;
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().close(ignored);
    co_return out;
}

}  // namespace subrelay::auth
