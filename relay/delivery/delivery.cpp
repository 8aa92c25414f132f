#include "relay/delivery/delivery.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "relay/delivery/attempt.hpp"
#include "relay/delivery/blocking.hpp"
#include "relay/spool/durable_file.hpp"
#include "relay/delivery/system_clock.hpp"
#include "relay/delivery/target.hpp"
#include "relay/cluster/shared_limits.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/delivery/upstream.hpp"
#include "relay/metrics/relay_metrics.hpp"
#include "relay/spool/import.hpp"
#include "smtp/address.hpp"
#include "smtp/dsn.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

struct delivery::lane {
    std::string mailbox;
    conf::upstream_kind kind = conf::upstream_kind::smtp;   // how its messages go (smtp, graph, directory)
    bool ramping = false;                                   // back from unavailable: one connection until a message goes
    bool rate_waiting = false;                              // at its rate's limit (logged once until a message goes)
    std::deque<std::string> ready;                          // ids to send now
    std::set<std::string> parked;                           // ids waiting for the lane to come back
    unsigned active = 0;                                    // connections open (or opening)
    unsigned open = 0;                                      // connections set up (past AUTH)
    bool probing = false;                                   // the probe of an unavailable lane is under way
    std::set<asio::steady_timer*> idle_waiters;             // workers waiting for more messages
    std::deque<std::chrono::steady_clock::time_point> sent; // messages taken in the last minute
    std::int64_t paused_until = 0;                          // throttled: no new connection before (unix seconds)
    unsigned throttles = 0;                                 // consecutive throttling replies
    bool down = false;                                      // unavailable: probed at its due time
    std::chrono::seconds probe_wait{0};                     // the probe backoff while down
    std::string down_reply;                                 // the upstream's reply that keeps it down, if any
    std::string down_reason;                                // why it is down (`queue list`)
    std::string down_hint;                                  // the fix, if known
    std::int64_t slot_wait_until = 0;                       // [cluster]: no new connection before (unix seconds)
    unsigned leaving = 0;                                   // [cluster]: connections closing, beyond this node's share
};

// [cluster]: a connection's place among its upstream mailbox's connections
// on every node, and the renewal of its lease.
struct delivery::connection_slot {
    explicit connection_slot(asio::io_context& io) : renewal(io) {}
    cluster::lease held;           // empty: none (Redis unreachable: the node's share instead)
    asio::steady_timer renewal;
    bool lost = false;             // Redis no longer counts the lease: close after the message in hand
    bool leaving = false;          // counted in the lane's `leaving`
    bool done = false;             // the connection ended
};

