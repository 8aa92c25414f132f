#pragma once
// Delivery from the spool to the upstream.
//
// Per upstream mailbox (a "lane"): at most max_connections_per_mailbox
// connections, each reused for the next message; at most
// upstream.max_messages_per_minute messages a minute, decided before a
// message is taken (the excess waits in the queue, unlocked, instead of
// being throttled upstream); a throttling reply pauses that lane alone.
// A connection that cannot be set up (connect, TLS, token, a 4xx/5xx at
// greeting or AUTH) is a failure of the lane, not of its messages: the
// lane is marked unavailable and probed again with its own backoff (10 s,
// doubling up to upstream.retry_max_seconds); its messages wait without
// an attempt counted or a file written, and all go out as soon as a probe
// connects. Their lifetimes still run: an expired one bounces, a delayed
// one gets its notice.
//
// Per message: the delivery state (relay/spool/queue_state.hpp) records each recipient
// the upstream accepted before anything else happens, so a crash causes at
// most a duplicate, never a loss. Temporary failures of a message are
// retried with exponential backoff; recipients refused for good, or still
// undelivered when the message outlives its lifetime, are reported to the
// sender in a delivery status notification (never for a message that is
// itself automatic, so bounces cannot loop). A delay notice goes out once
// after queue.delay_warning_seconds.
//
// Time is owned by one due-time queue (relay/delivery/due_queue.hpp) and one timer
// for its earliest entry: a message waiting for its retry, a lane waiting
// for its probe or for the end of a pause. Rescheduling replaces an entry.
//
// Everything here runs on the io_context given to the constructor (the relay
// gives the delivery a thread of its own); every file it reads or writes is
// read or written on the blocking pool. Only enqueue() is called from
// elsewhere, and it posts.
#include <chrono>
#include <cstdint>
#include <exception>
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
#include <boost/json/object.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/delivery/credentials.hpp"
#include "relay/delivery/due_queue.hpp"
#include "relay/delivery/rules.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"

namespace subrelay::cluster {
class shared_limits;
}  // namespace subrelay::cluster

namespace subrelay::relay {

class delivery_target;

class delivery {
public:
    using clock_fn = std::function<std::int64_t()>;  // unix seconds

    // credentials may be null (upstream.kind = "directory").
    delivery(boost::asio::io_context& io, boost::asio::thread_pool& blocking, const conf::config& cfg,
             relay::spool& spool, upstream_credentials* credentials, clock_fn now = {});
    ~delivery();

    // With [cluster]: the upstream mailboxes' limits (connections,
    // messages a minute) are shared with the other nodes through `shared`:
    // each connection holds a lease, each message takes a place in the
    // mailbox's shared minute. While Redis is unreachable this node keeps
    // its share of each (the limit divided by cluster.nodes), after waiting
    // out one minute (what the others sent in it is not sent again on top)
    // and trimming its connections to the share; when Redis is back, what
    // it sent meanwhile is added to the shared minute. Before start().
    void share_limits(cluster::shared_limits* shared) { shared_ = shared; }

