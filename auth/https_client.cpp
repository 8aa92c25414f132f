#include "auth/https_client.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <memory>
#include <optional>
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
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

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
    https_session session(co_await asio::this_coro::executor, url, std::move(ca_file), timeout);
    https_session::request req;
    req.method = "POST";
    req.content_type = "application/x-www-form-urlencoded";
    req.body = form_encode(fields);
    http_response out = co_await session.send(std::move(req));
    co_await session.close();
    co_return out;
}

struct https_session::impl {
    impl(asio::any_io_executor e, const std::string& url, std::filesystem::path ca, std::chrono::seconds t)
        : ex(std::move(e)), to(parse_url(url)), ca_file(std::move(ca)), timeout(t) {}

    asio::any_io_executor ex;
    target_url to;
    std::filesystem::path ca_file;
    std::chrono::seconds timeout;
    std::optional<ssl::context> ctx;
    std::optional<ssl::stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;
    tls_facts facts;
    bool written = false;
    bool up = false;

    void make_context() {
        if (ctx) return;
        ssl::context c(ssl::context::tls_client);
        if (SSL_CTX_set_min_proto_version(c.native_handle(), TLS1_2_VERSION) != 1)
            throw std::runtime_error("HTTPS request to " + to.host + ":" + to.port + ": cannot require TLS 1.2");
        c.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
        boost::system::error_code ec;
        c.set_default_verify_paths(ec);  // missing system CAs are not fatal when ca_file is given
        if (!ca_file.empty()) {
            c.load_verify_file(ca_file.string(), ec);
            if (ec) {
                throw std::runtime_error("HTTPS request to " + to.host + ":" + to.port + ": cannot load CA file " +
                                         ca_file.string() + ": " + ec.message());
            }
        }
        c.set_verify_mode(ssl::verify_peer);
        ctx.emplace(std::move(c));
    }

    void drop() {
        if (stream) {
            beast::error_code ignored;
            beast::get_lowest_layer(*stream).socket().close(ignored);
        }
        up = false;
    }

    asio::awaitable<void> connect(std::chrono::steady_clock::time_point deadline) {
        if (up) co_return;
        make_context();
        stream.reset();
        buffer.clear();
        facts = {};
        // Resolve, bounded by the deadline: the watchdog cancels the lookup.
        auto resolver = std::make_shared<tcp::resolver>(ex);
        asio::steady_timer watchdog(ex);
        watchdog.expires_at(deadline);
        watchdog.async_wait([weak = std::weak_ptr<tcp::resolver>(resolver)](const boost::system::error_code& wec) {
            if (auto r = weak.lock(); r && !wec) r->cancel();
        });
        auto [rec, endpoints] = co_await resolver->async_resolve(to.host, to.port, tuple_awaitable);
        watchdog.cancel();
        if (rec) {
            if (rec == asio::error::operation_aborted && std::chrono::steady_clock::now() >= deadline)
                fail(to, "resolve", beast::error::timeout);
            fail(to, "resolve", rec);
        }
        stream.emplace(ex, *ctx);
        if (!to.host_is_address) {
            // SNI carries host names only, never addresses (RFC 6066 3).
            if (SSL_set_tlsext_host_name(stream->native_handle(), to.host.c_str()) != 1)
                throw std::runtime_error("HTTPS request to " + to.host + ":" + to.port + ": cannot set SNI");
        }
        stream->set_verify_callback(ssl::host_name_verification(to.host));
        beast::get_lowest_layer(*stream).expires_at(deadline);
        auto [cec, ep] = co_await beast::get_lowest_layer(*stream).async_connect(endpoints, tuple_awaitable);
        (void)ep;
        if (cec) fail(to, "connect", cec);
        beast::get_lowest_layer(*stream).expires_at(deadline);
        auto [hec] = co_await stream->async_handshake(ssl::stream_base::client, tuple_awaitable);
        SSL* native = stream->native_handle();
        facts.verify_result = X509_verify_cert_error_string(SSL_get_verify_result(native));
        if (hec) {
            std::string why = hec == beast::error::timeout ? std::string("timed out") : hec.message();
            if (SSL_get_verify_result(native) != X509_V_OK) why += " (" + facts.verify_result + ")";
            throw std::runtime_error("HTTPS request to " + to.host + ":" + to.port + ": TLS handshake: " + why);
        }
        facts.established = true;
        facts.version = SSL_get_version(native);
        if (const SSL_CIPHER* c = SSL_get_current_cipher(native)) facts.cipher = SSL_CIPHER_get_name(c);
        up = true;
    }