namespace {

// How long a connection stays open without work before it says QUIT.
constexpr std::chrono::seconds idle_keepalive{10};
// The first wait before probing an unavailable upstream mailbox again (then doubling).
constexpr std::chrono::seconds first_probe_wait{10};
// [cluster]: a connection's lease lasts lease_ttl unless renewed (a node
// that dies loses its leases that way), and is renewed every lease_renewal.
constexpr std::chrono::milliseconds lease_ttl{30'000};
constexpr std::chrono::seconds lease_renewal{10};
// [cluster]: after losing Redis a node waits this long before it sends on
// its share: what the other nodes sent in the last minute is not known here.
constexpr std::chrono::seconds fallback_wait{60};
// The shared minute, with a second's margin: a place is taken before the
// message goes, and the upstream counts when it accepts it.
constexpr std::chrono::milliseconds rate_window{61'000};

std::string connections_key(const std::string& mailbox) { return "connections:" + text::ascii_lower(mailbox); }
std::string minute_key(const std::string& mailbox) { return "messages-per-minute:" + text::ascii_lower(mailbox); }
std::string graph_window_key(const std::string& mailbox) { return "graph-requests:" + text::ascii_lower(mailbox); }

std::int64_t system_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string lane_key(const std::string& mailbox) { return "lane:" + mailbox; }

// The hint for an upstream mailbox this node is not set up for (a message imported from another node's spool).
std::string not_configured_hint(const std::string& mailbox) {
    return "upstream mailbox " + mailbox +
           " is not configured on this node (not upstream.mailbox, in no OAuth profile, the upstream_mailbox of no "
           "account): set it up here, then `subrelay queue retry --all`";
}
constexpr std::string_view lane_prefix = "lane:";

std::string status_of(const std::string& reply, const char* fallback) {
    return smtp::enhanced_status_in(reply).value_or(fallback);
}

// A notice about message `id` to its sender (recipients to be added).
smtp::dsn_request notice_for(const conf::config& cfg, const std::string& id, const spool::stored_message& msg,
                             smtp::dsn_request::kind kind) {
    smtp::dsn_request n;
    n.type = kind;
    n.reporting_mta = cfg.server.hostname;
    // From: the upstream mailbox that sends it. Exchange Online and Graph
    // refuse any other From: that mailbox was not granted Send As for
    // (5.7.60, ErrorSendAsDenied), and a made-up MAILER-DAEMON address can
    // be granted nothing: the notice would never reach the sender.
    const std::string& upstream =
        msg.envelope.upstream_mailbox.empty() ? cfg.upstream.mailbox : msg.envelope.upstream_mailbox;
    n.postmaster = cfg.upstream.kind == conf::upstream_kind::directory || upstream.empty()
                       ? "MAILER-DAEMON@" + cfg.server.hostname
                       : upstream;
    n.recipient = msg.envelope.sender;
    n.original_id = id;
    n.arrival_date = msg.envelope.received_at;
    n.original_message = msg.head();  // only its header section goes back
    return n;
}

// The envelope of a notice: from <>, to the original sender, through the same upstream mailbox.
spool_envelope notice_envelope(const spool_envelope& original, std::int64_t now) {
    spool_envelope e;
    e.recipients = {original.sender};
    e.identity = original.identity;
    e.upstream_mailbox = original.upstream_mailbox;
    e.client_address = "127.0.0.1";
    e.received_at = now;
    return e;
}

}  // namespace

delivery::delivery(asio::io_context& io, asio::thread_pool& blocking, const conf::config& cfg, relay::spool& spool,
                   upstream_credentials* credentials, clock_fn now)
    : io_(io),
      blocking_(blocking),
      cfg_(cfg),
      spool_(spool),
      states_(spool.dir()),
      credentials_(credentials),
      now_(now ? std::move(now) : clock_fn(system_now)),
      timer_(io),
      all_done_(io) {
    if (cfg_.upstream.kind != conf::upstream_kind::directory) {  // SMTP lanes (a Graph relay may have some)
        tls_ = std::make_unique<asio::ssl::context>(make_client_context(cfg_.upstream.ca_file));
        if (!cfg_.upstream.client_cert_file.empty())
            use_client_certificate(*tls_, cfg_.upstream.client_cert_file, cfg_.upstream.client_key_file);
    }
}

delivery::~delivery() = default;

retry_schedule delivery::schedule_settings() const {
    retry_schedule s;
    s.initial = std::chrono::seconds(cfg_.upstream.retry_initial_seconds);
    s.max = std::chrono::seconds(cfg_.upstream.retry_max_seconds);
    s.lifetime = std::chrono::seconds(cfg_.queue.max_lifetime_seconds);
    s.delay_warning = std::chrono::seconds(cfg_.queue.delay_warning_seconds);
    return s;
}

delivery::lane& delivery::lane_for(const std::string& mailbox) {
    auto& l = lanes_[mailbox];
    if (!l) {
        l = std::make_unique<lane>();
        l->mailbox = mailbox;
        l->kind = cfg_.delivery_for_mailbox(mailbox);
    }
    return *l;
}

void delivery::start() {
    states_.open();
    // State files whose message is gone (a crash between the two removals).
    try {
        const auto ids = spool_.list();
        for (const auto& file : fs::directory_iterator(states_.dir())) {
            const std::string name = file.path().filename().string();
            if (valid_queue_id(name) && !std::binary_search(ids.begin(), ids.end(), name)) states_.remove(name);
        }
    } catch (const std::exception& e) {
        spdlog::warn("queue state clean-up: {}", e.what());
    }
    // Nothing else runs yet: the survey may block.
    apply(survey());
    if (!messages_.empty()) spdlog::info("spool holds {} message(s) from before", messages_.size());
    asio::co_spawn(io_, run_timer(), asio::detached);
}

// ---------------------------------------------------------------------------
// Time: one due-time queue, one timer for its earliest entry.

void delivery::schedule(const std::string& key, std::int64_t at) {
    const auto before = due_.earliest();
    due_.set(key, at);
    // The timer waits for the old earliest entry: make it look again.
    if (!before || at < *before) timer_.cancel();
}

asio::awaitable<void> delivery::run_timer() {
    while (!stopping_) {
        if (const auto next = due_.earliest())
            timer_.expires_after(std::chrono::seconds(std::max<std::int64_t>(0, *next - now_())));
        else
            timer_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await timer_.async_wait(with_error);  // cancelled: an earlier entry, or stop()
        if (stopping_) break;
        for (const auto& key : due_.take_due(now_())) fire(key);
    }
}

void delivery::fire(const std::string& key) {
    if (key.starts_with(lane_prefix)) {
        auto it = lanes_.find(key.substr(lane_prefix.size()));
        if (it == lanes_.end()) return;
        lane& l = *it->second;
        if (l.down) {
            // Probe: one connection; when it is set up, every parked message goes.
            if (l.active == 0 && !stopping_) {
                spdlog::info("upstream mailbox {}: trying again ({} message(s) wait)", l.mailbox, l.parked.size());
                l.probing = true;
                ++l.active;
                ++workers_;
                asio::co_spawn(io_, worker(l), [this, &l](std::exception_ptr e) { worker_ended(l, e); });
            }
        } else {
            kick(l);  // a pause ended
        }
        return;
    }
    make_ready(key);
}

// ---------------------------------------------------------------------------
// Messages and lanes

void delivery::enqueue(const std::string& id, const std::string& upstream_mailbox) {
    asio::post(io_, [this, id, upstream_mailbox] { enqueue_here(id, upstream_mailbox); });
}

void delivery::enqueue_here(const std::string& id, const std::string& upstream_mailbox) {
    if (stopping_) return;
    auto [it, inserted] = messages_.emplace(id, entry{upstream_mailbox, status::waiting, now_(), false});
    if (!inserted && it->second.state != status::waiting) return;
    make_ready(id);
}

void delivery::make_ready(const std::string& id) {
    auto it = messages_.find(id);
    if (it == messages_.end() || it->second.state != status::waiting || stopping_) return;
    due_.erase(id);
    lane& l = lane_for(it->second.mailbox);
    if (l.down) {
        it->second.state = status::parked;
        l.parked.insert(id);
        return;
    }
    it->second.state = status::ready;
    l.ready.push_back(id);
    kick(l);
}

void delivery::unschedule(const std::string& id) {
    auto it = messages_.find(id);
    if (it == messages_.end()) return;
    lane& l = lane_for(it->second.mailbox);
    if (it->second.state == status::parked) l.parked.erase(id);
    if (it->second.state == status::ready) std::erase(l.ready, id);
    due_.erase(id);
    it->second.state = status::waiting;
}

void delivery::forget(const std::string& id) {
    unschedule(id);
    messages_.erase(id);
}

void delivery::kick(lane& l) {
    if (stopping_ || l.ready.empty() || l.down) return;
    if (now_() < l.paused_until || now_() < l.slot_wait_until) return;  // its due entry kicks again
    // Connections waiting for work take it before another one is opened.
    const std::size_t idle = l.idle_waiters.size();
    for (auto* t : l.idle_waiters) t->cancel();
    if (l.ready.size() <= idle) return;
    if (l.active >= connection_limit(l)) return;
    if (l.ramping && l.active > 0) return;  // the first message shows whether the mailbox is back
    ++l.active;
    ++workers_;
    asio::co_spawn(io_, worker(l), [this, &l](std::exception_ptr e) { worker_ended(l, e); });
}

void delivery::worker_ended(lane& l, std::exception_ptr e) {
    --workers_;
    if (e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("delivery worker failed: {}", ex.what());
        }
    }
    if (stopping_) {
        if (workers_ == 0) all_done_.cancel();
        return;
    }
    // Work that came in while this connection was closing gets a new one.
    kick(l);
}

void delivery::pause_lane(lane& l, std::optional<std::chrono::seconds> asked) {
    // Exchange and Graph throttle per mailbox: slow this one down, the others go on.
    const std::int64_t now = now_();
    if (now < l.paused_until) return;  // already paused
    const auto wait = asked ? std::max(*asked, std::chrono::seconds(1))
                            : std::min<std::chrono::seconds>(std::chrono::seconds(60L << std::min(l.throttles, 4u)),
                                                             std::chrono::seconds(900));
    ++l.throttles;
    l.paused_until = now + wait.count();
    spdlog::warn("upstream mailbox {} is throttled: no new connection for {}s", l.mailbox, wait.count());
    schedule(lane_key(l.mailbox), l.paused_until);
}

// The connection could not be set up. A failure of the lane, not of its
// messages: they wait (nothing written, no attempt counted) and the lane is
// probed again with its own backoff.
void delivery::lane_failed(lane& l, const lane_failure& f, bool mailbox_said) {
    spdlog::warn("upstream connection for {} failed: {}{}", l.mailbox, f.reason,
                 f.what.hint.empty() ? "" : " (" + f.what.hint + ")");
    metrics::relay().connection_failed(f.upstream_reply);
    if (f.what.throttled) {
        pause_lane(l);  // what waits goes when the pause ends; open connections go on
        return;
    }
    if (l.open > 0 && !mailbox_said) return;  // connections of this lane that are set up deliver what waits
    if (l.down && !l.probing) return;  // another connection's failure in the same outage
    l.probing = false;
    const auto settings = schedule_settings();
    const std::int64_t now = now_();
    l.down = true;
    l.probe_wait = l.probe_wait.count() == 0
                       ? first_probe_wait
                       : std::min(l.probe_wait * 2, std::max(first_probe_wait, settings.max));
    if (!f.upstream_reply.empty()) l.down_reply = f.upstream_reply;
    l.down_reason = f.reason;
    l.down_hint = f.what.hint;
    for (const auto& id : l.ready) {
        auto it = messages_.find(id);
        if (it == messages_.end() || it->second.state != status::ready) continue;
        it->second.state = status::parked;
        l.parked.insert(id);
    }
    l.ready.clear();
    schedule(lane_key(l.mailbox), now + l.probe_wait.count());
    spdlog::warn("upstream mailbox {} is unavailable: {} message(s) wait; next try in {}s", l.mailbox,
                 l.parked.size(), l.probe_wait.count());
    if (!configured(l.mailbox)) {
        // Most likely why: the messages came from another node's spool. They stay queued.
        l.down_hint = not_configured_hint(l.mailbox);
        spdlog::warn("{}; its messages stay queued meanwhile", l.down_hint);
    }
    // Their lifetimes still run: the expired bounce, the delayed get their notice.
    const std::vector<std::string> parked(l.parked.begin(), l.parked.end());
    for (const auto& id : parked) {
        entry& e = messages_[id];
        queue_state known;
        known.delay_warned = e.delay_warned;
        if (!expired(settings, e.received_at, now) && !delay_warning_due(settings, known, e.received_at, now))
            continue;
        l.parked.erase(id);
        e.state = status::in_flight;
        asio::co_spawn(io_, look_after_parked(l, id), asio::detached);
    }
}

asio::awaitable<void> delivery::look_after_parked(lane& l, std::string id) {
    const attempt_result r = co_await attempt(l, nullptr, id);
    settle(id, r);
}

void delivery::lane_up(lane& l) {
    if (l.kind != conf::upstream_kind::graph) l.throttles = 0;  // Graph: reset when a message went
    l.probing = false;
    if (!l.down) return;
    l.down = false;
    // Graph: the backoff ends when a message goes (a token and TLS say
    // nothing of the mailbox's permission).
    if (l.kind != conf::upstream_kind::graph) l.probe_wait = std::chrono::seconds(0);
    due_.erase(lane_key(l.mailbox));
    spdlog::info("upstream mailbox {} is available again: {} message(s) go now", l.mailbox, l.parked.size());
    for (const auto& id : l.parked) {
        auto it = messages_.find(id);
        if (it == messages_.end() || it->second.state != status::parked) continue;
        it->second.state = status::ready;
        l.ready.push_back(id);
    }
    l.parked.clear();
    // More connections for the backlog (the prober takes the first message).
    if (l.kind == conf::upstream_kind::graph) {
        // Graph tells whether the mailbox may send only when a message
        // goes: more connections once the first one did (worker()).
        l.ramping = true;
        return;
    }
    const unsigned max = connection_limit(l);
    for (std::size_t more = l.ready.size() > 0 ? l.ready.size() - 1 : 0; more > 0 && l.active < max; --more) {
        ++l.active;
        ++workers_;
        asio::co_spawn(io_, worker(l), [this, &l](std::exception_ptr e) { worker_ended(l, e); });
    }
}

void delivery::settle(const std::string& id, const attempt_result& r) {
    auto it = messages_.find(id);
    if (it == messages_.end()) return;
    if (r.delay_warned) it->second.delay_warned = true;
    if (auto asked = after_attempt_.find(id); asked != after_attempt_.end()) {
        // `queue hold` or `queue delete` came while it was in flight.
        std::string verb = asked->second;
        after_attempt_.erase(asked);
        if (r.what != outcome::done) {
            it->second.state = status::waiting;
            asio::co_spawn(io_, change_after_attempt(std::move(verb), id), asio::detached);
            return;
        }
    }
    switch (r.what) {
    case outcome::done: forget(id); return;
    case outcome::parked:
        it->second.state = status::waiting;
        make_ready(id);  // parked again while the lane is down
        return;
    case outcome::retry:
    case outcome::busy:
        it->second.state = status::waiting;
        schedule(id, r.retry_at);
        return;
    }
}

// ---------------------------------------------------------------------------
// The spool as it is on disk at start-up

// Reads what the spool holds (blocking: before the delivery's thread starts):
// every message, its state and its upstream mailbox.
delivery::spool_survey delivery::survey() const {
    spool_survey out;
    std::vector<std::string> ids;
    try {
        ids = spool_.list();
    } catch (const std::exception& e) {
        spdlog::error("spool: {}", e.what());
        out.ok = false;
        return out;
    }
    for (const auto& id : ids) {
        survey_item item{id, {}, {}, 0};
        try {
            item.state = states_.load(id);
            const spool_envelope env = spool_.load_envelope(id);
            item.mailbox = env.upstream_mailbox.empty() ? cfg_.upstream.mailbox : env.upstream_mailbox;
            item.received_at = env.received_at;
        } catch (const std::exception& e) {
            spdlog::error("spool: cannot read message {}: {} (left in place)", id, e.what());
            continue;
        }
        out.items.push_back(std::move(item));
    }
    return out;
}

// Files what the survey found: held messages stay, due ones are made ready,
// the others wait for their time.
void delivery::apply(const spool_survey& found) {
    if (!found.ok) return;
    const std::int64_t now = now_();
    for (const auto& item : found.items) {
        auto [it, inserted] =
            messages_.emplace(item.id, entry{item.mailbox, status::waiting, item.received_at, false});
        if (!inserted) continue;
        if (item.state) it->second.delay_warned = item.state->delay_warned;
        if (item.state && item.state->held) continue;
        const std::int64_t at = item.state ? item.state->next_attempt : 0;
        if (at <= now)
            make_ready(item.id);
        else
            schedule(item.id, at);
    }
}

void delivery::clock_changed() {
    asio::post(io_, [this] { timer_.cancel(); });
}

// ---------------------------------------------------------------------------
// Workers: one per connection

delivery::rate_limit delivery::rate_of(const lane& l) const {
    // SMTP: Exchange's messages a minute; Graph: its requests in ten
    // minutes, three for each message sent as a draft (make, mark, send).
    if (l.kind == conf::upstream_kind::graph) {
        const std::chrono::seconds span(conf::graph_window_seconds);
        const std::uint32_t per_message = cfg_.profile_for_mailbox(l.mailbox).save_to_sent_items ? 1 : 3;
        return {std::max(1u, cfg_.upstream.graph_max_requests_per_10_minutes / per_message), span,
                span + std::chrono::seconds(1), graph_window_key(l.mailbox)};
    }
    if (l.kind == conf::upstream_kind::directory) return {0, std::chrono::minutes(1), rate_window, {}};
    return {cfg_.upstream.max_messages_per_minute, std::chrono::minutes(1), rate_window, minute_key(l.mailbox)};
}

unsigned delivery::mailbox_connections(const lane& l) const {
    // Graph: requests at once per mailbox; SMTP: Exchange's connections.
    if (l.kind == conf::upstream_kind::graph) return std::max(1u, cfg_.upstream.graph_max_concurrent_requests);
    return std::max(1u, cfg_.upstream.max_connections_per_mailbox);
}

// Waits for a slot in the lane's rate (messages a minute, Graph's requests
// in ten minutes) before a message is taken, so nothing is locked while it
// waits. False: stopping.
asio::awaitable<bool> delivery::wait_for_rate(lane& l, bool& shared_slot) {
    shared_slot = false;
    const rate_limit rate = rate_of(l);
    const std::uint32_t max = rate.max;
    const std::chrono::seconds span = rate.span;
    if (max == 0) co_return !stopping_;
    for (;;) {
        if (stopping_) co_return false;
        std::chrono::steady_clock::time_point until;
        if (limits_shared()) {
            // The mailbox's minute across the nodes.
            const cluster::take_result r = co_await shared_->take(rate.key, max, rate.window);
            if (r.status == cluster::take_status::granted) {
                l.rate_waiting = false;
                shared_slot = true;
                co_return !stopping_;
            }
            until = std::chrono::steady_clock::now() + r.wait;
            if (r.status == cluster::take_status::unavailable) continue;  // this node's share from now on
        } else if (in_fallback_wait()) {
            until = fallback_since_ + fallback_wait;
        } else {
            // This node's minute: the whole limit, or its share while Redis is unreachable.
            const std::uint32_t limit = shared_ != nullptr ? cluster::shared_limits::share(max, shared_->nodes()) : max;
            const auto now = std::chrono::steady_clock::now();
            while (!l.sent.empty() && now - l.sent.front() >= span) l.sent.pop_front();
            if (l.sent.size() < limit) {
                l.rate_waiting = false;
                co_return true;
            }
            until = l.sent[l.sent.size() - limit] + span;
        }
        // The excess waits in the queue rather than being sent to be throttled.
        if (!l.rate_waiting) {
            l.rate_waiting = true;
            const auto wait = std::chrono::ceil<std::chrono::seconds>(until - std::chrono::steady_clock::now());
            spdlog::info("upstream mailbox {}: at its limit of {} messages in {} s; the next goes in {} s", l.mailbox,
                         max, span.count(), std::max<std::int64_t>(0, wait.count()));
        }
        asio::steady_timer timer(io_, until);
        waits_.insert(&timer);
        co_await timer.async_wait(with_error);
        waits_.erase(&timer);
    }
}

bool delivery::limits_shared() {
    if (shared_ == nullptr) return false;
    // Before the first connection is tried, the operations wait for it.
    const bool shared = shared_->available() || shared_->connecting();
    if (shared == seen_shared_) return shared;
    seen_shared_ = shared;
    const unsigned nodes = shared_->nodes();
    if (!shared) {
        fallback_since_ = std::chrono::steady_clock::now();
        const unsigned connections = std::max(1u, cfg_.upstream.max_connections_per_mailbox);
        spdlog::warn("delivery: limits not shared (Redis at {} unreachable): each upstream mailbox gets {} of {} "
                     "connections and {} of {} messages a minute on this node, after {} s without sending",
                     shared_->location(), cluster::shared_limits::share(connections, nodes), connections,
                     cluster::shared_limits::share(cfg_.upstream.max_messages_per_minute, nodes),
                     cfg_.upstream.max_messages_per_minute, fallback_wait.count());
        return false;
    }
    spdlog::info("delivery: limits shared again through Redis at {}", shared_->location());
    // What this node sent while on its own counts in each mailbox's shared minute.
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [mailbox, l] : lanes_) {
        const rate_limit rate = rate_of(*l);
        if (rate.max == 0) continue;
        const auto since = std::max(fallback_since_, now - rate.span);
        const auto n = std::count_if(l->sent.begin(), l->sent.end(), [since](auto t) { return t >= since; });
        if (n > 0) asio::co_spawn(io_, add_to_shared_minute(rate, static_cast<unsigned>(n)), asio::detached);
    }
    return true;
}

