#include "relay/delivery.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "relay/blocking.hpp"
#include "relay/tls.hpp"
#include "smtp/address.hpp"
#include "relay/upstream.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

struct delivery::lane {
    std::string mailbox;
    std::deque<std::string> ready;                 // ids to send now
    unsigned active = 0;                           // connections open (or opening)
    std::set<asio::steady_timer*> idle_waiters;    // workers waiting for more messages
};

namespace {

// How long a connection stays open without work before it says QUIT.
constexpr std::chrono::seconds idle_keepalive{10};


// Writes a file durably: temporary name, fsync, rename.
void write_file_durably(const std::filesystem::path& path, std::string_view data) {
    const std::filesystem::path tmp = path.string() + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) throw std::runtime_error("create " + tmp.string() + ": " + std::strerror(errno));
    std::string_view rest = data;
    while (!rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw std::runtime_error("write " + tmp.string() + ": " + std::strerror(err));
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw std::runtime_error("fsync " + tmp.string() + ": " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        throw std::runtime_error("rename " + tmp.string() + ": " + std::strerror(errno));
    }
}

}  // namespace

delivery::delivery(asio::io_context& io, asio::thread_pool& blocking, const conf::config& cfg, relay::spool& spool,
                   auth::token_source* tokens)
    : io_(io), blocking_(blocking), cfg_(cfg), spool_(spool), tokens_(tokens) {
    if (cfg_.upstream.kind == conf::upstream_kind::smtp)
        tls_ = std::make_unique<asio::ssl::context>(make_client_context(cfg_.upstream.ca_file));
}

delivery::~delivery() = default;

delivery::lane& delivery::lane_for(const std::string& mailbox) {
    auto& l = lanes_[mailbox];
    if (!l) {
        l = std::make_unique<lane>();
        l->mailbox = mailbox;
    }
    return *l;
}

void delivery::start() {
    std::vector<std::string> ids = spool_.list();
    if (!ids.empty()) spdlog::info("spool holds {} message(s) from before: delivering", ids.size());
    for (const auto& id : ids) {
        try {
            auto m = spool_.load(id);
            std::string mailbox = m.envelope.upstream_mailbox.empty() ? cfg_.upstream.mailbox
                                                                      : m.envelope.upstream_mailbox;
            enqueue(id, mailbox);
        } catch (const std::exception& e) {
            spdlog::error("spool: cannot read message {}: {} (left in place)", id, e.what());
        }
    }
}

void delivery::enqueue(const std::string& id, const std::string& upstream_mailbox) {
    if (stopping_ || !known_.insert(id).second) return;
    lane& l = lane_for(upstream_mailbox);
    l.ready.push_back(id);
    kick(l);
}

void delivery::kick(lane& l) {
    if (stopping_ || l.ready.empty()) return;
    // Connections waiting for work take it before another one is opened.
    const std::size_t idle = l.idle_waiters.size();
    for (auto* t : l.idle_waiters) t->cancel();
    if (l.ready.size() <= idle) return;
    if (l.active >= std::max(1u, cfg_.upstream.max_connections_per_mailbox)) return;
    ++l.active;
    ++workers_;
    auto worker = cfg_.upstream.kind == conf::upstream_kind::directory ? directory_worker(l) : smtp_worker(l);
    asio::co_spawn(io_, std::move(worker), [this](std::exception_ptr e) {
        --workers_;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("delivery worker failed: {}", ex.what());
            }
        }
    });
}

std::chrono::seconds delivery::backoff(unsigned attempts) const {
    std::uint64_t wait = std::max<std::uint32_t>(1, cfg_.upstream.retry_initial_seconds);
    for (unsigned i = 1; i < attempts && wait < cfg_.upstream.retry_max_seconds; ++i) wait *= 2;
    return std::chrono::seconds(std::min<std::uint64_t>(wait, std::max<std::uint32_t>(1, cfg_.upstream.retry_max_seconds)));
}

