#pragma once
// The admin listener ([admin] listen, loopback by default): a small
// HTTP/1.1 server on Boost.Beast for Prometheus, for health checks and, when
// [admin] users_file is set, the web console (relay/console).
//
//   GET /metrics   the metrics in the Prometheus text format (0.0.4)
//   GET /healthz   200 "ok": the process answers
//   GET /readyz    200 when the spool is writable, the policy is loaded and
//                  every OAuth token source gives a token; else 503 with a
//                  JSON body naming what is not ready (never a secret)
//
//   anything else  the console's (GET and POST), or 404 without a console
//
// With the console on an address that is not loopback, every connection is
// HTTPS, with the SMTP listeners' certificate ([tls], reloaded on SIGHUP).
//
// These three take GET only (else 405). Requests are small (header at most
// max_header bytes; a body only for the console, at most its max_body),
// each connection reads and writes within request_timeout, and serves at
// most max_requests requests.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>

#include "conf/config.hpp"
#include "relay/console/http.hpp"

namespace subrelay::relay {

struct relay_context;

struct admin_reply {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

enum class admin_endpoint { metrics, healthz, readyz, console, not_found, method_not_allowed };
// Which endpoint a request is for (the query string is ignored); `console`
// only when there is one.
admin_endpoint route(boost::beast::http::verb method, std::string_view target, bool console = false);

// /readyz's answer from what was found: 200 {"ready": true, ...} or 503
// {"ready": false, "not_ready": ["spool", "policy", "token:PROFILE"...], ...}.
// `tokens` as upstream_credentials::check_tokens() gives them.
// How the limits are kept with [cluster]: shared in Redis, or this node's
// share while Redis is unreachable (a degraded state, still ready).
struct cluster_readiness {
    bool shared = false;
    std::string redis;     // where Redis is (host and port, or socket): never the password
    unsigned nodes = 1;
};
admin_reply readiness_reply(bool spool_writable, bool policy_loaded, const boost::json::array& tokens,
                            const std::optional<cluster_readiness>& cluster = std::nullopt);

class admin_server {
public:
    struct handlers {
        std::function<boost::asio::awaitable<std::string>()> metrics;     // the exposition text
        std::function<boost::asio::awaitable<admin_reply>()> readiness;  // /readyz
        // The web console; empty: none.
        std::function<boost::asio::awaitable<console::response>(console::request)> console;
        // The TLS context each connection gets (HTTPS); empty: plain HTTP.
        std::function<std::shared_ptr<boost::asio::ssl::context>()> tls;
    };

    // Binds `at` (port 0: any free port). Throws std::runtime_error.
    admin_server(boost::asio::io_context& io, const conf::listen_address& at, handlers h);
    ~admin_server();
    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;
    void start();  // accepts on the io_context given to the constructor
    void stop();   // stops accepting; call on that io_context

    static constexpr std::size_t max_header = 8 * 1024;
    static constexpr std::chrono::seconds request_timeout{10};
    static constexpr unsigned max_requests = 100;

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
    boost::asio::awaitable<admin_reply> answer(boost::beast::http::verb method, std::string_view target);
    template <class Stream>
    boost::asio::awaitable<void> serve_one(Stream& stream, boost::beast::flat_buffer& buffer, unsigned n, bool& again);

    boost::asio::io_context& io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    handlers handlers_;
};

// Whether the admin listener at `at` must speak TLS: the console is served
// and the address is not a loopback one (127.0.0.0/8, ::1).
bool admin_needs_tls(const conf::listen_address& at, bool console);

// The relay's handlers: the metrics with the queue, the upstream
// connections and the token counts read from the delivery (on its own
// thread, as `subrelay queue list` reads them) and the spool's free space;
// readiness from the spool, the policy and the delivery's token sources.
admin_server::handlers relay_admin_handlers(relay_context& ctx);

}  // namespace subrelay::relay
