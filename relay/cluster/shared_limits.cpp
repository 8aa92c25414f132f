#include "relay/cluster/shared_limits.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <future>
#include <random>

#include <spdlog/spdlog.h>

#include "relay/cluster/redis_connection.hpp"

namespace subrelay::cluster {

namespace {

// How long a key outlives its last lease or the end of its window.
constexpr milliseconds expiry_margin{1000};
// How often an unreachable Redis is tried again.
constexpr milliseconds reconnect_interval{1000};
// Calls queued for the library's thread beyond this are answered
// `unavailable` at once (a Redis that answers slowly must not let the
// queue grow without bound).
constexpr std::size_t max_queued = 10000;

// Every script starts from Redis's own clock, in milliseconds.
#define SUBRELAY_NOW                                                                                                   \
    "local t = redis.call('TIME')\n"                                                                                   \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

// The key expires `margin` after its latest lease.
#define SUBRELAY_EXPIRE_AFTER_LAST_LEASE                                                                               \
    "local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')\n"                                                  \
    "redis.call('PEXPIREAT', key, tonumber(last[2]) + margin)\n"

// The key expires `margin` after its window, counted from now (never
// sooner than it already would).
#define SUBRELAY_EXPIRE_AFTER_WINDOW                                                                                   \
    "if redis.call('PTTL', key) < window + margin then redis.call('PEXPIRE', key, window + margin) end\n"

enum class script { acquire, renew, take, reserve, failure, count };

// Leases: a sorted set of members scored by their expiry; the expired ones
// are dropped before counting. ARGV: limit, ttl, member, margin.
constexpr std::string_view acquire_script =
    SUBRELAY_NOW
    "local key, limit, ttl, member, margin = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
    "if redis.call('ZCARD', key) >= limit then return 0 end\n"
    "redis.call('ZADD', key, now + ttl, member)\n"
    SUBRELAY_EXPIRE_AFTER_LAST_LEASE
    "return 1\n";

// ARGV: member, ttl, margin. 0: the lease had expired (or was released).
constexpr std::string_view renew_script =
    SUBRELAY_NOW
    "local key, member, ttl, margin = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now)\n"
    "if not redis.call('ZSCORE', key, member) then return 0 end\n"
    "redis.call('ZADD', key, 'XX', now + ttl, member)\n"
    SUBRELAY_EXPIRE_AFTER_LAST_LEASE
    "return 1\n";

// Sliding windows: a sorted set of unique members scored by the time they
// were added; those older than the window are dropped before counting.
// ARGV: limit, window, member, margin. {1, 0}: taken; {0, ms}: full until
// the oldest leaves the window in ms.
constexpr std::string_view take_script =
    SUBRELAY_NOW
    "local key, limit, window, member, margin = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)\n"
    "if redis.call('ZCARD', key) < limit then\n"
    "  redis.call('ZADD', key, now, member)\n"
    "  " SUBRELAY_EXPIRE_AFTER_WINDOW
    "  return {1, 0}\n"
    "end\n"
    "local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')\n"
    "return {0, tonumber(oldest[2]) + window - now}\n";

// ARGV: limit, window, margin, then the members to add, all or none.
constexpr std::string_view reserve_script =
    SUBRELAY_NOW
    "local key, limit, window, margin = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)\n"
    "if redis.call('ZCARD', key) + #ARGV - 3 > limit then return 0 end\n"
    "for i = 4, #ARGV do redis.call('ZADD', key, now, ARGV[i]) end\n"
    SUBRELAY_EXPIRE_AFTER_WINDOW
    "return 1\n";

// ARGV: window, member, margin. Returns the count in the window, this one included.
constexpr std::string_view failure_script =
    SUBRELAY_NOW
    "local key, window, member, margin = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)\n"
    "redis.call('ZADD', key, now, member)\n"
    SUBRELAY_EXPIRE_AFTER_WINDOW
    "return redis.call('ZCARD', key)\n";

#undef SUBRELAY_NOW
#undef SUBRELAY_EXPIRE_AFTER_LAST_LEASE
#undef SUBRELAY_EXPIRE_AFTER_WINDOW

constexpr std::array<std::string_view, static_cast<std::size_t>(script::count)> scripts{
    acquire_script, renew_script, take_script, reserve_script, failure_script};

std::string ms(milliseconds d) { return std::to_string(std::max<milliseconds::rep>(d.count(), 1)); }

std::string random_node_id() {
    std::random_device device;
    std::uniform_int_distribution<unsigned> byte(0, 255);
    std::string out;
    for (int i = 0; i < 8; ++i) {
        std::array<char, 3> hex{};
        std::snprintf(hex.data(), hex.size(), "%02x", byte(device));
        out += hex.data();
    }
    return out;
}

std::string nodes_text(unsigned n) { return std::to_string(n) + (n == 1 ? " node" : " nodes"); }

}  // namespace

// What the library's thread holds while Redis answers: the connection and
// the scripts' hashes. A failed command is remembered (failure()), and the
// thread then drops the connection and marks Redis unavailable.
class shared_limits::connection {
public:
    connection(std::unique_ptr<redis_connection> redis, std::string password)
        : redis_(std::move(redis)), password_(std::move(password)) {}

