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
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "relay/delivery/rules.hpp"
#include "relay/spool/import.hpp"
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

// Another node's spool, imported while the relay runs: the relay writes the
// messages into its queue and files them at once.
class delivery_import : public delivery_control {
protected:
    fs::path other() { return dir_ / "node-a"; }
    std::string store_there(const std::string& mailbox = "relay@contoso.com") {
        spool there(other());
        if (!fs::exists(other() / "queue")) {
            there.open();
            state_store(other()).open();
        }
        spool_envelope e;
        e.sender = "scanner@contoso.com";
        e.recipients = {"alice@example.org"};
        e.identity = "scanner@contoso.com";
        e.upstream_mailbox = mailbox;
        e.received_at = now_ - 600;
        return spool(other()).store(e, "Subject: from node a\r\n\r\nbody\r\n");
    }
    boost::json::object import(const std::vector<std::string>& names, const fs::path& dir) {
        boost::json::array ids;
        for (const auto& n : names) ids.emplace_back(n);
        return ask({{"verb", "import"}, {"dir", dir.string()}, {"ids", std::move(ids)}});
    }
};

TEST_F(delivery_import, imported_messages_are_tried_at_once_and_a_held_one_waits) {
    const std::string plain = store_there();
    const std::string held = store_there();
    queue_state st;
    st.held = true;
    st.attempts = 2;
    st.next_attempt = now_ + 3000;
    state_store(other()).save(held, st);
    start();
    const auto reply = import({plain, held}, other());
    ASSERT_TRUE(reply.at("ok").as_bool()) << boost::json::serialize(reply);
    const auto& results = reply.at("results").as_array();
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
        EXPECT_EQ(r.at("outcome").as_string(), "imported");
        EXPECT_EQ(r.at("text").as_string(), "imported " + std::string(r.at("id").as_string()));
        EXPECT_EQ(r.at("upstream_mailbox").as_string(), "relay@contoso.com");
        EXPECT_TRUE(r.at("mailbox_configured").as_bool());
        EXPECT_TRUE(r.at("source_removed").as_bool());
    }
    EXPECT_EQ(spool_->list(), (std::vector<std::string>{plain, held}));
    EXPECT_TRUE(spool(other()).list().empty());
    // Tried at once (and failed here: the directory upstream cannot be written).
    EXPECT_EQ(state(plain).attempts, 1u);
    EXPECT_EQ(state(held).attempts, 2u) << "held: not tried";
    EXPECT_TRUE(state(held).held);
    EXPECT_EQ(state(held).next_attempt, 0);
    const auto status = ask({{"verb", "status"}});
    EXPECT_TRUE(status.at("messages").as_object().contains(plain));
    EXPECT_EQ(status.at("messages").at(held).at("status").as_string(), "waiting");
    EXPECT_EQ(text_of(ask({{"verb", "release"}, {"ids", boost::json::array{boost::json::string(held)}}})),
              held + ": released");
    EXPECT_EQ(state(held).attempts, 3u);
}

TEST_F(delivery_import, a_spool_in_use_and_its_own_spool_are_refused) {
    const std::string id = store_there();
    start();
    {
        spool running(other());
        running.open();
        const auto reply = import({id}, other());
        EXPECT_FALSE(reply.at("ok").as_bool());
        EXPECT_EQ(reply.at("error").as_string(),
                  "spool " + other().string() + " is in use by process " + std::to_string(::getpid()));
    }
    const auto own = import({id}, spool_->dir());
    EXPECT_FALSE(own.at("ok").as_bool());
    EXPECT_NE(std::string(own.at("error").as_string()).find("own spool"), std::string::npos);
    EXPECT_FALSE(import({id}, "relative/dir").at("ok").as_bool());
    EXPECT_TRUE(spool_->list().empty());
    EXPECT_EQ(spool(other()).list(), std::vector<std::string>{id});
}

TEST_F(delivery_import, a_message_for_a_mailbox_not_configured_here_stays_queued_and_says_why) {
    // An SMTP upstream that refuses connections, as one refusing an unknown mailbox's AUTH would fail the lane.
    asio::io_context probe;
    asio::ip::tcp::acceptor closed(probe, {asio::ip::address_v4::loopback(), 0});
    const auto port = closed.local_endpoint().port();
    closed.close();
    cfg_.upstream.kind = conf::upstream_kind::smtp;
    cfg_.upstream.host = "127.0.0.1";
    cfg_.upstream.port = port;
    cfg_.upstream.tls = conf::upstream_tls::none;
    cfg_.upstream.auth = conf::upstream_auth::none;
    cfg_.upstream.mailbox = "relay@contoso.com";
    const std::string id = store_there("other@contoso.com");
    delivery_.emplace(io_, pool_, cfg_, *spool_, nullptr, [this] { return now_; });
    delivery_->set_mailbox_check([](const std::string& m) { return m == "relay@contoso.com"; });
    delivery_->start();
    run();
    const auto reply = import({id}, other());
    ASSERT_TRUE(reply.at("ok").as_bool()) << boost::json::serialize(reply);
    const auto& r = reply.at("results").as_array().at(0);
    EXPECT_EQ(r.at("outcome").as_string(), "imported");
    EXPECT_EQ(r.at("upstream_mailbox").as_string(), "other@contoso.com");
    EXPECT_FALSE(r.at("mailbox_configured").as_bool());
    run();
    // Not dropped: queued, no attempt counted, its mailbox unavailable with the reason.
    EXPECT_EQ(spool_->list(), std::vector<std::string>{id});
    EXPECT_EQ(state(id).attempts, 0u);
    const auto status = ask({{"verb", "status"}});
    EXPECT_EQ(status.at("messages").at(id).at("status").as_string(), "parked");
    bool found = false;
    for (const auto& l : status.at("lanes").as_array()) {
        if (l.at("upstream_mailbox").as_string() != "other@contoso.com") continue;
        found = true;
        EXPECT_FALSE(l.at("available").as_bool());
        EXPECT_NE(std::string(l.at("hint").as_string()).find("is not configured on this node"), std::string::npos)
            << boost::json::serialize(l);
    }
    EXPECT_TRUE(found) << boost::json::serialize(status);
}

}  // namespace
}  // namespace subrelay::relay
