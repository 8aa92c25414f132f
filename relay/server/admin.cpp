#include "relay/server/admin.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "relay/cluster/shared_limits.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/console/console.hpp"
#include "relay/metrics/relay_metrics.hpp"
#include "relay/server/context.hpp"
#include "relay/spool/spool.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

admin_endpoint route(http::verb method, std::string_view target, bool console) {
    const std::string_view path = target.substr(0, target.find('?'));
    admin_endpoint e = admin_endpoint::not_found;
    if (path == "/metrics") e = admin_endpoint::metrics;
    else if (path == "/healthz") e = admin_endpoint::healthz;
    else if (path == "/readyz") e = admin_endpoint::readyz;
    else if (console) return admin_endpoint::console;
    if (e != admin_endpoint::not_found && method != http::verb::get) return admin_endpoint::method_not_allowed;
    return e;
}

bool admin_needs_tls(const conf::listen_address& at, bool console) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(at.host, ec);
    return console && (ec || !ip.is_loopback());
}

admin_reply readiness_reply(bool spool_writable, bool policy_loaded, const json::array& tokens,
                            const std::optional<cluster_readiness>& cluster) {
    json::array not_ready;
    if (!spool_writable) not_ready.emplace_back("spool");
    if (!policy_loaded) not_ready.emplace_back("policy");
    json::array token_report;
    for (const auto& v : tokens) {
        if (!v.is_object()) continue;
        const auto& t = v.get_object();
        auto text = [&t](const char* key) {
            const auto* p = t.if_contains(key);
            return p != nullptr && p->is_string() ? std::string(p->get_string()) : std::string();
        };
        const auto* ready = t.if_contains("ready");
        const bool ok = ready != nullptr && ready->is_bool() && ready->get_bool();
        std::string name = "token:" + text("profile");
        if (!text("mailbox").empty()) name += ":" + text("mailbox");
        // Only what identifies the source and the class of its failure: no token, no endpoint's message.
        token_report.emplace_back(json::object{{"profile", text("profile")}, {"mailbox", text("mailbox")},
                                               {"ready", ok}, {"error", text("error")}});
        if (!ok) not_ready.emplace_back(name);
    }
    const bool all = not_ready.empty();
    json::object body{{"ready", all},
                      {"spool", spool_writable},
                      {"policy", policy_loaded},
                      {"tokens", std::move(token_report)},
                      {"not_ready", std::move(not_ready)}};
    if (cluster) {
        // Ready either way: a node that keeps its share of each limit still
        // serves; the body says which, for the admin and the dashboards.
        body["cluster"] = json::object{
            {"redis", cluster->redis},
            {"limits", cluster->shared ? "shared" : "fallback"},
            {"nodes", cluster->nodes},
        };
    }
    return {all ? 200U : 503U, "application/json", json::serialize(body) + "\n"};
}

admin_server::admin_server(asio::io_context& io, const conf::listen_address& at, handlers h)
    : io_(io), acceptor_(io), handlers_(std::move(h)) {
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(at.host, ec);
    if (ec) throw std::runtime_error("admin.listen " + at.to_string() + ": not an IP address");
    const tcp::endpoint ep(ip, at.port);
    if (acceptor_.open(ep.protocol(), ec); !ec) {
        acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        acceptor_.bind(ep, ec);
    }
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("admin.listen " + at.to_string() + ": " + ec.message());
}

admin_server::~admin_server() {
    boost::system::error_code ec;
    acceptor_.close(ec);
}

tcp::endpoint admin_server::local_endpoint() const { return acceptor_.local_endpoint(); }

void admin_server::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void admin_server::stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
}

asio::awaitable<void> admin_server::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(with_error);
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            spdlog::warn("admin listener: accept: {}", ec.message());
            continue;
        }
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

// (Replies are filled member by member: GCC 12 destroys the strings of a
// braced admin_reply in a co_return too early.)
asio::awaitable<admin_reply> admin_server::answer(http::verb method, std::string_view target) {
    admin_reply r;
    switch (route(method, target)) {
    case admin_endpoint::metrics:
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = co_await handlers_.metrics();
        break;
    case admin_endpoint::healthz:
        r.body = "ok\n";
        break;
    case admin_endpoint::readyz:
        r = co_await handlers_.readiness();
        break;
    case admin_endpoint::console:  // (served by serve_one)
    case admin_endpoint::method_not_allowed:
        r.status = 405;
        r.body = "method not allowed\n";
        break;
    case admin_endpoint::not_found:
        r.status = 404;
        r.body = "not found\n";
        break;
    }
    co_return r;
}