    // Loads the scripts and checks that Redis takes writes (a replica or a
    // full server would refuse every lease). False with failure() set.
    bool prepare(const std::string& probe_key) {
        for (std::size_t i = 0; i < scripts.size(); ++i) {
            auto r = call({"SCRIPT", "LOAD", std::string(scripts[i])});
            if (!r) return false;
            if (r->type != reply::kind::string) return fail("SCRIPT LOAD gave no hash");
            shas_[i] = r->text;
        }
        return call({"SET", probe_key, "1", "PX", ms(reconnect_interval * 10)}).has_value();
    }

    // One command; nullopt when it failed, an error reply included.
    std::optional<reply> call(const std::vector<std::string>& argv) {
        if (!failure_.empty()) return std::nullopt;
        std::string why;
        auto r = redis_->command(argv, why);
        if (!r) {
            fail(why);
            return std::nullopt;
        }
        if (r->is_error()) {
            fail(argv[0] + ": " + reason_of_error(r->text, password_));
            return std::nullopt;
        }
        return r;
    }

    // Runs a script by its hash (EVALSHA), or by its text when Redis no
    // longer has it (NOSCRIPT: Redis restarted behind a proxy, SCRIPT
    // FLUSH, a failover), which loads it again.
    std::optional<reply> eval(script s, const std::string& key, std::vector<std::string> args) {
        if (!failure_.empty()) return std::nullopt;
        const auto index = static_cast<std::size_t>(s);
        std::vector<std::string> argv{"EVALSHA", shas_[index], "1", key};
        argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
        std::string why;
        auto r = redis_->command(argv, why);
        if (r && r->is_error() && r->text.starts_with("NOSCRIPT")) {
            argv[0] = "EVAL";
            argv[1] = std::string(scripts[index]);
            r = redis_->command(argv, why);
        }
        if (!r) {
            fail(why);
            return std::nullopt;
        }
        if (r->is_error()) {
            fail("script: " + reason_of_error(r->text, password_));
            return std::nullopt;
        }
        return r;
    }

    // An integer reply, or nullopt (and failure set) for anything else.
    std::optional<long long> eval_integer(script s, const std::string& key, std::vector<std::string> args) {
        auto r = eval(s, key, std::move(args));
        if (!r) return std::nullopt;
        if (r->type != reply::kind::integer) {
            fail("a script gave an unexpected reply");
            return std::nullopt;
        }
        return r->integer;
    }