    // Opens the state store and queues every message already in the spool
    // (held ones stay; those waiting for a retry wait until their time).
    void start();
    // Queues a newly stored message for delivery now. May be called from
    // any thread: the work is posted to the delivery's own io_context, the
    // only thread that touches the delivery's state.
    void enqueue(const std::string& id, const std::string& upstream_mailbox);
    [[nodiscard]] boost::asio::io_context::executor_type executor() { return io_.get_executor(); }
    // Stops taking new work: idle connections say QUIT at once, busy ones
    // finish the message in hand (within `grace`, then they are cut off and
    // the message stays queued as it was). Resolves when every worker ended.
    boost::asio::awaitable<void> stop(std::chrono::seconds grace = std::chrono::seconds(30));  // run it on executor()
    // Whether this node is set up for an upstream mailbox (the server asks
    // its configuration and policy). A message for another one is still
    // tried, through the default OAuth profile; when its mailbox is
    // unavailable the log and `queue list` say that it is not configured
    // here. Unset: every mailbox is. Set it before start().
    using mailbox_check = std::function<bool(const std::string& mailbox)>;
    void set_mailbox_check(mailbox_check check) { mailbox_configured_ = std::move(check); }
    // A request from the control socket (relay/server/control.hpp): "status",
    // "oauth-status", "token-readiness", "retry", "hold", "release", "delete",
    // "import" (messages of another node's spool: relay/spool/import.hpp). Run it on executor().
    // The daemon is the only writer of queue state while it runs: these
    // change a message's files under its lock, on the blocking pool, and
    // its place in the schedule at once; a message in flight is held or
    // deleted as soon as its attempt ends.
    boost::asio::awaitable<boost::json::object> control(boost::json::object request);
    // The messages in the queue (waiting, ready, in flight or parked). On executor() only.
    [[nodiscard]] std::size_t queued() const { return messages_.size(); }
    // The clock given to the constructor jumped (tests): look at the due times again.
    void clock_changed();

    struct lane;  // one per upstream mailbox (defined in delivery.cpp)

private:
    enum class status {
        waiting,    // for its retry (an entry in due_), or held (none)
        ready,      // in its lane's ready queue
        in_flight,  // a worker has it
        parked,     // its lane is unavailable: goes when a probe connects
    };
    struct entry {
        std::string mailbox;
        status state = status::waiting;
        std::int64_t received_at = 0;  // for the lifetime and delay notice while parked
        bool delay_warned = false;
    };
    // What one attempt at one message came to.
    enum class outcome { done, retry, busy, parked };
    struct attempt_result {
        outcome what = outcome::done;
        std::int64_t retry_at = 0;       // for retry and busy: when to look again (unix seconds)
        bool delay_warned = false;       // the message's delay notice has gone out
        bool stop_connection = false;    // the mailbox was paused or went down: this connection ends
    };
    struct lane_failure {
        std::string reason;          // for the log
        std::string upstream_reply;  // the upstream's reply that failed the connection ("" if none)
        classification what;
    };

    boost::asio::awaitable<void> worker(lane& l);
    // `target` null: the lane is unavailable; only the lifetime and the
    // delay notice are looked after. `reused`: target carried an earlier
    // message (it may have been closed by the upstream while idle).
    boost::asio::awaitable<attempt_result> attempt(lane& l, delivery_target* target, const std::string& id,
                                                   bool reused = false);
    // Files the message under its outcome: forgotten, waiting until retry_at, or parked.
    void settle(const std::string& id, const attempt_result& r);
    // `shared_slot`: set when the place came from the shared window in Redis
    // (taken there at once, whether a message then goes or not).
    boost::asio::awaitable<bool> wait_for_rate(lane& l, bool& shared_slot);
    // A lane's rate: at most `max` messages (requests) in `span`, shared in
    // Redis under `key` for `window` (a second's margin). max 0: no limit.
    struct rate_limit {
        std::uint32_t max = 0;
        std::chrono::seconds span{60};
        std::chrono::milliseconds window{61'000};
        std::string key;
    };
    [[nodiscard]] rate_limit rate_of(const lane& l) const;
    // Connections (Graph: requests at once) a mailbox may have over every node.
    [[nodiscard]] unsigned mailbox_connections(const lane& l) const;
    // Shared limits ([cluster]). A connection's place among the mailbox's
    // connections across the nodes: a lease while Redis is reachable, this
    // node's share while it is not.
    struct connection_slot;
    enum class slot_claim { ok, full, over_share };
    boost::asio::awaitable<slot_claim> claim_slot(lane& l, connection_slot& slot);
    // Before each message on an open connection: false when it must close
    // (its lease was lost, or it is beyond this node's share).
    boost::asio::awaitable<bool> keep_slot(lane& l, connection_slot& slot);
    boost::asio::awaitable<void> keep_lease(std::shared_ptr<connection_slot> slot);
    // Whether the limits are shared right now; notes when that changes.
    bool limits_shared();
    [[nodiscard]] unsigned connection_limit(const lane& l);
    // This node lost Redis less than a minute ago: it sends nothing yet.
    [[nodiscard]] bool in_fallback_wait() const;
    boost::asio::awaitable<void> add_to_shared_minute(rate_limit rate, unsigned count);
    boost::asio::awaitable<void> run_timer();
    boost::asio::awaitable<boost::json::object> change(std::string verb, std::string id);
    boost::asio::awaitable<boost::json::object> import_from(boost::json::object request);
    // Files an imported message: ready now, or waiting for `release` when held.
    void adopt(const std::string& id, const std::string& mailbox, std::int64_t received_at,
               const std::optional<queue_state>& state);
    [[nodiscard]] bool configured(const std::string& mailbox) const {
        return !mailbox_configured_ || mailbox_configured_(mailbox);
    }
    boost::asio::awaitable<void> change_after_attempt(std::string verb, std::string id);
    [[nodiscard]] boost::json::object status_reply() const;
    boost::asio::awaitable<void> look_after_parked(lane& l, std::string id);

