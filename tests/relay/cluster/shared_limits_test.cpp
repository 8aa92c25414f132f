// shared_limits against a real redis-server, with two instances as two
// nodes of a cluster. Every wait is for an event (a reply, a condition
// polled until a deadline), never a fixed sleep.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "relay/cluster/redis_connection.hpp"
#include "relay/cluster/shared_limits.hpp"
#include "tests/relay/cluster/redis_server.hpp"
#include "tests/relay/temp_dir.hpp"

namespace subrelay::cluster {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using test_support::redis_server;

// Every log line of the test binary, from any thread.
class capture_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::vector<std::string> lines() {
        std::lock_guard lock(mutex_);
        return lines_;
    }
    void clear() {
        std::lock_guard lock(mutex_);
        lines_.clear();
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        lines_.push_back(std::string(spdlog::level::to_string_view(msg.level).data(),
                                     spdlog::level::to_string_view(msg.level).size()) +
                         " " + std::string(msg.payload.data(), msg.payload.size()));
    }
    void flush_() override {}

private:
    std::vector<std::string> lines_;
};

// Installed once, before any library thread logs; each test starts it empty.
capture_sink& log_sink() {
    static const std::shared_ptr<capture_sink> sink = [] {
        auto s = std::make_shared<capture_sink>();
        auto logger = std::make_shared<spdlog::logger>("cluster-test", s);
        logger->set_level(spdlog::level::trace);  // the debug lines must not show a password either
        spdlog::set_default_logger(logger);
        return s;
    }();
    return *sink;
}

std::vector<std::string> lines_with(std::string_view text) {
    std::vector<std::string> out;
    for (auto& l : log_sink().lines()) {
        if (l.find(text) != std::string::npos) out.push_back(l);
    }
    return out;
}

// Runs one awaitable to completion on an io_context of its own (which the
// pending call must keep busy until it resumes) and returns its result.
template <typename T>
T await(asio::awaitable<T> a) {
    asio::io_context io;
    auto f = asio::co_spawn(io, std::move(a), asio::use_future);
    io.run();
    return f.get();
}

// Polls `condition` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// Redis's clock, which the scripts go by, in milliseconds.
long long redis_now_ms(test_support::redis_client& redis) {
    const auto t = redis.strings({"TIME"});
    if (t.size() != 2) return 0;
    return std::stoll(t[0]) * 1000 + std::stoll(t[1]) / 1000;
}