// One client: requests and answers until it closes, stays silent for
// request_timeout, sends something too large, or has had max_requests.
asio::awaitable<void> admin_server::serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(max_header);
    try {
        bool again = true;
        if (handlers_.tls) {
            const auto context = handlers_.tls();
            beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), *context);
            beast::get_lowest_layer(tls).expires_after(request_timeout);
            auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::server, with_error);
            if (!hec) {
                for (unsigned n = 0; again && n < max_requests; ++n) co_await serve_one(tls, buffer, n, again);
                beast::get_lowest_layer(tls).expires_after(request_timeout);
                auto [sec] = co_await tls.async_shutdown(with_error);
                (void)sec;
            }
            boost::system::error_code ec;
            beast::get_lowest_layer(tls).socket().close(ec);
            co_return;
        }
        for (unsigned n = 0; again && n < max_requests; ++n) co_await serve_one(stream, buffer, n, again);
    } catch (const std::exception& e) {
        spdlog::warn("admin listener: {}", e.what());
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
}

template <class Stream>
asio::awaitable<void> admin_server::serve_one(Stream& stream, beast::flat_buffer& buffer, unsigned n, bool& again) {
    again = false;
    const bool console = static_cast<bool>(handlers_.console);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(max_header));
    parser.body_limit(console ? console::web_console::max_body : 1024);
    beast::get_lowest_layer(stream).expires_after(request_timeout);
    auto [ec, read] = co_await http::async_read(stream, buffer, parser, with_error);
    (void)read;
    if (ec) co_return;  // closed, timed out, or too large
    const auto& req = parser.get();
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "subrelay");
    if (route(req.method(), req.target(), console) == admin_endpoint::console) {
        console::request cr;
        cr.method = std::string(req.method_string());
        cr.target = std::string(req.target());
        cr.cookie = std::string(req[http::field::cookie]);
        cr.content_type = std::string(req[http::field::content_type]);
        cr.body = req.body();
        boost::system::error_code pec;
        const auto peer = beast::get_lowest_layer(stream).socket().remote_endpoint(pec);
        cr.tls = static_cast<bool>(handlers_.tls);
        cr.client_ip = pec ? std::string() : peer.address().to_string();
        console::response a = co_await handlers_.console(std::move(cr));
        res.result(static_cast<http::status>(a.status));
        res.set(http::field::content_type, a.content_type);
        for (const auto& [name, value] : a.headers) res.insert(name, value);
        res.body() = std::move(a.body);
    } else {
        admin_reply a = co_await answer(req.method(), req.target());
        res.result(static_cast<http::status>(a.status));
        res.set(http::field::content_type, a.content_type);
        res.set(http::field::cache_control, "no-store");
        if (a.status == 405) res.set(http::field::allow, "GET");
        res.body() = std::move(a.body);
    }
    res.keep_alive(req.keep_alive() && n + 1 < max_requests);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(request_timeout);
    auto [wec, written] = co_await http::async_write(stream, res, with_error);
    (void)written;
    again = !wec && res.keep_alive();
}

