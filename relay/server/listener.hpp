#pragma once
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/server/context.hpp"
#include "relay/server/session.hpp"

namespace subrelay::relay {

// Accepts connections until the acceptor is closed; each connection runs
// as its own session coroutine. Above server.max_connections a client is
// told 421 and disconnected.
boost::asio::awaitable<void> run_listener(relay_context& ctx, boost::asio::ip::tcp::acceptor& acceptor,
                                          listener_kind kind);

// Opens a listening socket (SO_REUSEADDR). Throws std::runtime_error naming the address.
boost::asio::ip::tcp::acceptor open_acceptor(boost::asio::io_context& io, const conf::listen_address& address);

}  // namespace subrelay::relay