class shared_limits_test : public ::testing::Test {
protected:
    void SetUp() override {
        log_sink().clear();
        dir_ = test_support::make_temp_dir("subrelay-cluster");
        server_ = std::make_unique<redis_server>(dir_, server_args());
        server_->start();
    }
    void TearDown() override {
        nodes_.clear();  // joined before the server goes
        server_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    virtual std::vector<std::string> server_args() { return {}; }

    [[nodiscard]] conf::cluster_config config() const {
        conf::cluster_config c;
        conf::redis_endpoint e;
        e.socket = server_->socket();
        c.redis = e;
        c.nodes = 2;
        c.key_prefix = "test:";
        c.timeout_ms = 500;
        return c;
    }

    // A node, once it is connected.
    shared_limits& node(const conf::cluster_config& c, shared_limits::transition_callback cb = {}) {
        nodes_.push_back(std::make_unique<shared_limits>(c, std::move(cb)));
        auto& n = *nodes_.back();
        EXPECT_TRUE(eventually([&] { return n.available(); })) << "not connected";
        return n;
    }
    shared_limits& node() { return node(config()); }

    std::filesystem::path dir_;
    std::unique_ptr<redis_server> server_;
    std::vector<std::unique_ptr<shared_limits>> nodes_;
};

TEST(shared_limits_share, is_a_fair_part_and_at_least_one) {
    EXPECT_EQ(shared_limits::share(3, 2), 1U);
    EXPECT_EQ(shared_limits::share(30, 4), 7U);
    EXPECT_EQ(shared_limits::share(30, 3), 10U);
    EXPECT_EQ(shared_limits::share(10000, 3), 3333U);
    EXPECT_EQ(shared_limits::share(1, 5), 1U);
    EXPECT_EQ(shared_limits::share(5, 1), 5U);
    EXPECT_EQ(shared_limits::share(5, 0), 5U);
    EXPECT_EQ(shared_limits::share(0, 3), 0U) << "0 stays no limit";
}

TEST(shared_limits_reasons, error_replies_lose_the_password_and_their_period) {
    EXPECT_EQ(reason_of_error("ERR bad hunter2 and hunter2.", "hunter2"), "ERR bad *** and ***");
    EXPECT_EQ(reason_of_error("NOAUTH Authentication required.", ""), "NOAUTH Authentication required");
    EXPECT_EQ(reason_of_error("aaaa", "aa"), "******");
}

TEST_F(shared_limits_test, leases_never_exceed_the_limit_across_two_nodes) {
    auto& a = node();
    auto& b = node();
    // 20 callers on each node ask at once for one of 3 leases.
    asio::io_context io;
    std::vector<std::future<lease_result>> results;
    for (int i = 0; i < 20; ++i) {
        results.push_back(asio::co_spawn(io, a.acquire_lease("upstream:relay@contoso.com", 3, 60s), asio::use_future));
        results.push_back(asio::co_spawn(io, b.acquire_lease("upstream:relay@contoso.com", 3, 60s), asio::use_future));
    }
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    std::vector<lease> held;
    int full = 0;
    for (auto& f : results) {
        auto r = f.get();
        if (r.status == lease_status::granted) held.push_back(r.held);
        if (r.status == lease_status::full) ++full;
    }
    EXPECT_EQ(held.size(), 3U);
    EXPECT_EQ(full, 37);

    // One given back makes room for one more, on either node.
    a.release_lease(held[0]);
    EXPECT_TRUE(eventually([&] { return await(b.acquire_lease("upstream:relay@contoso.com", 3, 60s)).status ==
                                        lease_status::granted; }));
    EXPECT_EQ(await(a.acquire_lease("upstream:relay@contoso.com", 3, 60s)).status, lease_status::full);
    // Another key is another limit.
    EXPECT_EQ(await(a.acquire_lease("upstream:other@contoso.com", 3, 60s)).status, lease_status::granted);
}

TEST_F(shared_limits_test, a_released_lease_is_free_at_once_on_its_node) {
    auto& a = node();
    auto r = await(a.acquire_lease("k", 1, 60s));
    ASSERT_EQ(r.status, lease_status::granted);
    EXPECT_FALSE(r.held.empty());
    EXPECT_EQ(await(a.acquire_lease("k", 1, 60s)).status, lease_status::full);
    a.release_lease(r.held);
    // A node's commands run in order: the release is done before the next call.
    EXPECT_EQ(await(a.acquire_lease("k", 1, 60s)).status, lease_status::granted);
}

TEST_F(shared_limits_test, an_unreleased_lease_expires_after_its_ttl) {
    auto& a = node();
    auto& b = node();
    // Node a takes the only lease and "crashes" (never releases it).
    const auto held = await(a.acquire_lease("k", 1, 2s));
    ASSERT_EQ(held.status, lease_status::granted);
    EXPECT_EQ(await(b.acquire_lease("k", 1, 2s)).status, lease_status::full);
    EXPECT_TRUE(eventually([&] { return await(b.acquire_lease("k", 1, 60s)).status == lease_status::granted; }));
    // a's lease is gone for good.
    EXPECT_EQ(await(a.renew_lease(held.held, 60s)), renew_status::lost);
}

TEST_F(shared_limits_test, renewing_keeps_a_lease_and_a_released_or_expired_one_is_lost) {
    auto& a = node();
    auto& b = node();
    const auto held = await(a.acquire_lease("k", 1, 2s));
    ASSERT_EQ(held.status, lease_status::granted);
    EXPECT_EQ(await(a.renew_lease(held.held, 1h)), renew_status::renewed);
    // Renewed for an hour, it does not expire after its first 2 s: the key's
    // expiry followed the renewal.
    auto redis = server_->client();
    const auto pttl = redis.integer({"PTTL", held.held.key});
    ASSERT_TRUE(pttl.has_value());
    EXPECT_GT(*pttl, 3'000'000);
    EXPECT_EQ(await(b.acquire_lease("k", 1, 2s)).status, lease_status::full);

    a.release_lease(held.held);
    EXPECT_EQ(await(a.renew_lease(held.held, 1h)), renew_status::lost);

    const auto short_lease = await(b.acquire_lease("k", 1, 100ms));
    ASSERT_EQ(short_lease.status, lease_status::granted);
    EXPECT_TRUE(eventually([&] { return await(a.acquire_lease("k", 1, 1h)).status == lease_status::granted; }));
    EXPECT_EQ(await(b.renew_lease(short_lease.held, 1h)), renew_status::lost);
}

TEST_F(shared_limits_test, a_sliding_window_grants_its_limit_and_reports_the_wait) {
    auto& a = node();
    auto& b = node();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(await(a.take("mailbox:relay", 5, 60s)).status, take_status::granted);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(await(b.take("mailbox:relay", 5, 60s)).status, take_status::granted);
    const auto full = await(a.take("mailbox:relay", 5, 60s));
    EXPECT_EQ(full.status, take_status::wait);
    EXPECT_GT(full.wait, 0ms);
    EXPECT_LE(full.wait, 60s);
    EXPECT_EQ(await(b.take("mailbox:relay", 5, 60s)).status, take_status::wait);

    // In a short window, the wait ends and there is room again.
    ASSERT_EQ(await(a.take("short", 1, 300ms)).status, take_status::granted);
    const auto wait = await(b.take("short", 1, 300ms));
    if (wait.status == take_status::wait) {
        EXPECT_LE(wait.wait, 300ms);
    }
    EXPECT_TRUE(eventually([&] { return await(b.take("short", 1, 300ms)).status == take_status::granted; }));
}

TEST_F(shared_limits_test, reservations_count_until_released) {
    auto& a = node();
    auto& b = node();
    const auto four = await(a.reserve("account:scanner:recipients", 10, 24h, 4));
    ASSERT_EQ(four.status, reserve_status::granted);
    EXPECT_EQ(four.held.members.size(), 4U);
    const auto six = await(b.reserve("account:scanner:recipients", 10, 24h, 6));
    ASSERT_EQ(six.status, reserve_status::granted);
    EXPECT_EQ(await(a.reserve("account:scanner:recipients", 10, 24h, 1)).status, reserve_status::refused);
    // All or nothing: a refused reservation took nothing.
    auto redis = server_->client();
    EXPECT_EQ(redis.integer({"ZCARD", four.held.key}), 10);

    // RSET: b gives its six back, and they fit again.
    b.release(six.held);
    const auto again = await(b.reserve("account:scanner:recipients", 10, 24h, 6));
    EXPECT_EQ(again.status, reserve_status::granted);
    EXPECT_EQ(await(a.reserve("account:scanner:recipients", 10, 24h, 1)).status, reserve_status::refused);

    // Not released (committed), a reservation counts until it leaves its window.
    ASSERT_EQ(await(a.reserve("account:scanner:messages", 2, 300ms, 2)).status, reserve_status::granted);
    EXPECT_TRUE(eventually([&] {
        return await(b.reserve("account:scanner:messages", 2, 300ms, 2)).status == reserve_status::granted;
    }));
    // More than the limit never fits.
    EXPECT_EQ(await(a.reserve("account:other", 2, 60s, 3)).status, reserve_status::refused);
}

TEST_F(shared_limits_test, no_limit_asks_nothing_of_redis) {
    auto& a = node();
    const auto l = await(a.acquire_lease("k", 0, 60s));
    EXPECT_EQ(l.status, lease_status::granted);
    EXPECT_TRUE(l.held.empty());
    a.release_lease(l.held);
    EXPECT_EQ(await(a.renew_lease(l.held, 60s)), renew_status::renewed);
    EXPECT_EQ(await(a.take("k", 0, 60s)).status, take_status::granted);
    const auto r = await(a.reserve("k", 0, 60s, 5));
    EXPECT_EQ(r.status, reserve_status::granted);
    EXPECT_TRUE(r.held.empty());
    EXPECT_EQ(await(a.reserve("k", 5, 60s, 0)).status, reserve_status::granted);
    auto redis = server_->client();
    EXPECT_TRUE(redis.strings({"KEYS", "test:lease:*"}).empty());
    EXPECT_TRUE(redis.strings({"KEYS", "test:window:*"}).empty());
}

TEST_F(shared_limits_test, failures_are_counted_in_a_sliding_window_and_locks_expire) {
    auto& a = node();
    auto& b = node();
    EXPECT_EQ(await(a.add_failure("account:scanner", 1h)).count, 1U);
    EXPECT_EQ(await(b.add_failure("account:scanner", 1h)).count, 2U);
    const auto third = await(a.add_failure("account:scanner", 1h));
    EXPECT_TRUE(third.available);
    EXPECT_EQ(third.count, 3U);
    a.clear_failures("account:scanner");
    EXPECT_EQ(await(a.add_failure("account:scanner", 1h)).count, 1U);
    // Failures leave their window (by Redis's clock).
    EXPECT_EQ(await(a.add_failure("short", 200ms)).count, 1U);
    auto redis = server_->client();
    const auto added = redis.strings({"ZRANGE", "test:failures:short", "0", "0", "WITHSCORES"});
    ASSERT_EQ(added.size(), 2U);
    const long long window_end = std::stoll(added[1]) + 200;
    EXPECT_TRUE(eventually([&] { return redis_now_ms(redis) > window_end; }));
    EXPECT_EQ(await(b.add_failure("short", 200ms)).count, 1U);

    // A lock set on one node is seen by the other until it expires.
    EXPECT_TRUE(await(a.set_with_ttl("lock:scanner", "60", 60s)));
    const auto seen = await(b.get("lock:scanner"));
    EXPECT_TRUE(seen.available);
    EXPECT_EQ(seen.value, std::optional<std::string>("60"));
    const auto none = await(b.get("lock:nobody"));
    EXPECT_TRUE(none.available);
    EXPECT_FALSE(none.value.has_value());
    EXPECT_TRUE(await(a.set_with_ttl("lock:short", "1", 100ms)));
    EXPECT_TRUE(eventually([&] {
        const auto v = await(b.get("lock:short"));
        return v.available && !v.value;
    }));
}

TEST_F(shared_limits_test, every_key_has_the_prefix_and_expires) {
    auto& a = node();
    await(a.acquire_lease("k", 2, 60s));
    await(a.take("k", 2, 60s));
    await(a.reserve("r", 5, 24h, 2));
    await(a.add_failure("f", 1h));
    await(a.set_with_ttl("v", "x", 60s));
    auto redis = server_->client();
    const auto keys = redis.strings({"KEYS", "*"});
    EXPECT_GE(keys.size(), 5U);
    for (const auto& k : keys) {
        EXPECT_TRUE(k.starts_with("test:")) << k;
        const auto pttl = redis.integer({"PTTL", k});
        ASSERT_TRUE(pttl.has_value()) << k;
        EXPECT_GT(*pttl, 0) << k << " never expires";
    }
    // A window's key outlives its window a little, not much.
    const auto window_ttl = redis.integer({"PTTL", "test:window:k"});
    ASSERT_TRUE(window_ttl.has_value());
    EXPECT_GT(*window_ttl, 60'000 - 30'000);
    EXPECT_LE(*window_ttl, 61'000);
    const auto day_ttl = redis.integer({"PTTL", "test:window:r"});
    ASSERT_TRUE(day_ttl.has_value());
    EXPECT_GT(*day_ttl, 23 * 3'600'000LL);
}

TEST_F(shared_limits_test, scripts_flushed_from_redis_are_sent_again) {
    auto& a = node();
    ASSERT_EQ(await(a.take("k", 5, 60s)).status, take_status::granted);
    auto redis = server_->client();
    ASSERT_EQ(redis.text({"SCRIPT", "FLUSH"}), std::optional<std::string>("OK"));
    EXPECT_EQ(await(a.take("k", 5, 60s)).status, take_status::granted);  // NOSCRIPT, then EVAL
    EXPECT_EQ(await(a.acquire_lease("k", 1, 60s)).status, lease_status::granted);
    EXPECT_TRUE(a.available());
    EXPECT_TRUE(lines_with("unreachable").empty());
}

TEST_F(shared_limits_test, the_caller_resumes_on_its_own_executor) {
    auto& a = node();
    asio::io_context io;
    auto strand = asio::make_strand(io);
    std::atomic<bool> on_strand{false};
    std::atomic<bool> on_this_thread{false};
    const auto self = std::this_thread::get_id();
    asio::co_spawn(
        strand,
        [&]() -> asio::awaitable<void> {
            const auto r = co_await a.take("k", 5, 60s);
            on_strand = strand.running_in_this_thread() && r.status == take_status::granted;
            on_this_thread = std::this_thread::get_id() == self;
        },
        asio::detached);
    io.run();  // returns only once the call has resumed: it kept the context busy
    EXPECT_TRUE(on_strand);
    EXPECT_TRUE(on_this_thread);
}

TEST_F(shared_limits_test, a_killed_redis_makes_calls_unavailable_at_once_and_warns_once) {
    std::vector<bool> changes;
    std::mutex changes_mutex;
    auto& a = node(config(), [&](bool up) {
        std::lock_guard lock(changes_mutex);
        changes.push_back(up);
    });
    auto& b = node();
    const auto held = await(a.acquire_lease("k", 3, 60s));
    ASSERT_EQ(held.status, lease_status::granted);
    EXPECT_EQ(a.transitions(), 1U);

    server_->kill();
    // The first call finds the connection closed; every later one is
    // answered without asking Redis.
    EXPECT_EQ(await(a.acquire_lease("k", 3, 60s)).status, lease_status::unavailable);
    // Marked down before the answer is posted: a caller that hears
    // `unavailable` finds available() false (the delivery goes by it).
    EXPECT_FALSE(a.available());
    for (int i = 0; i < 50; ++i) {
        EXPECT_EQ(await(a.take("k", 3, 60s)).status, take_status::unavailable);
        EXPECT_EQ(await(a.renew_lease(held.held, 60s)), renew_status::unavailable);
        EXPECT_EQ(await(a.reserve("k", 3, 60s, 1)).status, reserve_status::unavailable);
        EXPECT_FALSE(await(a.add_failure("k", 60s)).available);
        EXPECT_FALSE(await(a.get("k")).available);
        EXPECT_FALSE(await(a.set_with_ttl("k", "v", 60s)));
    }
    a.release_lease(held.held);  // fire and forget: nothing happens, nothing throws
    EXPECT_EQ(await(b.take("k", 3, 60s)).status, take_status::unavailable);

    const auto socket = server_->socket().string();
    // One warning per node, naming the socket and the fallback share.
    const auto warnings = lines_with("is unreachable");
    ASSERT_EQ(warnings.size(), 2U) << ::testing::PrintToString(log_sink().lines());
    for (const auto& w : warnings) {
        EXPECT_THAT(w, AllOf(HasSubstr("warning cluster: Redis at " + socket + " is unreachable ("),
                             HasSubstr("); each node keeps its share of each limit (limit / 2 nodes) until it is back")));
    }
    EXPECT_EQ(a.transitions(), 2U);
    std::lock_guard lock(changes_mutex);
    EXPECT_EQ(changes, (std::vector<bool>{true, false}));
}

TEST_F(shared_limits_test, restarting_redis_on_the_same_socket_brings_it_back) {
    auto& a = node();
    ASSERT_EQ(await(a.take("k", 1, 60s)).status, take_status::granted);
    server_->kill();
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::unavailable);
    ASSERT_FALSE(a.available());

    server_->start();  // a new, empty Redis: no scripts, no keys
    EXPECT_TRUE(eventually([&] { return a.available(); }));
    EXPECT_EQ(lines_with("cluster: Redis is reachable again; limits are shared").size(), 1U);
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::granted);
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::wait);
    EXPECT_EQ(lines_with("is unreachable").size(), 1U) << "one warning for the whole outage";
    EXPECT_EQ(a.transitions(), 3U);
}

