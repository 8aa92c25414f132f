// The delivery engine's time-dependent behaviour (backoff, lifetime, delay
// notice), driven by an injected clock: the clock jumps, nothing sleeps for
// the durations under test.
#include "relay/delivery/delivery.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "relay/delivery/rules.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace subrelay::relay {
namespace {

class delivery_clock : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-delivery");
        // The directory upstream cannot write here (a file stands where its
        // directory should be): every attempt fails temporarily.
        std::ofstream(dir_ / "blocker") << "x";
        cfg_.server.hostname = "relay.test";
        cfg_.upstream.kind = conf::upstream_kind::directory;
        cfg_.upstream.directory = dir_ / "blocker" / "out";
        cfg_.upstream.retry_initial_seconds = 300;
        cfg_.upstream.retry_max_seconds = 3600;
        cfg_.queue.max_lifetime_seconds = 5 * 24 * 3600;
        cfg_.queue.delay_warning_seconds = 0;
        spool_.emplace(dir_ / "spool");
        spool_->open();
    }
    void TearDown() override {
        if (delivery_) {
            asio::co_spawn(io_, delivery_->stop(), asio::detached);
            io_.run_for(std::chrono::seconds(5));
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string submit() {
        spool_envelope e;
        e.sender = "scanner@contoso.com";
        e.recipients = {"alice@example.org"};
        e.identity = "scanner@contoso.com";
        e.received_at = now_;
        return spool_->store(e, "Subject: report\r\n\r\nbody\r\n");
    }
    void start() {
        delivery_.emplace(io_, pool_, cfg_, *spool_, nullptr, [this] { return now_; });
        delivery_->start();
        run();
    }
    // Moves the clock on; the delivery looks at its due times again.
    void jump(std::int64_t seconds) {
        now_ += seconds;
        delivery_->clock_changed();
        run();
    }
    void run() {
        io_.restart();
        io_.run_for(std::chrono::milliseconds(1000));
    }
    queue_state state(const std::string& id) {
        auto s = state_store(spool_->dir()).load(id);
        return s.value_or(queue_state{});
    }

    fs::path dir_;
    conf::config cfg_;
    std::int64_t now_ = 1'800'000'000;
    asio::io_context io_{1};
    asio::thread_pool pool_{1};
    std::optional<spool> spool_;
    std::optional<delivery> delivery_;
};

TEST_F(delivery_clock, backoff_doubles_from_the_initial_wait_up_to_the_cap) {
    const std::string id = submit();
    const std::int64_t t0 = now_;
    start();
    EXPECT_EQ(state(id).attempts, 1u);
    EXPECT_EQ(state(id).next_attempt, t0 + 300);

    jump(100);  // not due yet: nothing happens
    EXPECT_EQ(state(id).attempts, 1u);

    jump(200);  // t0 + 300: due
    EXPECT_EQ(state(id).attempts, 2u);
    EXPECT_EQ(state(id).next_attempt, t0 + 300 + 600);

    jump(600);
    EXPECT_EQ(state(id).attempts, 3u);
    EXPECT_EQ(state(id).next_attempt, t0 + 900 + 1200);
    jump(1200);
    jump(2400);
    EXPECT_EQ(state(id).attempts, 5u);
    EXPECT_EQ(state(id).next_attempt - now_, 3600) << "capped at retry_max_seconds";
    EXPECT_NE(state(id).last_reply.find("451 4.3.0"), std::string::npos) << state(id).last_reply;
    EXPECT_EQ(spool_->list(), std::vector<std::string>{id});
}

TEST_F(delivery_clock, an_expired_message_bounces_to_its_sender_and_leaves) {
    cfg_.queue.max_lifetime_seconds = 3600;
    const std::string id = submit();
    start();
    EXPECT_EQ(state(id).attempts, 1u);
    EXPECT_NE(state(id).last_reply.find("blocker"), std::string::npos) << state(id).last_reply;
    jump(3600);
    auto ids = spool_->list();
    ASSERT_EQ(ids.size(), 1u) << "the original leaves, its bounce is queued";
    ASSERT_NE(ids[0], id);
    auto bounce = spool_->load(ids[0]);
    EXPECT_EQ(bounce.envelope.sender, "");
    EXPECT_EQ(bounce.envelope.recipients, std::vector<std::string>{"scanner@contoso.com"});
    EXPECT_NE(bounce.data.find("Action: failed"), std::string::npos);
    EXPECT_NE(bounce.data.find("Status: 4.4.7"), std::string::npos);
    EXPECT_NE(bounce.data.find("alice@example.org"), std::string::npos);
    // The attempts failed on our side (the output directory cannot be made):
    // that error names a local path, and no notice quotes it.
    EXPECT_EQ(bounce.data.find("blocker"), std::string::npos) << bounce.data;
    EXPECT_EQ(bounce.data.find("451 4.3.0"), std::string::npos) << bounce.data;
    EXPECT_FALSE(state_store(spool_->dir()).load(id).has_value()) << "its state goes with it";
}

TEST_F(delivery_clock, a_bounce_that_expires_is_not_answered) {
    cfg_.queue.max_lifetime_seconds = 3600;
    spool_envelope e;  // a bounce itself: null sender
    e.recipients = {"scanner@contoso.com"};
    e.received_at = now_;
    const std::string id = spool_->store(e, "Subject: Undelivered Mail\r\n\r\nbody\r\n");
    start();
    jump(3600);
    EXPECT_TRUE(spool_->list().empty()) << "no bounce of a bounce";
}

TEST_F(delivery_clock, one_delay_notice_after_the_warning_time) {
    cfg_.queue.delay_warning_seconds = 4 * 3600;
    const std::string id = submit();
    start();
    jump(3 * 3600);
    EXPECT_EQ(spool_->list().size(), 1u) << "not yet";
    jump(3600);
    auto ids = spool_->list();
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_TRUE(state(id).delay_warned);
    const std::string notice_id = ids[0] == id ? ids[1] : ids[0];
    auto notice = spool_->load(notice_id);
    EXPECT_EQ(notice.envelope.sender, "");
    EXPECT_NE(notice.data.find("Action: delayed"), std::string::npos);
    EXPECT_EQ(notice.data.find("blocker"), std::string::npos) << "an internal error (a local path) is not quoted";
    jump(4 * 3600);
    // The notice itself is queued (its own delivery fails here too) but no second notice.
    std::size_t notices = 0;
    for (const auto& other : spool_->list())
        if (other != id && spool_->load(other).envelope.sender.empty()) ++notices;
    EXPECT_EQ(notices, 1u);
}

// The control socket's verbs, as the daemon runs them.
class delivery_control : public delivery_clock {
protected:
    boost::json::object ask(boost::json::object request) {
        std::optional<boost::json::object> reply;
        asio::co_spawn(io_, delivery_->control(std::move(request)),
                       [&reply](std::exception_ptr, boost::json::object r) { reply = std::move(r); });
        run();
        EXPECT_TRUE(reply) << "no answer";
        return reply.value_or(boost::json::object{});
    }
    std::string text_of(const boost::json::object& reply) {
        return std::string(reply.at("results").as_array().at(0).at("text").as_string());
    }
};

TEST_F(delivery_control, hold_stops_the_retries_and_release_sends_at_once) {
    const std::string id = submit();
    start();
    ASSERT_EQ(state(id).attempts, 1u);
    EXPECT_EQ(text_of(ask({{"verb", "hold"}, {"ids", boost::json::array{boost::json::string(id)}}})), id + ": held");
    EXPECT_TRUE(state(id).held);
    jump(3600);
    EXPECT_EQ(state(id).attempts, 1u) << "a held message is not tried";
    EXPECT_EQ(text_of(ask({{"verb", "release"}, {"ids", boost::json::array{boost::json::string(id)}}})),
              id + ": released");
    EXPECT_FALSE(state(id).held);
    EXPECT_EQ(state(id).attempts, 2u) << "released means tried now";
    const auto status = ask({{"verb", "status"}});
    EXPECT_EQ(status.at("messages").at(id).at("status").as_string(), "waiting");
}

TEST_F(delivery_control, retry_tries_at_once_and_delete_forgets) {
    const std::string id = submit();
    start();
    ASSERT_EQ(state(id).attempts, 1u);
    EXPECT_EQ(text_of(ask({{"verb", "retry"}, {"ids", boost::json::array{boost::json::string(id)}}})),
              id + ": retry requested");
    EXPECT_EQ(state(id).attempts, 2u);
    EXPECT_EQ(text_of(ask({{"verb", "delete"}, {"ids", boost::json::array{boost::json::string(id)}}})),
              id + ": deleted");
    EXPECT_TRUE(spool_->list().empty());
    EXPECT_FALSE(ask({{"verb", "status"}}).at("messages").as_object().contains(id));
    const auto unknown = ask({{"verb", "delete"}, {"ids", boost::json::array{boost::json::string(id)}}});
    EXPECT_FALSE(unknown.at("results").as_array().at(0).at("ok").as_bool());
    EXPECT_FALSE(ask({{"verb", "frobnicate"}}).at("ok").as_bool());
}

}  // namespace
}  // namespace subrelay::relay
