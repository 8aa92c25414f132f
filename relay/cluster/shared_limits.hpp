#pragma once
// Limits shared by the nodes of a cluster, kept in one Redis server:
// leases (at most N held at once, like Exchange Online's 3 connections per
// mailbox), sliding windows (at most N in any window, like its 30 messages
// a minute per mailbox, or an account's quota), and small helpers for
// account lockouts (a value with a time to live, failures in a window).
//
// Each operation is one Lua script, atomic on the Redis side, that reads
// the time from Redis itself (TIME), so the nodes' clocks do not matter.
// The commands run on one thread of the library's own with a synchronous
// connection; the operations are awaitables that queue a job for it and
// resume the caller on its own executor, so a caller's thread never waits
// for Redis.
//
// When Redis cannot be reached (refused, no answer within the timeout, an
// error reply), every operation answers `unavailable` at once, without
// queueing, while the library's thread tries to reconnect about once a
// second; callers then keep share(limit, nodes) of each limit by
// themselves. One warning is logged when Redis is lost and one line when
// it is back; neither names more than the host and port (or the socket),
// never the password.
//
// Keys are cluster.key_prefix, then a word for the kind of data ("lease:",
// "window:", "value:", "failures:"), then the key the caller gives; each
// expires a little after its last lease or window, so nothing is left
// behind by a node that stops. A key is used with one window (or ttl) only.
//
// A call that timed out may have been done by Redis all the same: such a
// lease is held until its ttl ends, such a take or reservation counts
// until it leaves its window. The limits err on the safe side that way.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "conf/config.hpp"

namespace subrelay::cluster {

using std::chrono::milliseconds;

// One slot of a lease set, held until released or until its time to live
// runs out (a node that crashes loses its leases that way).
struct lease {
    std::string key;       // the Redis key, with its prefix
    std::string member;    // this holder's member of the set; empty: no lease (no limit)
    [[nodiscard]] bool empty() const { return member.empty(); }
};

enum class lease_status { granted, full, unavailable };
struct lease_result {
    lease_status status = lease_status::unavailable;
    lease held;            // when granted
};

enum class renew_status { renewed, lost, unavailable };

enum class take_status { granted, wait, unavailable };
struct take_result {
    take_status status = take_status::unavailable;
    milliseconds wait{0};  // status wait: until the oldest entry leaves the window
};

// Members of a sliding window set aside for one message (its recipients,
// say). Released, they stop counting at once; never released, they count
// until they leave the window, which is how a reservation is committed.
struct reservation {
    std::string key;
    std::vector<std::string> members;
    [[nodiscard]] bool empty() const { return members.empty(); }
};

enum class reserve_status { granted, refused, unavailable };
struct reserve_result {
    reserve_status status = reserve_status::unavailable;
    reservation held;      // when granted
};

struct value_result {
    bool available = false;            // false: Redis could not be asked
    std::optional<std::string> value;  // nullopt: no such key (or it expired)
};

struct count_result {
    bool available = false;
    std::uint64_t count = 0;
};

class shared_limits {
public:
    // Called on the library's thread at each change of available(), with
    // the new value; it must be quick and must not throw.
    using transition_callback = std::function<void(bool available)>;

    // Starts the library's thread, which connects to cfg.redis (required)
    // at once. Operations called before the first connection is made wait
    // for it (at most about cluster.timeout_ms).
    explicit shared_limits(const conf::cluster_config& cfg, transition_callback on_transition = {});
    ~shared_limits();  // stop()
    shared_limits(const shared_limits&) = delete;
    shared_limits& operator=(const shared_limits&) = delete;

    // Leases. At most `limit` leases of `key` are held at once across the
    // nodes; each lasts `ttl` unless renewed. limit 0: no limit (granted
    // at once, an empty lease, nothing asked of Redis).
    boost::asio::awaitable<lease_result> acquire_lease(std::string_view key, unsigned limit, milliseconds ttl);
    // Extends a held lease to `ttl` from now; lost when it had expired.
    boost::asio::awaitable<renew_status> renew_lease(const lease& held, milliseconds ttl);
    // Gives a lease back, without waiting; never throws. When Redis cannot
    // be reached the lease expires by itself.
    void release_lease(const lease& held) noexcept;

    // A sliding window: one more of at most `limit` in any `window` of
    // time, or how long until there is room. limit 0: no limit.
    boost::asio::awaitable<take_result> take(std::string_view key, unsigned limit, milliseconds window);

    // Sets aside `count` of at most `limit` in any `window` (one
    // reservation, all or nothing); refused when they do not fit. limit 0
    // or count 0: granted at once, an empty reservation.
    boost::asio::awaitable<reserve_result> reserve(std::string_view key, unsigned limit, milliseconds window,
                                                   unsigned count);
    // Gives a reservation back, without waiting; never throws.
    void release(const reservation& held) noexcept;