TEST_F(shared_limits_test, a_node_started_before_redis_connects_when_it_comes) {
    server_->kill();
    std::filesystem::remove(server_->socket());
    auto& a = *nodes_.emplace_back(std::make_unique<shared_limits>(config()));
    EXPECT_TRUE(eventually([&] { return !lines_with("is unreachable").empty(); }));
    EXPECT_EQ(await(a.get("k")).available, false);
    EXPECT_THAT(lines_with("is unreachable").front(), HasSubstr("(no such file or directory)"));
    server_->start();
    EXPECT_TRUE(eventually([&] { return a.available(); }));
    EXPECT_TRUE(await(a.get("k")).available);
    EXPECT_EQ(lines_with("is unreachable").size(), 1U);
}

TEST_F(shared_limits_test, a_redis_that_does_not_answer_times_out) {
    auto c = config();
    c.timeout_ms = 300;
    auto& a = node(c);
    server_->pause();
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::unavailable);
    EXPECT_FALSE(a.available());
    const auto warnings = lines_with("is unreachable");
    ASSERT_EQ(warnings.size(), 1U);
    EXPECT_THAT(warnings.front(), HasSubstr("(no answer within 300 ms)"));
    server_->resume();
    EXPECT_TRUE(eventually([&] { return a.available(); }));
}

