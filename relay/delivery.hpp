#pragma once
// Delivery from the spool to the upstream.
//
// Per upstream mailbox (a "lane"): at most max_connections_per_mailbox
// connections, each reused for the next message; at most
// upstream.max_messages_per_minute messages a minute (the excess waits in
// the queue instead of being throttled upstream); a throttling reply
// pauses that lane alone.
//
// Per message: the delivery state (relay/queue.hpp) records each recipient
// the upstream accepted before anything else happens, so a crash causes at
// most a duplicate, never a loss. Temporary failures are retried with
// exponential backoff; recipients refused for good, or still undelivered
// when the message outlives its lifetime, are reported to the sender in a
// delivery status notification (never for a message that is itself
// automatic, so bounces cannot loop). A delay notice goes out once after
// queue.delay_warning_seconds.
//
// Everything here runs on the io_context given to the constructor (the relay
// gives the delivery a thread of its own); only enqueue() is called from
// elsewhere, and it posts.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/credentials.hpp"
#include "relay/queue.hpp"
#include "relay/spool.hpp"

namespace subrelay::relay {

class upstream_connection;

class delivery {
public:
    using clock_fn = std::function<std::int64_t()>;  // unix seconds

    // credentials may be null (upstream.kind = "directory").
    delivery(boost::asio::io_context& io, boost::asio::thread_pool& blocking, const conf::config& cfg,
             relay::spool& spool, upstream_credentials* credentials, clock_fn now = {});
    ~delivery();

    // Opens the state store and queues every message already in the spool
    // (held ones stay; those waiting for a retry wait until their time).
    void start();
    // Queues a newly stored message for delivery now. May be called from
    // any thread: the work is posted to the delivery's own io_context, the
    // only thread that touches the delivery's state.
    void enqueue(const std::string& id, const std::string& upstream_mailbox);
    [[nodiscard]] boost::asio::io_context::executor_type executor() { return io_.get_executor(); }
    // Stops taking new work; resolves when every connection has finished
    // its current message and said QUIT.
    boost::asio::awaitable<void> stop();  // run it on executor()

    struct lane;  // one per upstream mailbox (defined in delivery.cpp)

private:
    enum class status { ready, in_flight, waiting };
    struct entry {
        std::string mailbox;
        status state = status::ready;
    };
    // What one attempt at one message came to.
    enum class outcome { done, retry, busy };
    struct attempt_result {
        outcome what = outcome::done;
        std::int64_t retry_at = 0;           // for retry and busy: when to look again (unix seconds)
        std::string connection_failure;      // non-empty: the upstream connection is gone
    };

    boost::asio::awaitable<void> smtp_worker(lane& l);
    boost::asio::awaitable<void> directory_worker(lane& l);
    // `reused`: conn carried an earlier message (it may have been closed by the upstream while idle).
    boost::asio::awaitable<attempt_result> attempt(lane& l, upstream_connection* conn, const std::string& id,
                                                   bool reused = false);
    // Files the message under its outcome: forgotten, or waiting until retry_at.
    void settle(const std::string& id, const attempt_result& r);
    boost::asio::awaitable<bool> wait_for_rate(lane& l);
    boost::asio::awaitable<void> publish_token_status();
    boost::asio::awaitable<void> watch_wake_file();
    boost::asio::awaitable<void> wake_at(std::string id, std::int64_t at);
    boost::asio::awaitable<void> resume_lane_after(lane& l, std::chrono::seconds wait);

    void enqueue_here(const std::string& id, const std::string& upstream_mailbox);
    lane& lane_for(const std::string& mailbox);
    void kick(lane& l);
    void make_ready(const std::string& id);
    void schedule(const std::string& id, std::int64_t at);
    // `upstream_reply`: the upstream's reply that failed the connection ("" if none).
    void defer_lane(lane& l, const std::string& reason, const std::string& upstream_reply, const classification& c);
    void pause_lane(lane& l);
    struct survey_item {
        std::string id;
        std::optional<queue_state> state;
        std::string mailbox;  // read from the envelope of a new message
        bool is_new = false;  // unknown to the delivery when the survey began
    };
    struct spool_survey {
        bool ok = true;
        std::vector<std::string> ids;  // everything in the spool, sorted
        std::vector<survey_item> items;
    };
    [[nodiscard]] spool_survey survey(const std::set<std::string>& skip, const std::set<std::string>& known) const;
    void apply(const spool_survey& found);
    void snapshot(std::set<std::string>& skip, std::set<std::string>& known) const;
    boost::asio::awaitable<void> rescan();
    [[nodiscard]] retry_schedule schedule_settings() const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    const conf::config& cfg_;
    relay::spool& spool_;
    state_store states_;
    upstream_credentials* credentials_;
    clock_fn now_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    std::map<std::string, std::unique_ptr<lane>> lanes_;
    std::map<std::string, entry> messages_;
    std::set<boost::asio::steady_timer*> timers_;     // cancelled on stop
    std::string published_status_;  // what the status file last said (see publish_token_status)
    bool stopping_ = false;
    unsigned workers_ = 0;
};

}  // namespace subrelay::relay
