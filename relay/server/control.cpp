#include "relay/server/control.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "relay/spool/durable_file.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using asio::use_awaitable;
using local = asio::local::stream_protocol;
constexpr auto with_error = asio::as_tuple(use_awaitable);

fs::path control_socket_path(const fs::path& spool_dir) { return spool_dir / "control.sock"; }

namespace {

json::object error_reply(const std::string& what) { return json::object{{"ok", false}, {"error", what}}; }

// A name for the socket that fits sockaddr_un (108 bytes): its own path when
// short enough, else the same file through /proc/self/fd/N of its directory
// (spools under deep directories; `dir` keeps that descriptor open).
std::string reachable_name(const fs::path& socket, fd_guard& dir) {
    constexpr std::size_t limit = sizeof(sockaddr_un{}.sun_path) - 1;
    if (socket.string().size() <= limit) return socket.string();
    dir = fd_guard(::open(socket.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) throw std::runtime_error(socket.parent_path().string() + ": " + std::strerror(errno));
    std::string name = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + socket.filename().string();
    if (name.size() > limit) throw std::runtime_error("control socket path too long: " + socket.string());
    return name;
}

}  // namespace

std::optional<json::object> ask_relay(const fs::path& spool_dir, const json::object& request) {
    std::error_code missing;
    if (!fs::is_directory(spool_dir, missing)) return std::nullopt;  // no spool yet: no relay either
    const fs::path path = control_socket_path(spool_dir);
    const std::string p = path.string();
    fd_guard dir(-1);
    const std::string name = reachable_name(path, dir);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.c_str(), name.size() + 1);
    fd_guard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED) return std::nullopt;  // no relay running here
        throw std::runtime_error("cannot reach the relay at " + p + ": " + std::strerror(errno));
    }
    timeval timeout{60, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    const std::string line = json::serialize(request) + "\n";
    for (std::size_t done = 0; done < line.size();) {
        const ssize_t n = ::send(fd.get(), line.data() + done, line.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("cannot send to the relay at " + p + ": " + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    std::string reply;
    char buf[8192];
    while (reply.find('\n') == std::string::npos) {
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error("no answer from the relay at " + p + ": " + std::strerror(errno));
        if (n == 0) throw std::runtime_error("the relay at " + p + " closed the connection without an answer");
        reply.append(buf, static_cast<std::size_t>(n));
    }
    reply.resize(reply.find('\n'));
    boost::system::error_code ec;
    json::value v = json::parse(reply, ec);
    if (ec || !v.is_object()) throw std::runtime_error("the relay at " + p + " answered something unreadable");
    return std::move(v.get_object());
}

control_server::control_server(asio::io_context& io, const fs::path& spool_dir, handler h)
    : io_(io), path_(control_socket_path(spool_dir)), acceptor_(io), handler_(std::move(h)) {
    std::error_code ec;
    fs::remove(path_, ec);  // left by a relay that did not stop cleanly (we hold the instance lock)
    fd_guard dir(-1);
    const std::string name = reachable_name(path_, dir);
    boost::system::error_code bec;
    acceptor_.open(local(), bec);
    if (!bec) acceptor_.bind(local::endpoint(name), bec);
    // Owner only; the spool directory is the owner's alone too.
    if (!bec && ::chmod(path_.c_str(), 0600) != 0) bec.assign(errno, boost::system::system_category());
    if (!bec) acceptor_.listen(asio::socket_base::max_listen_connections, bec);
    if (bec) throw std::runtime_error("control socket " + path_.string() + ": " + bec.message());
}

control_server::~control_server() {
    boost::system::error_code ec;
    acceptor_.close(ec);
}

void control_server::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void control_server::stop() {
    if (!acceptor_.is_open()) return;
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::error_code fec;
    fs::remove(path_, fec);
}

asio::awaitable<void> control_server::accept_loop() {
    for (;;) {
        auto [ec, s] = co_await acceptor_.async_accept(with_error);
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            spdlog::warn("control socket: accept: {}", ec.message());
            continue;
        }
        asio::co_spawn(io_, serve(std::move(s)), asio::detached);
    }
}

// One client: requests and replies, a line each, until it closes.
asio::awaitable<void> control_server::serve(local::socket s) {
    asio::streambuf in(max_request);
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(s, in, '\n', with_error);
        if (ec) co_return;  // closed, or a line over max_request
        std::string line(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + static_cast<std::ptrdiff_t>(n) - 1);
        in.consume(n);
        json::object reply;
        boost::system::error_code jec;
        json::value request = json::parse(line, jec);
        if (jec || !request.is_object()) {
            reply = error_reply("a request is one JSON object on one line");
        } else {
            try {
                reply = co_await handler_(std::move(request.get_object()));
            } catch (const std::exception& e) {
                reply = error_reply(e.what());
            }
        }
        const std::string out = json::serialize(reply) + "\n";
        auto [wec, written] = co_await asio::async_write(s, asio::buffer(out), with_error);
        (void)written;
        if (wec) co_return;
    }
}

}  // namespace subrelay::relay