    // A value that expires after `ttl` (an account's lock). False when
    // Redis could not be asked.
    boost::asio::awaitable<bool> set_with_ttl(std::string_view key, std::string_view value, milliseconds ttl);
    boost::asio::awaitable<value_result> get(std::string_view key);
    // The same for a thread that may wait (the password checks' pool, inside
    // libsasl2's callback): blocks until Redis answers, at most about
    // cluster.timeout_ms; not available then.
    [[nodiscard]] value_result get_now(std::string_view key);
    // Counts one failure and returns how many there were in the last
    // `window` (an account's failed logins in a sliding hour).
    boost::asio::awaitable<count_result> add_failure(std::string_view key, milliseconds window);
    // Forgets the failures counted under `key` (a successful login), without
    // waiting; never throws.
    void clear_failures(std::string_view key) noexcept;

    // Whether Redis answers now: while false, callers keep their own share.
    [[nodiscard]] bool available() const { return state_.load() == state::up; }
    // The first connection has not been tried yet (operations wait for it).
    [[nodiscard]] bool connecting() const { return state_.load() == state::connecting; }
    // How many times available() changed (for a metric).
    [[nodiscard]] std::uint64_t transitions() const { return transitions_.load(); }
    // "HOST:PORT" or the socket's path: what a log line may say.
    [[nodiscard]] const std::string& location() const { return location_; }
    [[nodiscard]] unsigned nodes() const { return nodes_; }

    // One node's share of a limit while the nodes cannot share it: limit /
    // nodes rounded down, at least 1 when limit > 0 (0 stays "no limit");
    // nodes 0 counts as 1.
    static unsigned share(unsigned limit, unsigned nodes);

    // Stops the library's thread and joins it (waiting at most for the
    // command under way, about cluster.timeout_ms). Calls pending and
    // calls made afterwards complete with `unavailable`. Idempotent. Call
    // it (or destroy this) before the executors of its callers go: their
    // answers are posted to them. Not from the transition callback.
    void stop();

private:
    class connection;  // the library's thread's state (shared_limits.cpp)
    enum class state { connecting, up, down, stopped };

    // A queued call: runs against the connection (nullptr: Redis cannot
    // be reached) and posts its result to the caller's executor.
    // run() and answer() are apart so that a failure marks Redis down
    // before the caller hears of it: a caller that resumes on
    // `unavailable` finds available() false.
    struct job {
        virtual ~job() = default;
        virtual void run(connection* conn) noexcept = 0;
        virtual void answer() noexcept {}
        void complete(connection* conn) noexcept {
            run(conn);
            answer();
        }
    };

    template <typename T>
    using operation = std::function<T(connection&)>;

    template <typename T, typename Handler>
    struct call_job final : job {
        using executor_type = decltype(boost::asio::prefer(boost::asio::get_associated_executor(std::declval<Handler&>()),
                                                           boost::asio::execution::outstanding_work.tracked));
        call_job(Handler h, operation<T> o, T unavailable)
            : handler(std::move(h)),
              work(boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                       boost::asio::execution::outstanding_work.tracked)),
              op(std::move(o)),
              result(std::move(unavailable)) {}

        void run(connection* conn) noexcept override {
            if (conn != nullptr) {
                try {
                    result = op(*conn);
                } catch (...) {
                    // result stays "unavailable"
                }
            }
        }
        void answer() noexcept override {
            // Posted, never run here: the caller resumes on its own executor.
            boost::asio::post(work, [h = std::move(handler), r = std::move(result)]() mutable { std::move(h)(std::move(r)); });
        }

        Handler handler;
        executor_type work;  // keeps the caller's executor from running out of work meanwhile
        operation<T> op;
        T result;
    };

    // Queues `op` for the library's thread, or answers `unavailable` at
    // once when Redis is known to be unreachable.
    template <typename T>
    boost::asio::awaitable<T> submit(operation<T> op, T unavailable) {
        return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(T)>(
            [this](auto handler, operation<T> o, T u) {
                std::unique_ptr<job> j =
                    std::make_unique<call_job<T, decltype(handler)>>(std::move(handler), std::move(o), std::move(u));
                if (!push(j)) j->complete(nullptr);
            },
            boost::asio::use_awaitable, std::move(op), std::move(unavailable));
    }

    // An answer at once, without Redis (no limit).
    template <typename T>
    static boost::asio::awaitable<T> ready(T value) {
        co_return value;
    }

    // Hands a job to the library's thread (taking it); false, the job left
    // with the caller, when Redis is known to be unreachable or stopped.
    bool push(std::unique_ptr<job>& j);

    // A fire-and-forget command (a release).
    void post_command(std::vector<std::string> argv) noexcept;

    [[nodiscard]] std::string full_key(std::string_view kind, std::string_view key) const;
    // A member name no other call of any node uses.
    [[nodiscard]] std::string unique_member();

    void run();
    void connect();
    void mark_down(const std::string& reason);

    conf::redis_endpoint endpoint_;
    std::string key_prefix_;
    milliseconds timeout_;
    unsigned nodes_;
    std::string location_;
    std::string node_id_;                 // random, for unique members
    std::atomic<std::uint64_t> sequence_{0};
    transition_callback on_transition_;

    std::atomic<state> state_{state::connecting};
    std::atomic<std::uint64_t> transitions_{0};

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::unique_ptr<job>> queue_;  // guarded by mutex_
    bool stopping_ = false;                   // guarded by mutex_
    std::mutex stop_mutex_;                   // one stop() at a time

    std::unique_ptr<connection> conn_;        // the library's thread's only
    std::thread thread_;
};

}  // namespace subrelay::cluster