namespace {

std::string text_in(const json::object& o, const char* key) {
    const auto* p = o.if_contains(key);
    return p != nullptr && p->is_string() ? std::string(p->get_string()) : std::string();
}

std::int64_t number_in(const json::object& o, const char* key) {
    const auto* p = o.if_contains(key);
    if (p == nullptr) return 0;
    if (p->is_int64()) return p->get_int64();
    if (p->is_uint64()) return static_cast<std::int64_t>(p->get_uint64());
    return 0;
}

// "sign-in needed" -> "sign_in_needed": label values that read like the others.
std::string label_word(std::string s) {
    std::replace_if(s.begin(), s.end(), [](char c) { return c == ' ' || c == '-'; }, '_');
    return s;
}

// The gauges and totals kept by the delivery, read on its thread.
asio::awaitable<void> collect(relay_context& ctx) {
    auto& m = metrics::relay();
    // (Requests built before co_await: GCC 12 miscompiles brace-initialised
    // temporaries of string literals inside a co_await expression.)
    json::object status_request;
    status_request["verb"] = "status";
    json::object oauth_request;
    oauth_request["verb"] = "oauth-status";
    const json::object status = co_await asio::co_spawn(
        ctx.delivery.executor(), ctx.delivery.control(std::move(status_request)), use_awaitable);
    const json::object oauth = co_await asio::co_spawn(
        ctx.delivery.executor(), ctx.delivery.control(std::move(oauth_request)), use_awaitable);

    const std::int64_t now = number_in(status, "now");
    std::map<metrics::label_values, double> queued;
    std::map<metrics::label_values, double> oldest;
    if (const auto* msgs = status.if_contains("messages"); msgs != nullptr && msgs->is_object()) {
        for (const auto& [id, v] : msgs->get_object()) {
            if (!v.is_object()) continue;
            const metrics::label_values mailbox{text_in(v.get_object(), "upstream_mailbox")};
            queued[mailbox] += 1;
            const double age = static_cast<double>(std::max<std::int64_t>(0, now - number_in(v.get_object(), "received_at")));
            oldest[mailbox] = std::max(oldest[mailbox], age);
        }
    }
    std::map<metrics::label_values, double> connections;
    if (const auto* lanes = status.if_contains("lanes"); lanes != nullptr && lanes->is_array()) {
        for (const auto& v : lanes->get_array()) {
            if (!v.is_object()) continue;
            const metrics::label_values mailbox{text_in(v.get_object(), "upstream_mailbox")};
            connections[mailbox] = static_cast<double>(number_in(v.get_object(), "connections"));
            queued.try_emplace(mailbox, 0);  // a lane seen: its queue is shown, empty or not
            oldest.try_emplace(mailbox, 0);
        }
    }
    m.queue_messages.replace(std::move(queued));
    m.queue_oldest_age.replace(std::move(oldest));
    m.upstream_connections.replace(std::move(connections));

    // Token requests and failures per profile (a per-mailbox profile summed over its mailboxes).
    std::map<std::string, double> requests;
    std::map<metrics::label_values, double> failures;
    const auto* st = oauth.if_contains("status");
    const auto* sources = st != nullptr && st->is_object() ? st->get_object().if_contains("sources") : nullptr;
    if (sources != nullptr && sources->is_array()) {
        for (const auto& v : sources->get_array()) {
            if (!v.is_object()) continue;
            const auto& s = v.get_object();
            const std::string profile = text_in(s, "profile");
            requests[profile] += static_cast<double>(number_in(s, "fetches"));
            if (const auto* f = s.if_contains("failures"); f != nullptr && f->is_object())
                for (const auto& [kind, n] : f->get_object())
                    failures[{profile, label_word(std::string(kind))}] +=
                        n.is_uint64() ? static_cast<double>(n.get_uint64()) : n.is_int64() ? static_cast<double>(n.get_int64()) : 0;
        }
    }
    for (const auto& [profile, n] : requests) m.token_requests.set_total({profile}, n);
    for (const auto& [labels, n] : failures) m.token_failures.set_total(labels, n);

    if (const auto free = ctx.spool.free_bytes()) m.spool_free_bytes.set(static_cast<double>(*free));
    if (ctx.shared != nullptr) {
        m.cluster_shared.set(ctx.shared->available() ? 1 : 0);
        m.cluster_transitions.set_total({}, static_cast<double>(ctx.shared->transitions()));
    }
}

}  // namespace

admin_server::handlers relay_admin_handlers(relay_context& ctx) {
    admin_server::handlers h;
    h.metrics = [&ctx]() -> asio::awaitable<std::string> {
        co_await collect(ctx);
        co_return metrics::relay().reg.expose();
    };
    h.readiness = [&ctx]() -> asio::awaitable<admin_reply> {
        const auto free = ctx.spool.free_bytes();
        const bool spool_ok = ::access(ctx.spool.dir().c_str(), W_OK) == 0 &&
                              (!free || *free >= ctx.cfg.spool.min_free_bytes);
        const bool policy_ok = ctx.policy() != nullptr;
        json::object request;
        request["verb"] = "token-readiness";
        const json::object tokens = co_await asio::co_spawn(
            ctx.delivery.executor(), ctx.delivery.control(std::move(request)), use_awaitable);
        json::array list;
        if (const auto* t = tokens.if_contains("tokens"); t != nullptr && t->is_array()) list = t->get_array();
        std::optional<cluster_readiness> cluster;
        if (ctx.shared != nullptr)
            cluster = cluster_readiness{ctx.shared->available(), ctx.shared->location(), ctx.shared->nodes()};
        admin_reply r = readiness_reply(spool_ok, policy_ok, list, cluster);
        co_return r;
    };
    return h;
}

}  // namespace subrelay::relay