void delivery::defer(const std::string& id, const std::string& mailbox) {
    unsigned n = ++attempts_[id];
    auto wait = backoff(n);
    spdlog::info("deferred id={} attempt={} next attempt in {}s", id, n, wait.count());
    asio::co_spawn(io_, retry_later(id, mailbox, wait), asio::detached);
}

asio::awaitable<void> delivery::retry_later(std::string id, std::string mailbox, std::chrono::seconds wait) {
    asio::steady_timer timer(io_, wait);
    timers_.insert(&timer);
    co_await timer.async_wait(with_error);
    timers_.erase(&timer);
    if (stopping_) co_return;
    known_.erase(id);
    enqueue(id, mailbox);
}

asio::awaitable<void> delivery::smtp_worker(lane& l) {
    struct active_guard {
        lane& l;
        ~active_guard() { --l.active; }
    } guard{l};

    upstream_connection conn(cfg_, *tls_, tokens_, l.mailbox);
    try {
        co_await conn.open();
    } catch (const std::exception& e) {
        // Nothing was sent: every message waiting for this mailbox waits longer.
        spdlog::warn("upstream connection for {} failed: {}", l.mailbox, e.what());
        std::deque<std::string> waiting;
        waiting.swap(l.ready);
        for (const auto& id : waiting) {
            spdlog::info("delivery id={} upstream={} status=deferred reason=\"{}\"", id, l.mailbox, e.what());
            defer(id, l.mailbox);
        }
        co_return;
    }

    auto deadline = std::chrono::steady_clock::now() + idle_keepalive;
    while (!stopping_) {
        if (l.ready.empty()) {
            if (std::chrono::steady_clock::now() >= deadline) break;
            asio::steady_timer wait(io_, deadline);
            l.idle_waiters.insert(&wait);
            timers_.insert(&wait);
            co_await wait.async_wait(with_error);
            l.idle_waiters.erase(&wait);
            timers_.erase(&wait);
            continue;
        }
        std::string id = l.ready.front();
        l.ready.pop_front();

        spool::loaded msg;
        try {
            auto load = [this, &id] { return spool_.load(id); };
            msg = co_await run_blocking(blocking_, load);
        } catch (const std::exception& e) {
            spdlog::error("spool: cannot read message {}: {} (left in place)", id, e.what());
            known_.erase(id);
            continue;
        }

        smtp::outgoing_message out;
        out.sender = msg.envelope.sender;
        out.recipients = msg.envelope.recipients;
        out.data = msg.data;
        out.size = msg.data.size();
        out.eight_bit = msg.envelope.eight_bit;
        out.smtputf8 = msg.envelope.smtputf8;

        smtp::message_result result;
        std::string failure;
        try {
            result = co_await conn.send(out);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) {
            spdlog::info("delivery id={} account={} client={} upstream={} from=<{}> to={} size={} status=deferred "
                         "reason=\"{}\"",
                         id, msg.envelope.identity, msg.envelope.client_address, l.mailbox, out.sender,
                         smtp::bracketed_list(out.recipients), out.size, failure);
            defer(id, l.mailbox);
            co_await conn.quit();
            co_return;
        }

        // Sort recipients: delivered, refused for good, or to try again.
        std::vector<std::string> delivered = result.delivered();
        std::vector<std::string> retry;
        std::vector<std::string> failed;
        for (const auto& r : result.recipients) {
            if (std::find(delivered.begin(), delivered.end(), r.address) != delivered.end()) continue;
            const smtp::reply& why = r.rcpt_reply.positive() ? result.final_reply : r.rcpt_reply;
            (why.permanent() ? failed : retry).push_back(r.address);
            if (why.permanent())
                spdlog::warn("delivery id={} recipient=<{}> status=bounced reply=\"{}\"", id, r.address,
                             why.summary());
        }
        if (result.recipients.empty()) {
            // MAIL itself was refused: every recipient shares its fate.
            (result.final_reply.permanent() ? failed : retry) = out.recipients;
        }
        const char* status = retry.empty() ? (failed.empty() ? "sent" : (delivered.empty() ? "bounced" : "partly-sent"))
                                           : "deferred";
        spdlog::info("delivery id={} account={} client={} upstream={} from=<{}> to={} size={} status={} reply=\"{}\"",
                     id, msg.envelope.identity, msg.envelope.client_address, l.mailbox, out.sender,
                     smtp::bracketed_list(out.recipients), out.size, status, result.final_reply.summary());
        try {
            if (retry.empty()) {
                auto remove = [this, &id] { spool_.remove(id); };
                co_await run_blocking(blocking_, remove);
                known_.erase(id);
                attempts_.erase(id);
            } else {
                if (retry.size() != out.recipients.size()) {
                    auto rewrite = [this, &id, &retry] { spool_.set_recipients(id, retry); };
                    co_await run_blocking(blocking_, rewrite);
                }
                defer(id, l.mailbox);
            }
        } catch (const std::exception& e) {
            spdlog::error("spool update for {} failed: {}", id, e.what());
            defer(id, l.mailbox);
        }
        deadline = std::chrono::steady_clock::now() + idle_keepalive;
    }
    co_await conn.quit();
}

