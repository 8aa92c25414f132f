#include "relay/server/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

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

asio::awaitable<void> run_listener(relay_context& ctx, tcp::acceptor& acceptor, listener_kind kind) {
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
        if (ctx.sessions.size() >= ctx.cfg.server.max_connections) {
            boost::system::error_code ignored;
            auto peer = socket.remote_endpoint(ignored);
            spdlog::warn("{}: too many connections ({}); refusing {}", kind.name, ctx.sessions.size(),
                         peer.address().to_string());
            if (!kind.implicit_tls) {
                std::string text = "421 4.7.0 " + ctx.cfg.server.hostname + " Too many connections, try again later\r\n";
                socket.non_blocking(true, ignored);
                socket.write_some(asio::buffer(text), ignored);
            }
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(acceptor.get_executor(), run_session(ctx, std::move(socket), kind), asio::detached);
    }
}

}  // namespace subrelay::relay
