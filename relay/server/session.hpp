#pragma once
// One client connection: a coroutine that moves bytes between the socket
// (plain, STARTTLS or implicit TLS) and smtp::server_session, and carries
// out what the state machine asks for (TLS handshake, SASL, spooling).
#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "relay/server/context.hpp"

namespace subrelay::relay {

class session;

// The sessions alive now, so that shutdown can reach them. Used on the
// sessions' io_context only.
class session_registry {
public:
    void add(const std::shared_ptr<session>& s);
    void remove(const std::shared_ptr<session>& s);
    [[nodiscard]] std::size_t size() const { return sessions_.size(); }
    // Asks every session, and every one added from now on, to finish: each
    // answers 421 4.3.2 at its next read (or at once when it is waiting for
    // the client), then closes.
    void stop_all();
    // Resolves when the last session has ended, or after `limit`.
    boost::asio::awaitable<void> wait_until_empty(std::chrono::steady_clock::duration limit);

private:
    std::set<std::shared_ptr<session>> sessions_;
    bool stopping_ = false;
    boost::asio::steady_timer* empty_ = nullptr;  // wait_until_empty's timer while it waits
};

// How long a session that ends (idle timeout, shutdown) tries to write its
// 421 before it closes anyway (at most the idle timeout).
inline constexpr std::chrono::seconds goodbye_timeout{5};
// The idle timeout while the relay is under pressure (above 80 % of
// server.max_connections), as Postfix's stress mode.
inline constexpr std::chrono::seconds stress_idle_timeout{10};
// server.min_data_rate is judged once DATA has run this long.
inline constexpr std::chrono::seconds data_rate_grace{30};

struct listener_kind {
    bool implicit_tls = false;
    std::string name;     // "submission 127.0.0.1:587"
    std::string address;  // "127.0.0.1:587", as in the configuration
};

// Runs one session to its end. Never throws. `client` is the client's
// address as everything in the session uses it (bindings, device profiles,
// failed logins, logs, Received:): the one a PROXY header named, or empty
// for the TCP peer's.
boost::asio::awaitable<void> run_session(relay_context& ctx, boost::asio::ip::tcp::socket socket,
                                         listener_kind kind, std::string client = {});

}  // namespace subrelay::relay