asio::awaitable<void> delivery::directory_worker(lane& l) {
    struct active_guard {
        lane& l;
        ~active_guard() { --l.active; }
    } guard{l};
    while (!stopping_ && !l.ready.empty()) {
        std::string id = l.ready.front();
        l.ready.pop_front();
        try {
            auto write_out = [this, &id] {
                    auto msg = spool_.load(id);
                    const auto& dir = cfg_.upstream.directory;
                    std::filesystem::create_directories(dir);
                    boost::json::object env;
                    env["id"] = id;
                    env["sender"] = msg.envelope.sender;
                    boost::json::array rcpts;
                    for (const auto& r : msg.envelope.recipients) rcpts.emplace_back(r);
                    env["recipients"] = std::move(rcpts);
                    env["identity"] = msg.envelope.identity;
                    env["upstream_mailbox"] = msg.envelope.upstream_mailbox;
                    env["client_address"] = msg.envelope.client_address;
                    env["received_at"] = msg.envelope.received_at;
                    // The message first, then the envelope: a reader that sees
                    // the .json file finds the whole .eml beside it.
                    write_file_durably(dir / (id + ".eml"), msg.data);
                    write_file_durably(dir / (id + ".json"), boost::json::serialize(env) + "\n");
                    spool_.remove(id);
                    spdlog::info("delivery id={} account={} client={} from=<{}> to={} size={} status=sent directory={}",
                                 id, msg.envelope.identity, msg.envelope.client_address, msg.envelope.sender,
                                 smtp::bracketed_list(msg.envelope.recipients), msg.data.size(), dir.string());
            };
            co_await run_blocking(blocking_, write_out);
            known_.erase(id);
            attempts_.erase(id);
        } catch (const std::exception& e) {
            spdlog::warn("delivery id={} status=deferred reason=\"{}\"", id, e.what());
            defer(id, l.mailbox);
        }
    }
}

asio::awaitable<void> delivery::stop() {
    stopping_ = true;
    for (auto* t : timers_) t->cancel();
    // Workers finish the message in hand, then say QUIT.
    asio::steady_timer poll(io_);
    for (int i = 0; workers_ > 0 && i < 600; ++i) {
        for (auto* t : timers_) t->cancel();
        poll.expires_after(std::chrono::milliseconds(50));
        co_await poll.async_wait(with_error);
    }
    if (workers_ > 0) spdlog::warn("delivery: {} connection(s) still busy at exit; their messages stay queued", workers_);
}

}  // namespace subrelay::relay
