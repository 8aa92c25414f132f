#pragma once
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/server/client_table.hpp"
#include "relay/server/context.hpp"
#include "relay/server/session.hpp"

namespace subrelay::relay {

// Accepts connections until the acceptor is closed; each connection runs
// as its own session coroutine. Above server.max_connections, or above its
// own limits in `clients` (shared by all listeners), a client is told 421
// and disconnected; refusals are logged once a minute per client.
boost::asio::awaitable<void> run_listener(relay_context& ctx, client_table& clients,
                                          boost::asio::ip::tcp::acceptor& acceptor, listener_kind kind);

// Opens a listening socket (SO_REUSEADDR). Throws std::runtime_error naming the address.
boost::asio::ip::tcp::acceptor open_acceptor(boost::asio::io_context& io, const conf::listen_address& address);

}  // namespace subrelay::relay
