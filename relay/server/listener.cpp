#include "relay/server/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "relay/metrics/relay_metrics.hpp"

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
    co_await run_session(ctx, std::move(socket), std::move(kind));
    clients.release(client);
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
        const auto verdict = clients.admit(client, now);
        if (verdict != client_table::verdict::accept) {
            if (clients.log_refusal(client, now)) {
                const char* why = verdict == client_table::verdict::too_fast
                                      ? "more than server.max_connection_rate_per_client connections a minute"
                                  : verdict == client_table::verdict::blocked
                                      ? "blocked after auth.max_failures_per_client failed logins"
                                      : "server.max_connections_per_client connections already open";
                spdlog::warn("{}: client {} refused: {} (further refusals of it this minute are not logged)",
                             kind.name, client, why);
            }
            refuse(socket, kind,
                   verdict == client_table::verdict::blocked
                       ? "421 4.7.0 Too many failed logins from your host, try again later"
                       : "421 4.7.0 Too many connections from your host, try again later");
            metrics::relay().connections.inc({kind.name, connection_refusal(verdict)});
            continue;
        }
        metrics::relay().connections.inc({kind.name, "accepted"});
        asio::co_spawn(acceptor.get_executor(), run_counted_session(ctx, clients, std::move(socket), kind, client),
                       asio::detached);
    }
}

}  // namespace subrelay::relay