asio::awaitable<void> delivery::add_to_shared_minute(rate_limit rate, unsigned count) {
    // A reservation never released counts until it leaves the window; the
    // limit only has to let it in.
    (void)co_await shared_->reserve(rate.key, std::numeric_limits<unsigned>::max(), rate.window, count);
}

bool delivery::in_fallback_wait() const {
    return std::chrono::steady_clock::now() < fallback_since_ + fallback_wait;
}

unsigned delivery::connection_limit(const lane& l) {
    const unsigned max = mailbox_connections(l);
    if (shared_ == nullptr || limits_shared()) return max;
    return cluster::shared_limits::share(max, shared_->nodes());
}

asio::awaitable<delivery::slot_claim> delivery::claim_slot(lane& l, connection_slot& slot) {
    const unsigned max = mailbox_connections(l);
    if (limits_shared()) {
        const cluster::lease_result r = co_await shared_->acquire_lease(connections_key(l.mailbox), max, lease_ttl);
        if (r.status == cluster::lease_status::granted) {
            slot.held = r.held;
            co_return slot_claim::ok;
        }
        if (r.status == cluster::lease_status::full) co_return slot_claim::full;
        (void)limits_shared();  // unreachable now: this node's share
    }
    if (in_fallback_wait() || l.active > connection_limit(l)) co_return slot_claim::over_share;
    co_return slot_claim::ok;
}