    asio::awaitable<http_response> send(request r) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        written = false;
        co_await connect(deadline);
        // The base URL's path, and the request's after it.
        std::string target = to.target;
        if (!r.path.empty()) {
            while (target.ends_with('/')) target.pop_back();
            target += r.path;
        }
        const http::verb verb = r.method == "POST"     ? http::verb::post
                                : r.method == "PATCH"  ? http::verb::patch
                                : r.method == "DELETE" ? http::verb::delete_
                                                       : http::verb::get;
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, to.host_header);
        req.set(http::field::user_agent, "subrelay");
        req.set(http::field::accept, "application/json");
        if (!r.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + r.bearer_token);
        if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
        req.body() = std::move(r.body);
        req.prepare_payload();

        beast::get_lowest_layer(*stream).expires_at(deadline);
        auto [wec, n] = co_await http::async_write(*stream, req, tuple_awaitable);
        (void)n;
        if (wec) {
            drop();
            fail(to, "send request", wec);
        }
        written = true;
        http::response_parser<http::string_body> parser;
        parser.body_limit(max_body);
        parser.header_limit(max_header);
        beast::get_lowest_layer(*stream).expires_at(deadline);
        auto [rdec, nread] = co_await http::async_read(*stream, buffer, parser, tuple_awaitable);
        (void)nread;
        if (rdec) {
            drop();
            fail(to, "read response", rdec);
        }
        auto& res = parser.get();
        http_response out;
        out.status = static_cast<int>(res.result_int());
        if (auto it = res.find(http::field::content_type); it != res.end()) out.content_type = std::string(it->value());
        if (auto it = res.find(http::field::retry_after); it != res.end()) out.retry_after = std::string(it->value());
        out.body = std::move(res.body());
        if (!res.keep_alive()) co_await close();
        co_return out;
    }

    asio::awaitable<void> close() {
        if (!up || !stream) {
            drop();
            co_return;
        }
        // Waiting for the server's close_notify is a courtesy, not worth more.
        beast::get_lowest_layer(*stream).expires_after(max_shutdown_wait);
        auto [sec] = co_await stream->async_shutdown(tuple_awaitable);
        (void)sec;
        drop();
    }
};

https_session::https_session(asio::any_io_executor ex, const std::string& base_url, std::filesystem::path ca_file,
                             std::chrono::seconds timeout)
    : impl_(std::make_unique<impl>(std::move(ex), base_url, std::move(ca_file), timeout)) {}

https_session::~https_session() = default;

asio::awaitable<void> https_session::connect() {
    co_await impl_->connect(std::chrono::steady_clock::now() + impl_->timeout);
}

asio::awaitable<http_response> https_session::send(request r) { return impl_->send(std::move(r)); }

bool https_session::request_written() const { return impl_->written; }
bool https_session::connected() const { return impl_->up; }
const https_session::tls_facts& https_session::tls() const { return impl_->facts; }
const void* https_session::peer_certificate() const {
    return impl_->stream && impl_->facts.established ? SSL_get0_peer_certificate(impl_->stream->native_handle())
                                                     : nullptr;
}
std::string https_session::where() const { return impl_->to.host + ":" + impl_->to.port; }
void https_session::cancel() { impl_->drop(); }
asio::awaitable<void> https_session::close() { return impl_->close(); }

}  // namespace subrelay::auth