    bool fail(std::string why) {
        if (failure_.empty()) failure_ = why.empty() ? "unknown error" : std::move(why);
        return false;
    }
    [[nodiscard]] const std::string& failure() const { return failure_; }

private:
    std::unique_ptr<redis_connection> redis_;
    std::string password_;
    std::array<std::string, scripts.size()> shas_;
    std::string failure_;
};

shared_limits::shared_limits(const conf::cluster_config& cfg, transition_callback on_transition)
    : endpoint_(cfg.redis.value()),
      key_prefix_(cfg.key_prefix),
      timeout_(cfg.timeout_ms),
      nodes_(std::max<unsigned>(cfg.nodes, 1)),
      location_(endpoint_.location()),
      node_id_(random_node_id()),
      on_transition_(std::move(on_transition)) {
    thread_ = std::thread([this] { run(); });
}

shared_limits::~shared_limits() { stop(); }

unsigned shared_limits::share(unsigned limit, unsigned nodes) {
    if (limit == 0) return 0;
    if (nodes <= 1) return limit;
    return std::max(1U, limit / nodes);
}

std::string shared_limits::full_key(std::string_view kind, std::string_view key) const {
    std::string out;
    out.reserve(key_prefix_.size() + kind.size() + key.size());
    out += key_prefix_;
    out += kind;
    out += key;
    return out;
}

std::string shared_limits::unique_member() { return node_id_ + "-" + std::to_string(++sequence_); }

boost::asio::awaitable<lease_result> shared_limits::acquire_lease(std::string_view key, unsigned limit,
                                                                  milliseconds ttl) {
    if (limit == 0) return ready(lease_result{lease_status::granted, {}});
    lease wanted{full_key("lease:", key), unique_member()};
    operation<lease_result> op = [wanted, limit, ttl](connection& c) -> lease_result {
        const auto r = c.eval_integer(script::acquire, wanted.key,
                                      {std::to_string(limit), ms(ttl), wanted.member, ms(expiry_margin)});
        if (!r) return {};
        if (*r == 1) return {lease_status::granted, wanted};
        return {lease_status::full, {}};
    };
    return submit(std::move(op), lease_result{});
}

boost::asio::awaitable<renew_status> shared_limits::renew_lease(const lease& held, milliseconds ttl) {
    if (held.empty()) return ready(renew_status::renewed);
    operation<renew_status> op = [held, ttl](connection& c) -> renew_status {
        const auto r = c.eval_integer(script::renew, held.key, {held.member, ms(ttl), ms(expiry_margin)});
        if (!r) return renew_status::unavailable;
        return *r == 1 ? renew_status::renewed : renew_status::lost;
    };
    return submit(std::move(op), renew_status::unavailable);
}

void shared_limits::release_lease(const lease& held) noexcept {
    if (held.empty()) return;
    try {
        post_command({"ZREM", held.key, held.member});
    } catch (...) {
        // Out of memory: the lease expires by itself.
    }
}

boost::asio::awaitable<take_result> shared_limits::take(std::string_view key, unsigned limit, milliseconds window) {
    if (limit == 0) return ready(take_result{take_status::granted, milliseconds{0}});
    operation<take_result> op = [k = full_key("window:", key), member = unique_member(), limit,
                                 window](connection& c) -> take_result {
        const auto r = c.eval(script::take, k, {std::to_string(limit), ms(window), member, ms(expiry_margin)});
        if (!r) return {};
        if (r->type != reply::kind::array || r->elements.size() != 2 ||
            r->elements[0].type != reply::kind::integer || r->elements[1].type != reply::kind::integer) {
            c.fail("a script gave an unexpected reply");
            return {};
        }
        if (r->elements[0].integer == 1) return {take_status::granted, milliseconds{0}};
        return {take_status::wait, milliseconds{std::max(1LL, r->elements[1].integer)}};
    };
    return submit(std::move(op), take_result{});
}

boost::asio::awaitable<reserve_result> shared_limits::reserve(std::string_view key, unsigned limit,
                                                              milliseconds window, unsigned count) {
    if (limit == 0 || count == 0) return ready(reserve_result{reserve_status::granted, {}});
    reservation wanted{full_key("window:", key), {}};
    const std::string base = unique_member();
    wanted.members.reserve(count);
    for (unsigned i = 0; i < count; ++i) wanted.members.push_back(base + "." + std::to_string(i));
    operation<reserve_result> op = [wanted, limit, window](connection& c) -> reserve_result {
        std::vector<std::string> args{std::to_string(limit), ms(window), ms(expiry_margin)};
        args.insert(args.end(), wanted.members.begin(), wanted.members.end());
        const auto r = c.eval_integer(script::reserve, wanted.key, std::move(args));
        if (!r) return {};
        if (*r == 1) return {reserve_status::granted, wanted};
        return {reserve_status::refused, {}};
    };
    return submit(std::move(op), reserve_result{});
}

void shared_limits::release(const reservation& held) noexcept {
    if (held.empty()) return;
    try {
        std::vector<std::string> argv{"ZREM", held.key};
        argv.insert(argv.end(), held.members.begin(), held.members.end());
        post_command(std::move(argv));
    } catch (...) {
        // Out of memory: the reservation counts until it leaves its window.
    }
}

boost::asio::awaitable<bool> shared_limits::set_with_ttl(std::string_view key, std::string_view value,
                                                         milliseconds ttl) {
    operation<bool> op = [k = full_key("value:", key), v = std::string(value), ttl](connection& c) {
        return c.call({"SET", k, v, "PX", ms(ttl)}).has_value();
    };
    return submit(std::move(op), false);
}

boost::asio::awaitable<value_result> shared_limits::get(std::string_view key) {
    operation<value_result> op = [k = full_key("value:", key)](connection& c) -> value_result {
        const auto r = c.call({"GET", k});
        if (!r) return {};
        if (r->type == reply::kind::nil) return {true, std::nullopt};
        if (r->type != reply::kind::string) {
            c.fail("GET gave an unexpected reply");
            return {};
        }
        return {true, r->text};
    };
    return submit(std::move(op), value_result{});
}

value_result shared_limits::get_now(std::string_view key) {
    struct waiting_job final : job {
        explicit waiting_job(std::string k) : key(std::move(k)) {}
        void run(connection* conn) noexcept override {
            if (conn == nullptr) return;
            try {
                const auto r = conn->call({"GET", key});
                if (!r) return;
                if (r->type == reply::kind::nil) {
                    result = {true, std::nullopt};
                } else if (r->type == reply::kind::string) {
                    result = {true, r->text};
                } else {
                    conn->fail("GET gave an unexpected reply");
                }
            } catch (...) {
                result = {};
            }
        }
        void answer() noexcept override {
            try {
                done.set_value(result);
            } catch (...) {
                // set twice cannot happen; nothing to do
            }
        }
        std::string key;
        value_result result;
        std::promise<value_result> done;
    };
    try {
        auto j = std::make_unique<waiting_job>(full_key("value:", key));
        std::future<value_result> answer = j->done.get_future();
        std::unique_ptr<job> queued = std::move(j);
        if (!push(queued)) return {};
        // A little past the command's own timeout: the library's thread gives up first.
        if (answer.wait_for(timeout_ + milliseconds(100)) != std::future_status::ready) return {};
        return answer.get();
    } catch (...) {
        return {};
    }
}

boost::asio::awaitable<count_result> shared_limits::add_failure(std::string_view key, milliseconds window) {
    operation<count_result> op = [k = full_key("failures:", key), member = unique_member(),
                                  window](connection& c) -> count_result {
        const auto r = c.eval_integer(script::failure, k, {ms(window), member, ms(expiry_margin)});
        if (!r) return {};
        return {true, static_cast<std::uint64_t>(std::max(0LL, *r))};
    };
    return submit(std::move(op), count_result{});
}

void shared_limits::clear_failures(std::string_view key) noexcept {
    try {
        post_command({"DEL", full_key("failures:", key)});
    } catch (...) {
        // Out of memory: the failures leave their window by themselves.
    }
}

void shared_limits::post_command(std::vector<std::string> argv) noexcept {
    struct fire_and_forget final : job {
        explicit fire_and_forget(std::vector<std::string> a) : argv(std::move(a)) {}
        void run(connection* conn) noexcept override {
            if (conn == nullptr) return;
            try {
                conn->call(argv);
            } catch (...) {
                conn->fail("out of memory");
            }
        }
        std::vector<std::string> argv;
    };
    try {
        std::unique_ptr<job> j = std::make_unique<fire_and_forget>(std::move(argv));
        push(j);  // when Redis cannot be reached, the job is dropped
    } catch (...) {
        // Out of memory: dropped too.
    }
}

bool shared_limits::push(std::unique_ptr<job>& j) {
    if (state_.load() == state::down) return false;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || queue_.size() >= max_queued) return false;
        queue_.push_back(std::move(j));
    }
    wake_.notify_one();
    return true;
}

