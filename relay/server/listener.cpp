#include "relay/server/listener.hpp"

#include <algorithm>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "relay/metrics/relay_metrics.hpp"
#include "relay/server/proxy_header.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto with_error = asio::as_tuple(asio::use_awaitable);

tcp::acceptor open_acceptor(asio::io_context& io, const conf::listen_address& address) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(address.host, ec);
    if (ec) throw std::runtime_error("listen " + address.to_string() + ": not an IP address");
    tcp::endpoint ep(ip, address.port);
    tcp::acceptor acceptor(io);
    if (acceptor.open(ep.protocol(), ec); !ec) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (ip.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
        acceptor.bind(ep, ec);
    }
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("listen " + address.to_string() + ": " + ec.message());
    return acceptor;
}

namespace {

// Tells a refused client why, when the listener speaks plain text first
// (an implicit-TLS client would not understand it), and closes.
void refuse(tcp::socket& socket, const listener_kind& kind, const std::string& text) {
    boost::system::error_code ignored;
    if (!kind.implicit_tls) {
        const std::string line = text + "\r\n";
        socket.non_blocking(true, ignored);
        socket.write_some(asio::buffer(line), ignored);
    }
    socket.close(ignored);
}

// The outcome label of a connection the client table refused.
const char* connection_refusal(client_table::verdict v) {
    if (v == client_table::verdict::too_fast) return "refused_client_rate";
    if (v == client_table::verdict::blocked) return "refused_client_blocked";
    return "refused_client_connections";
}

// The session, then its slot back to the client's count.
asio::awaitable<void> run_counted_session(relay_context& ctx, client_table& clients, tcp::socket socket,
                                          listener_kind kind, std::string client) {
    co_await run_session(ctx, std::move(socket), std::move(kind), client);
    clients.release(client);
}

// Counts a connection of `client` in its limits (client_table), or refuses
// it: 421, logged once a minute per client.
bool admit(client_table& clients, tcp::socket& socket, const listener_kind& kind, const std::string& client) {
    const auto now = client_table::clock::now();
    const auto verdict = clients.admit(client, now);
    if (verdict == client_table::verdict::accept) {
        metrics::relay().connections.inc({kind.name, "accepted"});
        return true;
    }
    metrics::relay().connections.inc({kind.name, connection_refusal(verdict)});
    if (clients.log_refusal(client, now)) {
        const char* why = verdict == client_table::verdict::too_fast
                              ? "more than server.max_connection_rate_per_client connections a minute"
                          : verdict == client_table::verdict::blocked
                              ? "blocked after auth.max_failures_per_client failed logins"
                              : "server.max_connections_per_client connections already open";
        spdlog::warn("{}: client {} refused: {} (further refusals of it this minute are not logged)", kind.name,
                     client, why);
    }
    refuse(socket, kind,
           verdict == client_table::verdict::blocked
               ? "421 4.7.0 Too many failed logins from your host, try again later"
               : "421 4.7.0 Too many connections from your host, try again later");
    return false;
}

// Whether `peer` is a load balancer of server.proxy_protocol_from.
bool trusted_proxy(const conf::config& cfg, const asio::ip::address& peer) {
    if (cfg.server.proxy_protocol_from.empty()) return false;
    const auto ip = conf::network::parse_address(peer.to_string());
    return ip && std::any_of(cfg.server.proxy_protocol_from.begin(), cfg.server.proxy_protocol_from.end(),
                             [&ip](const conf::network& n) { return n.contains(*ip); });
}

// How long a proxy has for its header (at most server.tls_handshake_timeout_seconds).
constexpr std::chrono::seconds proxy_header_timeout{10};

struct proxy_read {
    bool ok = false;
    proxy_header header;
    std::string error;  // when not ok
};

// Reads a PROXY header and not one byte more, so that what follows (SMTP,
// a TLS ClientHello) is the session's: peeks, and takes off the socket
// only what the parser says is header.
asio::awaitable<proxy_read> read_proxy_header(tcp::socket& socket, std::chrono::steady_clock::duration limit) {
    using namespace asio::experimental::awaitable_operators;
    const auto failed = [](std::string why) { return proxy_read{false, {}, std::move(why)}; };
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    asio::steady_timer deadline(socket.get_executor(), limit);
    std::string have;
    for (;;) {
        const std::size_t wanted = parse_proxy_header(have).wanted;
        auto ready = co_await (socket.async_wait(tcp::socket::wait_read, with_error) || deadline.async_wait(with_error));
        if (ready.index() == 1) co_return failed("no complete PROXY header in time");
        if (auto [wait_ec] = std::get<0>(ready); wait_ec) co_return failed(wait_ec.message());
        std::string peeked(wanted, '\0');
        const std::size_t n = socket.receive(asio::buffer(peeked), tcp::socket::message_peek, ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
        if (ec && ec != asio::error::eof) co_return failed(ec.message());
        if (n == 0) co_return failed(have.empty() ? "closed without a PROXY header" : "closed within the PROXY header");
        peeked.resize(n);
        std::string seen = have + peeked;
        const proxy_parse p = parse_proxy_header(seen);
        if (p.state == proxy_parse::status::invalid) co_return failed(p.error);
        const bool done = p.state == proxy_parse::status::done;
        std::string taken(done ? p.length - have.size() : n, '\0');
        if (socket.receive(asio::buffer(taken), 0, ec) != taken.size() || ec)
            co_return failed("the PROXY header could not be read");
        if (done) co_return proxy_read{true, p.header, {}};
        have = std::move(seen);
    }
}

// A connection from a trusted proxy: its header comes first (before the
// greeting, before TLS), and then the client it names is admitted and
// served like one that connected directly; the proxy itself is not limited
// as a client. Without a valid header the connection is closed, logged once
// a minute per proxy.
asio::awaitable<void> run_proxied(relay_context& ctx, client_table& clients, tcp::socket socket, listener_kind kind,
                                  std::string proxy) {
    try {
        const auto limit = std::min<std::chrono::steady_clock::duration>(
            proxy_header_timeout, std::chrono::seconds(ctx.cfg.server.tls_handshake_timeout_seconds));
        const proxy_read read = co_await read_proxy_header(socket, limit);
        if (!read.ok) {
            if (clients.log_refusal(proxy, client_table::clock::now()))
                spdlog::warn("{}: connection from proxy {} closed: {} (server.proxy_protocol_from; further ones "
                             "this minute are not logged)",
                             kind.name, proxy, read.error);
            boost::system::error_code ignored;
            socket.close(ignored);
            co_return;
        }
        if (read.header.source.empty()) {
            // LOCAL (a health check), or a client the header cannot name:
            // the proxy's own address stands for the client.
            spdlog::debug("{}: proxy {} connects for itself (PROXY v{}{})", kind.name, proxy, read.header.version,
                          read.header.local ? " LOCAL" : "");
            co_await run_session(ctx, std::move(socket), std::move(kind), proxy);
            co_return;
        }
        const std::string& client = read.header.source;
        if (!admit(clients, socket, kind, client)) co_return;
        spdlog::debug("{}: client {} via proxy {} (PROXY v{})", kind.name, client, proxy, read.header.version);
        co_await run_counted_session(ctx, clients, std::move(socket), std::move(kind), client);
    } catch (const std::exception& e) {
        spdlog::error("{}: connection from proxy {} ended by an error: {}", kind.name, proxy, e.what());
    }
}

}  // namespace

asio::awaitable<void> run_listener(relay_context& ctx, client_table& clients, tcp::acceptor& acceptor,
                                   listener_kind kind) {
    auto last_full_log = client_table::clock::time_point{};
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(with_error);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
        if (ec) {
            // Out of file descriptors and the like: log, breathe, go on.
            spdlog::warn("{}: accept failed: {}", kind.name, ec.message());
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
            co_await pause.async_wait(with_error);
            continue;
        }
        boost::system::error_code peer_ec;
        const auto peer = socket.remote_endpoint(peer_ec);
        if (peer_ec) {  // gone already
            boost::system::error_code ignored;
            socket.close(ignored);
            continue;
        }
        const std::string client = peer.address().to_string();
        const auto now = client_table::clock::now();
        if (ctx.sessions.size() >= ctx.cfg.server.max_connections) {
            if (now - last_full_log >= std::chrono::minutes(1) || last_full_log == client_table::clock::time_point{}) {
                last_full_log = now;
                spdlog::warn("{}: server.max_connections ({}) reached; refusing new clients (logged once a minute)",
                             kind.name, ctx.cfg.server.max_connections);
            }
            refuse(socket, kind, "421 4.7.0 " + ctx.cfg.server.hostname + " Too many connections, try again later");
            metrics::relay().connections.inc({kind.name, "refused_max_connections"});
            continue;
        }
        if (trusted_proxy(ctx.cfg, peer.address())) {
            // Its client is known once the header is read: admitted then.
            asio::co_spawn(acceptor.get_executor(), run_proxied(ctx, clients, std::move(socket), kind, client),
                           asio::detached);
            continue;
        }
        if (!admit(clients, socket, kind, client)) continue;
        asio::co_spawn(acceptor.get_executor(), run_counted_session(ctx, clients, std::move(socket), kind, client),
                       asio::detached);
    }
}

}  // namespace subrelay::relay