asio::awaitable<bool> delivery::keep_slot(lane& l, connection_slot& slot) {
    if (slot.lost) co_return false;
    if (limits_shared()) {
        if (!slot.held.empty()) co_return true;
        // Opened while Redis was unreachable: it needs a lease now, or it closes.
        const cluster::lease_result r =
            co_await shared_->acquire_lease(connections_key(l.mailbox), mailbox_connections(l), lease_ttl);
        if (r.status == cluster::lease_status::granted) {
            slot.held = r.held;
            co_return true;
        }
        if (r.status == cluster::lease_status::full) co_return false;
        (void)limits_shared();
    }
    // Redis unreachable: a lease cannot be renewed (it expires by itself),
    // and this node keeps to its share.
    slot.held = {};
    if (l.active - l.leaving > connection_limit(l)) {
        ++l.leaving;
        slot.leaving = true;
        co_return false;
    }
    co_return true;
}

asio::awaitable<void> delivery::keep_lease(std::shared_ptr<connection_slot> slot) {
    while (!slot->done) {
        slot->renewal.expires_after(lease_renewal);
        co_await slot->renewal.async_wait(with_error);
        if (slot->done || slot->held.empty()) continue;  // ended, or no lease while Redis is away
        const cluster::lease held = slot->held;
        const cluster::renew_status r = co_await shared_->renew_lease(held, lease_ttl);
        if (r == cluster::renew_status::lost && slot->held.member == held.member) {
            slot->lost = true;
            slot->held = {};
            spdlog::warn("upstream connection: its lease ({}) expired before it was renewed; closing after the "
                         "message in hand",
                         held.key);
        }
    }
}