void shared_limits::mark_down(const std::string& reason) {
    // (reason must not live in *conn_, which goes first.)
    conn_.reset();
    const state before = state_.exchange(state::down);
    if (before == state::down) {
        spdlog::debug("cluster: Redis at {} is still unreachable ({})", location_, reason);
        return;
    }
    spdlog::warn("cluster: Redis at {} is unreachable ({}); each node keeps its share of each limit "
                 "(limit / {}) until it is back",
                 location_, reason, nodes_text(nodes_));
    if (before == state::up) {
        ++transitions_;
        if (on_transition_) on_transition_(false);
    }
}

void shared_limits::connect() {
    std::string why;
    auto redis = redis_connection::open(endpoint_, timeout_, why);
    if (redis) {
        auto c = std::make_unique<connection>(std::move(redis), endpoint_.password);
        if (c->prepare(full_key("node:", node_id_))) {
            conn_ = std::move(c);
            const state before = state_.exchange(state::up);
            if (before == state::connecting) {
                spdlog::info("cluster: limits are shared through Redis at {} by {}", location_, nodes_text(nodes_));
            } else {
                spdlog::info("cluster: Redis is reachable again; limits are shared");
            }
            ++transitions_;
            if (on_transition_) on_transition_(true);
            return;
        }
        why = c->failure();
    }
    mark_down(why);
}

