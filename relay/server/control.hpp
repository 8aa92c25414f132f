#pragma once
// The running relay's control socket, like smtpctl talking to smtpd: a Unix
// socket in the spool directory (SPOOL/control.sock, mode 0600, owner only),
// one JSON object per line each way. While the daemon runs it is the only
// writer of queue state: `subrelay queue` (retry, hold, release, delete, import) and
// `subrelay oauth status` ask it here; only when nothing answers do they work
// on the files themselves, under each message's lock.
//
// Requests: {"verb": "status"}                  messages' live status, lanes
//           {"verb": "oauth-status"}            the token sources
//           {"verb": "token-readiness"}         whether each gives a token now
//           {"verb": "retry"|"hold"|"release"|"delete", "ids": [...]}
//           {"verb": "import", "dir": "/abs/DIR", "ids": [names in DIR/queue]}
//                                               another node's spool (relay/spool/import.hpp)
// Replies:  {"ok": true, ...} or {"ok": false, "error": "what"}.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/json/object.hpp>

namespace subrelay::relay {

std::filesystem::path control_socket_path(const std::filesystem::path& spool_dir);

// Asks the relay running on `spool_dir`. nullopt: no relay answers there (no
// socket, or nobody listening). Throws std::runtime_error when one answers
// but the exchange fails (a broken reply, a timeout).
std::optional<boost::json::object> ask_relay(const std::filesystem::path& spool_dir, const boost::json::object& request);

class control_server {
public:
    using handler = std::function<boost::asio::awaitable<boost::json::object>(boost::json::object)>;

    // Binds SPOOL/control.sock (replacing a stale one: the caller holds the
    // spool's instance lock) with mode 0600. Throws std::runtime_error.
    control_server(boost::asio::io_context& io, const std::filesystem::path& spool_dir, handler h);
    ~control_server();
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;

    void start();  // accepts on the io_context given to the constructor
    void stop();   // stops accepting and removes the socket file; call on that io_context

    // Longest request line accepted.
    static constexpr std::size_t max_request = 64 * 1024;

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::local::stream_protocol::socket s);

    boost::asio::io_context& io_;
    std::filesystem::path path_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    handler handler_;
};

}  // namespace subrelay::relay