asio::awaitable<void> delivery::worker(lane& l) {
    struct active_guard {
        lane& l;
        ~active_guard() { --l.active; }
    } guard{l};

    // [cluster]: the connection's place among the mailbox's connections on every node.
    const bool shares = shared_ != nullptr && l.kind != conf::upstream_kind::directory;
    auto slot = std::make_shared<connection_slot>(io_);
    struct slot_guard {
        delivery& d;
        lane& l;
        std::shared_ptr<connection_slot> slot;
        ~slot_guard() {
            slot->done = true;
            slot->renewal.cancel();
            if (slot->leaving) --l.leaving;
            if (!slot->held.empty()) d.shared_->release_lease(slot->held);
        }
    } slot_kept{*this, l, slot};
    if (shares) {
        const slot_claim claim = co_await claim_slot(l, *slot);
        if (claim != slot_claim::ok) {
            // Another node holds the mailbox's connections (look again in a
            // second), or this node waits out its minute after losing Redis.
            const std::int64_t wait =
                claim == slot_claim::full || !in_fallback_wait()
                    ? 1
                    : std::chrono::duration_cast<std::chrono::seconds>(fallback_since_ + fallback_wait -
                                                                       std::chrono::steady_clock::now())
                              .count() + 1;
            l.probing = false;
            l.slot_wait_until = std::max(now_() + wait, l.slot_wait_until);
            schedule(lane_key(l.mailbox), std::max(l.slot_wait_until, l.paused_until));
            co_return;
        }
        // Renews whatever lease the slot holds, as long as the connection lives.
        asio::co_spawn(io_, keep_lease(slot), asio::detached);
    }

    std::unique_ptr<delivery_target> target;
    std::optional<lane_failure> failed;
    try {
        if (l.kind == conf::upstream_kind::directory) {
            target = make_directory_target(cfg_, blocking_);
        } else if (l.kind == conf::upstream_kind::graph) {
            auth::token_source* tokens = credentials_ != nullptr ? credentials_->tokens_for(l.mailbox) : nullptr;
            target = make_graph_target(io_.get_executor(), cfg_, cfg_.profile_for_mailbox(l.mailbox), tokens,
                                       l.mailbox, blocking_);
        } else {
            upstream_endpoint to = credentials_ != nullptr
                                       ? credentials_->endpoint_for(l.mailbox)
                                       : upstream_endpoint{cfg_.upstream.host, cfg_.upstream.port, cfg_.upstream.tls};
            // A Google service account makes its mailbox's token source now: reading its key may fail.
            auth::token_source* tokens = credentials_ != nullptr ? credentials_->tokens_for(l.mailbox) : nullptr;
            target = make_smtp_target(cfg_, std::move(to), *tls_, tokens, l.mailbox, blocking_);
        }
        targets_.insert(target.get());
        co_await target->open();
    } catch (const auth::token_error& e) {
        // The profile is broken or its endpoint unwell: the log says what to do.
        failed = lane_failure{e.what(), {}, {}};
        failed->what.hint = e.hint();
    } catch (const upstream_error& e) {
        failed = lane_failure{e.what(), e.server_reply().code != 0 ? e.server_reply().summary() : std::string(),
                              classify(e.server_reply(), e.stage(), l.mailbox)};
    } catch (const std::exception& e) {
        failed = lane_failure{e.what(), {}, classify(smtp::reply{}, "connect", l.mailbox)};
    }
    struct target_guard {
        std::set<delivery_target*>& targets;
        delivery_target* t;
        ~target_guard() { targets.erase(t); }
    } registered{targets_, target.get()};
    if (failed) {
        if (!stopping_) lane_failed(l, *failed);
        co_return;
    }
    lane_up(l);
    ++l.open;
    struct open_guard {
        lane& l;
        ~open_guard() { --l.open; }
    } counted{l};

    auto deadline = std::chrono::steady_clock::now() + idle_keepalive;
    bool reused = false;
    bool unused_shared_slot = false;
    while (!stopping_) {
        if (l.ready.empty()) {
            if (std::chrono::steady_clock::now() >= deadline) break;
            asio::steady_timer wait(io_, deadline);
            l.idle_waiters.insert(&wait);
            waits_.insert(&wait);
            co_await wait.async_wait(with_error);
            l.idle_waiters.erase(&wait);
            waits_.erase(&wait);
            continue;
        }
        if (!target->reusable(std::chrono::steady_clock::now())) {
            // Too old, or its token expired: QUIT, and the next message opens
            // a new connection with the current token (kick() on this worker's end).
            spdlog::info("upstream connection for {}: token expired or connection too old; opening a new one",
                         l.mailbox);
            break;
        }
        if (shares && !co_await keep_slot(l, *slot)) break;
        // A place in the shared window that found no message (another
        // connection took it) is kept for the next one: Redis counted it.
        if (!unused_shared_slot) {
            bool shared_slot = false;
            if (!co_await wait_for_rate(l, shared_slot)) break;
            unused_shared_slot = shared_slot;
        }
        if (l.ready.empty()) continue;  // taken meanwhile by another connection
        unused_shared_slot = false;
        std::string id = l.ready.front();
        l.ready.pop_front();
        l.sent.push_back(std::chrono::steady_clock::now());
        messages_[id].state = status::in_flight;
        const attempt_result r = co_await attempt(l, target.get(), id, reused);
        reused = true;
        settle(id, r);
        if (target->broken() || r.stop_connection) break;  // this connection is gone, or its mailbox waits
        if (l.kind == conf::upstream_kind::graph && r.what == outcome::done) {
            // Graph took a message: the mailbox can send, more connections may go.
            l.throttles = 0;
            l.probe_wait = std::chrono::seconds(0);
            if (l.ramping) {
                l.ramping = false;
                spdlog::info("upstream mailbox {}: Microsoft Graph took a message; {} more wait", l.mailbox,
                             l.ready.size());
            }
            kick(l);
        }
        deadline = std::chrono::steady_clock::now() + idle_keepalive;
    }
    // A connection that broke off takes no QUIT: its socket is closed. (The
    // QUIT of a TLS connection reset in the middle of DATA could wait for a
    // reply up to upstream.command_timeout_seconds, and hold up shutdown.)
    if (target->broken()) {
        target->cancel();
        co_return;
    }
    co_await target->close();
}