TEST_F(shared_limits_test, stop_completes_pending_calls_as_unavailable) {
    auto c = config();
    c.timeout_ms = 1000;
    auto& a = node(c);
    server_->pause();
    // The first call holds the library's thread until its timeout; the
    // others wait behind it. stop() must answer them all.
    asio::io_context io;
    std::vector<std::future<take_result>> results;
    for (int i = 0; i < 5; ++i) results.push_back(asio::co_spawn(io, a.take("k", 1, 60s), asio::use_future));
    io.poll();  // each call started: queued for the library's thread
    std::thread runner([&] { io.run(); });
    a.stop();
    runner.join();
    for (auto& f : results) EXPECT_EQ(f.get().status, take_status::unavailable);
    EXPECT_FALSE(a.available());
    // After stop, calls are answered at once.
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::unavailable);
    a.stop();  // twice is harmless
    server_->resume();
}

// With a password: connected, lost, refused; the password is in no line.
class shared_limits_password_test : public shared_limits_test {
protected:
    static constexpr std::string_view password = "S3cretRedisPassw0rd";
    std::vector<std::string> server_args() override { return {"--requirepass", std::string(password)}; }
};

TEST_F(shared_limits_password_test, the_password_never_appears_in_logs) {
    auto c = config();
    c.redis->password = std::string(password);
    auto& a = node(c);
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::granted);

    auto wrong = config();
    wrong.redis->password = "not-the-password";
    auto& b = *nodes_.emplace_back(std::make_unique<shared_limits>(wrong));
    EXPECT_TRUE(eventually([&] { return lines_with("is unreachable").size() == 1; }));
    EXPECT_FALSE(b.available());
    EXPECT_THAT(lines_with("is unreachable").front(), HasSubstr("WRONGPASS"));

    auto none = config();
    auto& n = *nodes_.emplace_back(std::make_unique<shared_limits>(none));
    EXPECT_TRUE(eventually([&] { return lines_with("is unreachable").size() == 2; }));
    EXPECT_FALSE(n.available());

    server_->kill();
    EXPECT_EQ(await(a.take("k", 1, 60s)).status, take_status::unavailable);
    EXPECT_TRUE(eventually([&] { return lines_with("is unreachable").size() == 3; }));
    server_->start();
    EXPECT_TRUE(eventually([&] { return a.available(); }));

    const auto lines = log_sink().lines();
    EXPECT_FALSE(lines.empty());
    for (const auto& l : lines) {
        EXPECT_THAT(l, Not(HasSubstr(password)));
        EXPECT_THAT(l, Not(HasSubstr("not-the-password")));
    }
}

}  // namespace
}  // namespace subrelay::cluster