    void enqueue_here(const std::string& id, const std::string& upstream_mailbox);
    lane& lane_for(const std::string& mailbox);
    void kick(lane& l);
    void worker_ended(lane& l, std::exception_ptr e);
    void make_ready(const std::string& id);
    // Due at `at` (unix seconds): replaces any earlier time.
    void schedule(const std::string& key, std::int64_t at);
    void fire(const std::string& key);
    // `mailbox_said`: the upstream refused the mailbox itself while this
    // lane's connections were open (Graph): the lane goes down all the same.
    void lane_failed(lane& l, const lane_failure& f, bool mailbox_said = false);
    void lane_up(lane& l);
    // Throttled: no new connection for `wait` (Retry-After), else a backoff of its own.
    void pause_lane(lane& l, std::optional<std::chrono::seconds> wait = std::nullopt);
    struct survey_item {
        std::string id;
        std::optional<queue_state> state;
        std::string mailbox;       // read from the envelope of a new message
        std::int64_t received_at = 0;
    };
    struct spool_survey {
        bool ok = true;
        std::vector<survey_item> items;
    };
    [[nodiscard]] spool_survey survey() const;
    void apply(const spool_survey& found);
    void forget(const std::string& id);
    void unschedule(const std::string& id);  // out of the ready queue, the due queue and the parked set
    [[nodiscard]] retry_schedule schedule_settings() const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    const conf::config& cfg_;
    relay::spool& spool_;
    state_store states_;
    upstream_credentials* credentials_;
    clock_fn now_;
    mailbox_check mailbox_configured_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    std::map<std::string, std::unique_ptr<lane>> lanes_;
    std::map<std::string, entry> messages_;
    due_queue due_;                                    // message ids and "lane:" + mailbox
    boost::asio::steady_timer timer_;                  // for due_.earliest()
    std::set<boost::asio::steady_timer*> waits_;       // idle and rate waits, cancelled on stop
    std::set<delivery_target*> targets_;               // open ones, cut off when the grace ends
    boost::asio::steady_timer all_done_;               // cancelled by the last worker while stopping
    std::map<std::string, std::string> after_attempt_;  // id -> "hold" or "delete", asked while in flight
    bool stopping_ = false;
    unsigned workers_ = 0;
    cluster::shared_limits* shared_ = nullptr;         // [cluster]; null: this node's limits alone
    bool seen_shared_ = true;                          // what limits_shared() saw last
    std::chrono::steady_clock::time_point fallback_since_{};  // when this node last lost Redis
};

}  // namespace subrelay::relay