// One delivery attempt of one message through `target` (null: the lane is
// unavailable, only the lifetime and the delay notice are looked after).
// Everything learnt is saved in the message's state before the next step;
// every file is read and written on the blocking pool.
asio::awaitable<delivery::attempt_result> delivery::attempt(lane& l, delivery_target* target, const std::string& id,
                                                            bool reused) {
    const std::int64_t now = now_();
    struct work {
        std::optional<message_lock> lock;
        bool exists = false;
        spool::stored_message msg;
        queue_state st;
    };
    auto load = [this, &id] {
        work w;
        const fs::path file = spool_.dir() / "queue" / id;
        w.lock = message_lock::try_lock(file);
        if (!w.lock) {
            w.exists = fs::exists(file);
            return w;
        }
        w.exists = true;
        w.msg = spool_.open_message(id);
        w.st = states_.load(id).value_or(queue_state{});
        return w;
    };
    work w;
    try {
        w = co_await run_blocking(blocking_, load);
    } catch (const std::exception& e) {
        spdlog::error("spool: cannot read message {}: {} (left in place)", id, e.what());
        co_return attempt_result{};
    }
    // A queue command holds the message: look again shortly.
    if (!w.lock) co_return w.exists ? attempt_result{outcome::busy, now + 2, false} : attempt_result{};
    if (w.st.held) co_return attempt_result{};
    const spool_envelope& env = w.msg.envelope;
    const auto settings = schedule_settings();
    std::vector<std::string> to = remaining(env, w.st);
    attempt_result result_of_attempt;

    if (!to.empty() && expired(settings, env.received_at, now)) {
        // Too old: what is left fails, and the sender hears why.
        expire(w.st, to, settings, l.down_reply);
        spdlog::warn("delivery id={} status=expired recipients={}", id, smtp::bracketed_list(to));
        to.clear();
    }

    if (!to.empty() && delay_warning_due(settings, w.st, env.received_at, now)) {
        const std::string& why = w.st.last_upstream_reply.empty() ? l.down_reply : w.st.last_upstream_reply;
        if (smtp::is_automatic(env.sender, w.msg.head())) {
            w.st.delay_warned = true;  // no notice for a notice, and no asking again
        } else {
            smtp::dsn_request notice = notice_for(cfg_, id, w.msg, smtp::dsn_request::kind::delay);
            for (const auto& r : to) notice.recipients.push_back({r, "4.4.7", why, cfg_.upstream.host});
            notice.retry_until = env.received_at + settings.lifetime.count();
            const spool_envelope nenv = notice_envelope(env, now);
            auto store_notice = [this, &notice, &nenv, &id, &w] {
                std::string nid = spool_.store(nenv, smtp::build_dsn(notice, system_wall_clock(), system_random()));
                w.st.delay_warned = true;
                states_.save(id, w.st);
                return nid;
            };
            try {
                std::string nid = co_await run_blocking(blocking_, store_notice);
                spdlog::info("delivery id={} delay notice to <{}> queued as {}", id, env.sender, nid);
                enqueue_here(nid, env.upstream_mailbox.empty() ? cfg_.upstream.mailbox : env.upstream_mailbox);
            } catch (const std::exception& e) {
                spdlog::error("delivery id={}: cannot queue the delay notice: {}", id, e.what());
            }
        }
        result_of_attempt.delay_warned = w.st.delay_warned;
    }

    if (!to.empty() && target == nullptr) {
        result_of_attempt.what = outcome::parked;  // nothing else to do until the lane is back
        co_return result_of_attempt;
    }

    if (!to.empty()) {
        const std::vector<std::string> attempted = to;
        smtp::message_result result;
        std::string failure;
        std::optional<mailbox_refusal> refused;
        try {
            result = co_await target->send(id, w.msg, to);
        } catch (const mailbox_refusal& e) {
            refused = e;
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (refused) {
            // About the mailbox, not the message: it waits, uncounted, for
            // the pause to end or the mailbox to be back.
            spdlog::warn("delivery id={} upstream={}: {}{}", id, l.mailbox, refused->reply().summary(),
                         refused->hint().empty() ? "" : " hint=\"" + refused->hint() + "\"");
            if (refused->refusal() == mailbox_refusal::kind::paused) {
                pause_lane(l, refused->wait());
            } else {
                lane_failure f{refused->reply().summary(), refused->reply().summary(), {}};
                f.what.hint = refused->hint();
                lane_failed(l, f, true);
            }
            attempt_result waits{outcome::parked, 0, result_of_attempt.delay_warned, true};
            co_return waits;
        }
        if (!failure.empty() && reused && !target->content_sent()) {
            // A pooled connection the upstream closed while it was idle
            // (Exchange closes idle sessions and restarts servers): none of
            // the message reached it, so it goes again at once over a new
            // connection, and this is not counted as an attempt.
            spdlog::info("delivery id={} upstream={}: the pooled connection was gone ({}); again on a new one", id,
                         l.mailbox, failure);
            co_return attempt_result{outcome::retry, now, result_of_attempt.delay_warned};
        }
        if (!failure.empty() && stopping_) {
            // Cut off by the shutdown: not an attempt; it goes at the next start.
            spdlog::info("delivery id={} upstream={}: cut off by the shutdown ({}); stays queued", id, l.mailbox,
                         failure);
            co_return attempt_result{outcome::retry, now, result_of_attempt.delay_warned};
        }
        const recorded rec = failure.empty() ? record_result(w.st, to, result, now, l.mailbox, target->hint())
                                             : record_failure(w.st, failure, now, l.mailbox);
        if (rec.throttled) pause_lane(l);
        to = remaining(env, w.st);
        if (!to.empty()) {
            w.st.next_attempt = now + backoff(settings, w.st.attempts).count();
            // Recorded before anything else: a crash from here on repeats at
            // most this attempt's deliveries, and loses nothing. (When nothing
            // is left the message is finished below instead; a crash before
            // that repeats this attempt, which is the same promise.)
            auto save = [this, &id, &w] { states_.save(id, w.st); };
            try {
                co_await run_blocking(blocking_, save);
            } catch (const std::exception& e) {
                spdlog::error("queue state of {}: {}", id, e.what());
            }
        }
        const char* verdict = !to.empty() ? "deferred" : (w.st.failed.empty() ? "sent" : "bounced");
        spdlog::info("delivery id={} account={} client={} upstream={} from=<{}> to={} size={} status={} "
                     "reply=\"{}\"{}",
                     id, env.identity, env.client_address, l.mailbox, env.sender, smtp::bracketed_list(attempted),
                     w.msg.size(), verdict, rec.reply_line, rec.hint.empty() ? "" : " hint=\"" + rec.hint + "\"");
        metrics::relay().delivery_attempt(verdict, rec.reply_line, now - env.received_at);
        if (!to.empty()) {
            result_of_attempt.what = outcome::retry;
            result_of_attempt.retry_at = w.st.next_attempt;
            co_return result_of_attempt;
        }
    }

    // Nothing left to try: report failures to the sender, then forget the message.
    std::string bounce_id;
    auto finish = [this, &id, &w, &bounce_id, now] {
        const spool_envelope& e = w.msg.envelope;
        if (!w.st.failed.empty()) {
            if (smtp::is_automatic(e.sender, w.msg.head())) {
                spdlog::info("delivery id={}: no notice for an automatic message (sender <{}>)", id, e.sender);
            } else {
                smtp::dsn_request notice = notice_for(cfg_, id, w.msg, smtp::dsn_request::kind::failure);
                for (const auto& f : w.st.failed)
                    notice.recipients.push_back({f.address, status_of(f.reply, "5.0.0"), f.reply, cfg_.upstream.host});
                bounce_id = spool_.store(notice_envelope(e, now),
                                         smtp::build_dsn(notice, system_wall_clock(), system_random()));
            }
        }
        w.msg.close();  // its file may be reused for the next message
        spool_.remove(id);
        states_.remove(id);
    };
    try {
        co_await run_blocking(blocking_, finish);
    } catch (const std::exception& e) {
        spdlog::error("delivery id={}: cannot finish: {} (kept; tried again later)", id, e.what());
        co_return attempt_result{outcome::retry, now + settings.initial.count(), result_of_attempt.delay_warned};
    }
    if (!bounce_id.empty()) {
        spdlog::info("delivery id={} bounce to <{}> queued as {}", id, env.sender, bounce_id);
        enqueue_here(bounce_id, env.upstream_mailbox.empty() ? cfg_.upstream.mailbox : env.upstream_mailbox);
    }
    co_return attempt_result{};
}

// ---------------------------------------------------------------------------
// The control socket's requests

namespace {

std::string string_in(const boost::json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) return std::string(it->value().get_string());
    return {};
}

boost::json::object result(const std::string& id, bool ok, const std::string& text) {
    return boost::json::object{{"id", id}, {"ok", ok}, {"text", text}};
}

const char* status_name(int s) {
    static constexpr const char* names[] = {"waiting", "ready", "in_flight", "parked"};
    return names[s];
}

}  // namespace