void shared_limits::run() {
    // A write to a connection Redis has closed must fail with EPIPE here,
    // not stop the process, whatever the program does with SIGPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

    connect();
    auto next_attempt = std::chrono::steady_clock::now() + reconnect_interval;
    std::unique_lock lock(mutex_);
    const auto woken = [this] { return stopping_ || !queue_.empty(); };
    for (;;) {
        if (stopping_) break;
        if (!queue_.empty()) {
            std::unique_ptr<job> j = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            j->run(conn_.get());
            if (conn_ && !conn_->failure().empty()) {
                const std::string reason = conn_->failure();  // mark_down drops the connection
                mark_down(reason);
                next_attempt = std::chrono::steady_clock::now() + reconnect_interval;
            }
            j->answer();  // after mark_down: the caller sees available() as it is
            j.reset();
            lock.lock();
            continue;
        }
        if (conn_) {
            wake_.wait(lock, woken);
            continue;
        }
        if (wake_.wait_until(lock, next_attempt, woken)) continue;
        lock.unlock();
        connect();
        next_attempt = std::chrono::steady_clock::now() + reconnect_interval;
        lock.lock();
    }
    // Stopping: what is still queued is answered `unavailable`.
    std::deque<std::unique_ptr<job>> pending;
    pending.swap(queue_);
    lock.unlock();
    for (auto& j : pending) j->complete(nullptr);
    pending.clear();
    conn_.reset();
    if (state_.exchange(state::stopped) == state::up) {
        ++transitions_;
        if (on_transition_) on_transition_(false);
    }
}

void shared_limits::stop() {
    std::lock_guard stop_lock(stop_mutex_);
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

}  // namespace subrelay::cluster