asio::awaitable<boost::json::object> delivery::control(boost::json::object request) {
    const std::string verb = string_in(request, "verb");
    if (verb == "status") co_return status_reply();
    if (verb == "oauth-status") {
        boost::json::object reply{{"ok", true}};
        reply["status"] = credentials_ != nullptr ? boost::json::parse(credentials_->status_json())
                                                  : boost::json::value(boost::json::object{{"sources", boost::json::array{}}});
        co_return reply;
    }
    if (verb == "token-readiness") {
        boost::json::array tokens;
        if (credentials_ != nullptr) tokens = co_await credentials_->check_tokens();
        co_return boost::json::object{{"ok", true}, {"tokens", std::move(tokens)}};
    }
    if (verb == "import") {
        boost::json::object reply = co_await import_from(std::move(request));
        co_return reply;
    }
    if (verb != "retry" && verb != "hold" && verb != "release" && verb != "delete")
        co_return boost::json::object{{"ok", false}, {"error", "unknown verb '" + verb + "'"}};
    const auto ids = request.find("ids");
    if (ids == request.end() || !ids->value().is_array())
        co_return boost::json::object{{"ok", false}, {"error", "`ids` must be an array of queue ids"}};
    boost::json::array results;
    for (const auto& v : ids->value().get_array()) {
        if (!v.is_string()) continue;
        std::string id(v.get_string());
        if (!valid_queue_id(id)) {
            results.emplace_back(result(id, false, "no message " + id + " in the queue"));
            continue;
        }
        results.emplace_back(co_await change(verb, std::move(id)));
    }
    co_return boost::json::object{{"ok", true}, {"results", std::move(results)}};
}

// One message's retry, hold, release or delete.
asio::awaitable<boost::json::object> delivery::change(std::string verb, std::string id) {
    auto known = messages_.find(id);
    if (known != messages_.end() && known->second.state == status::in_flight) {
        if (verb == "retry") co_return result(id, true, id + " is being delivered right now");
        if (verb == "release") co_return result(id, true, id + ": not held");
        after_attempt_[id] = verb;
        co_return result(id, true,
                         id + ": " + (verb == "hold" ? "held" : "deleted") + " as soon as its current attempt ends");
    }
    struct outcome_of_change {
        bool found = true;
        bool busy = false;
        bool held = false;           // afterwards
        std::string mailbox;         // from the envelope, for a message the delivery does not know
        std::int64_t received_at = 0;
        bool delay_warned = false;
        std::string text;
    };
    auto act = [this, &verb, &id] {
        outcome_of_change o;
        const fs::path file = spool_.dir() / "queue" / id;
        auto lock = message_lock::try_lock(file);
        if (!lock) {
            o.found = fs::exists(file);
            o.busy = o.found;
            return o;
        }
        if (verb == "delete") {
            // The message first: a state file without its message is inert,
            // a message without its state would be delivered again in full.
            spool_.remove(id);
            states_.remove(id);
            o.text = id + ": deleted";
            return o;
        }
        const auto loaded = states_.load(id);
        queue_state st = loaded.value_or(queue_state{});
        const spool_envelope env = spool_.load_envelope(id);
        o.mailbox = env.upstream_mailbox.empty() ? cfg_.upstream.mailbox : env.upstream_mailbox;
        o.received_at = env.received_at;
        o.delay_warned = st.delay_warned;
        if (verb == "hold") {
            o.text = id + (st.held ? ": already held" : ": held");
            if (!st.held) {
                st.held = true;
                states_.save(id, st);
            }
        } else if (verb == "release") {
            o.text = id + (st.held ? ": released" : ": not held");
            if (st.held) {
                st.held = false;
                st.next_attempt = 0;
                states_.save(id, st);
            }
        } else {  // retry
            if (loaded && st.next_attempt != 0) {
                st.next_attempt = 0;
                states_.save(id, st);
            }
            o.text = id + ": retry requested";
            if (st.held) o.text += " (held: `subrelay queue release " + id + "` delivers it)";
        }
        o.held = st.held;
        return o;
    };
    outcome_of_change o;
    try {
        o = co_await run_blocking(blocking_, act);
    } catch (const std::exception& e) {
        co_return result(id, false, id + ": " + e.what());
    }
    if (!o.found) {
        forget(id);
        co_return result(id, false, "no message " + id + " in the queue");
    }
    if (o.busy) co_return result(id, false, id + " is being delivered right now; try again in a moment");
    spdlog::info("queue {} {}: {}", verb, id, o.text);
    if (verb == "delete") {
        forget(id);
        co_return result(id, true, o.text);
    }
    auto it = messages_.find(id);
    if (it == messages_.end())
        it = messages_.emplace(id, entry{o.mailbox, status::waiting, o.received_at, o.delay_warned}).first;
    // Taken by a worker meanwhile: its attempt reads the state just written.
    if (it->second.state == status::in_flight) co_return result(id, true, o.text);
    if (o.held) {
        unschedule(id);  // waits for `release`
    } else if (it->second.state == status::waiting) {
        make_ready(id);
    }
    // Asked to try now: an unavailable upstream mailbox is probed now too.
    if (!o.held && (verb == "retry" || verb == "release")) {
        lane& l = lane_for(it->second.mailbox);
        if (l.down) schedule(lane_key(l.mailbox), now_());
    }
    co_return result(id, true, o.text);
}

// Messages of another node's spool: {"dir": absolute path, "ids": [their names in DIR/queue]}.
// Each is written into this spool (relay/spool/import.hpp) on the blocking
// pool, then filed here at once: the relay alone writes its queue.
asio::awaitable<boost::json::object> delivery::import_from(boost::json::object request) {
    const std::string dir = string_in(request, "dir");
    if (dir.empty() || !fs::path(dir).is_absolute())
        co_return boost::json::object{{"ok", false}, {"error", "`dir` must be an absolute path"}};
    const auto list = request.find("ids");
    if (list == request.end() || !list->value().is_array())
        co_return boost::json::object{{"ok", false}, {"error", "`ids` must be an array of names in DIR/queue"}};
    std::vector<std::string> names;
    for (const auto& v : list->value().get_array())
        if (v.is_string()) names.emplace_back(v.get_string());
    if (stopping_) co_return boost::json::object{{"ok", false}, {"error", "the relay is stopping"}};
    struct outcome_of_import {
        std::string error;
        std::vector<import_result> results;
    };
    const std::int64_t now = now_();
    auto work = [this, &dir, &names, now] {
        outcome_of_import o;
        try {
            const import_source from(dir, spool_.dir());
            for (const auto& name : names) o.results.push_back(import_message(from, name, spool_, states_, now));
        } catch (const std::exception& e) {
            o.error = e.what();
        }
        return o;
    };
    outcome_of_import o;
    o = co_await run_blocking(blocking_, work);
    if (!o.error.empty()) {
        spdlog::warn("queue import from {}: {}", dir, o.error);
        co_return boost::json::object{{"ok", false}, {"error", o.error}};
    }
    boost::json::array results;
    for (const import_result& r : o.results) {
        const std::string text = describe(r);
        boost::json::object out{{"id", r.source_id}, {"queue_id", r.id}, {"text", text},
                                {"source_removed", r.source_removed}};
        switch (r.what) {
        case import_result::outcome::imported: {
            out["outcome"] = "imported";
            const std::string mailbox =
                r.envelope.upstream_mailbox.empty() ? cfg_.upstream.mailbox : r.envelope.upstream_mailbox;
            const bool held = r.state && r.state->held;
            out["upstream_mailbox"] = mailbox;
            out["mailbox_configured"] = configured(mailbox);
            spdlog::info("queue import id={} source_id={} from={} upstream={} status={}{}", r.id, r.source_id, dir,
                         mailbox, held ? "held" : "queued", r.reason.empty() ? "" : " (" + r.reason + ")");
            if (!configured(mailbox))
                spdlog::warn("queue import id={}: {}; it is tried through the default OAuth profile and stays queued "
                             "if the upstream refuses it",
                             r.id, not_configured_hint(mailbox));
            adopt(r.id, mailbox, r.envelope.received_at, r.state);
            break;
        }
        case import_result::outcome::already:
            out["outcome"] = "already";
            spdlog::info("queue import from {}: {}", dir, text);
            break;
        case import_result::outcome::skipped:
            out["outcome"] = "skipped";
            spdlog::warn("queue import from {}: {}", dir, text);
            break;
        }
        results.emplace_back(std::move(out));
    }
    co_return boost::json::object{{"ok", true}, {"results", std::move(results)}};
}

void delivery::adopt(const std::string& id, const std::string& mailbox, std::int64_t received_at,
                     const std::optional<queue_state>& state) {
    const bool delay_warned = state && state->delay_warned;
    auto [it, inserted] = messages_.emplace(id, entry{mailbox, status::waiting, received_at, delay_warned});
    if (!inserted || (state && state->held)) return;  // a held one waits for `queue release`
    make_ready(id);
}

asio::awaitable<void> delivery::change_after_attempt(std::string verb, std::string id) {
    const boost::json::object r = co_await change(verb, id);
    if (!r.at("ok").as_bool()) spdlog::warn("queue {} {} after its attempt: {}", verb, id, string_in(r, "text"));
}

boost::json::object delivery::status_reply() const {
    boost::json::object messages;
    for (const auto& [id, e] : messages_) {
        boost::json::object m{{"status", status_name(static_cast<int>(e.state))}, {"upstream_mailbox", e.mailbox},
                              {"received_at", e.received_at}};
        if (const auto at = due_.due_of(id)) m["due"] = *at;
        messages[id] = std::move(m);
    }
    boost::json::array lanes;
    for (const auto& [name, l] : lanes_) {
        boost::json::object o{{"upstream_mailbox", name},
                              {"available", !l->down},
                              {"connections", l->active},
                              {"ready", l->ready.size()},
                              {"waiting_for_it", l->parked.size()}};
        if (l->down) {
            o["reason"] = l->down_reason;
            o["hint"] = l->down_hint;
            if (const auto at = due_.due_of(lane_key(name))) o["next_probe"] = *at;
        }
        if (l->paused_until > now_()) o["paused_until"] = l->paused_until;
        lanes.emplace_back(std::move(o));
    }
    return boost::json::object{{"ok", true}, {"now", now_()}, {"messages", std::move(messages)}, {"lanes", std::move(lanes)}};
}

asio::awaitable<void> delivery::stop(std::chrono::seconds grace) {
    stopping_ = true;
    timer_.cancel();
    for (auto* t : waits_) t->cancel();  // idle connections say QUIT now
    if (workers_ > 0) {
        // Busy ones finish the message in hand; the last one to end cancels this wait.
        all_done_.expires_after(grace);
        co_await all_done_.async_wait(with_error);
    }
    if (workers_ > 0) {
        spdlog::warn("delivery: {} connection(s) still busy after {}s; cutting them off (their messages stay queued)",
                     workers_, grace.count());
        for (auto* t : targets_) t->cancel();
        all_done_.expires_after(std::chrono::seconds(5));
        co_await all_done_.async_wait(with_error);
    }
    if (workers_ > 0) spdlog::warn("delivery: {} connection(s) did not end; their messages stay queued", workers_);
}

}  // namespace subrelay::relay
