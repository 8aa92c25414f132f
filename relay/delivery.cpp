#include "relay/delivery.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "relay/blocking.hpp"
#include "relay/spool/durable_file.hpp"
#include "relay/oauth_cli.hpp"
#include "relay/system_clock.hpp"
#include "relay/tls.hpp"
#include "relay/upstream.hpp"
#include "smtp/address.hpp"
#include "smtp/dsn.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

struct delivery::lane {
    std::string mailbox;
    std::deque<std::string> ready;                          // ids to send now
    unsigned active = 0;                                    // connections open (or opening)
    std::set<asio::steady_timer*> idle_waiters;             // workers waiting for more messages
    std::deque<std::chrono::steady_clock::time_point> sent; // messages sent in the last minute
    std::chrono::steady_clock::time_point paused_until{};   // throttled: no new connection before
    unsigned throttles = 0;                                 // consecutive throttling replies
};

namespace {

// How long a connection stays open without work before it says QUIT.
constexpr std::chrono::seconds idle_keepalive{10};
constexpr std::size_t history_lines = 20;

std::int64_t system_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string utc_stamp(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// `upstream_reply`: the upstream's own reply in this attempt, "" when the
// failure was ours (it is kept from an earlier attempt then).
void note_attempt(queue_state& st, std::int64_t now, const std::string& reply, const std::string& upstream_reply,
                  const std::string& hint) {
    ++st.attempts;
    if (st.first_attempt == 0) st.first_attempt = now;
    st.last_reply = reply;
    if (!upstream_reply.empty()) st.last_upstream_reply = upstream_reply;
    st.hint = hint;
    st.history.push_back(utc_stamp(now) + " attempt " + std::to_string(st.attempts) + ": " + reply);
    if (st.history.size() > history_lines)
        st.history.erase(st.history.begin(), st.history.end() - static_cast<std::ptrdiff_t>(history_lines));
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// Recipients of the envelope that are neither delivered nor failed.
std::vector<std::string> remaining(const spool_envelope& env, const queue_state& st) {
    std::vector<std::string> out;
    for (const auto& r : env.recipients) {
        if (contains(st.delivered, r)) continue;
        if (std::any_of(st.failed.begin(), st.failed.end(), [&](const recipient_failure& f) { return f.address == r; }))
            continue;
        out.push_back(r);
    }
    return out;
}

std::string status_of(const std::string& reply, const char* fallback) {
    return smtp::enhanced_status_in(reply).value_or(fallback);
}

// A notice about message `id` to its sender (recipients to be added).
smtp::dsn_request notice_for(const conf::config& cfg, const std::string& id, const spool::loaded& msg,
                             smtp::dsn_request::kind kind) {
    smtp::dsn_request n;
    n.type = kind;
    n.reporting_mta = cfg.server.hostname;
    n.postmaster = "MAILER-DAEMON@" + cfg.server.hostname;
    n.recipient = msg.envelope.sender;
    n.original_id = id;
    n.arrival_date = msg.envelope.received_at;
    n.original_message = msg.data;
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

// "5 days", "3 hours", "42 seconds".
std::string describe_duration(std::chrono::seconds d) {
    const auto s = d.count();
    if (s >= 86400 && s % 86400 == 0) return std::to_string(s / 86400) + (s == 86400 ? " day" : " days");
    if (s >= 3600 && s % 3600 == 0) return std::to_string(s / 3600) + (s == 3600 ? " hour" : " hours");
    return std::to_string(s) + (s == 1 ? " second" : " seconds");
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
      now_(now ? std::move(now) : clock_fn(system_now)) {
    if (cfg_.upstream.kind == conf::upstream_kind::smtp) {
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
    // Nothing else runs yet: the first survey may block.
    apply(survey({}, {}));
    if (!messages_.empty()) spdlog::info("spool holds {} message(s) from before", messages_.size());
    asio::co_spawn(io_, watch_wake_file(), asio::detached);
    asio::co_spawn(io_, publish_token_status(), asio::detached);  // `oauth status` lists every profile at once
}

// Reads what the spool holds (blocking: runs on the pool, or before the
// I/O thread starts): every id, and for each one not in flight its state
// and, when not yet known, the upstream mailbox from its envelope.
delivery::spool_survey delivery::survey(const std::set<std::string>& skip, const std::set<std::string>& known) const {
    spool_survey out;
    try {
        out.ids = spool_.list();
    } catch (const std::exception& e) {
        spdlog::error("spool: {}", e.what());
        out.ok = false;
        return out;
    }
    for (const auto& id : out.ids) {
        if (skip.contains(id)) continue;
        survey_item item{id, {}, {}, !known.contains(id)};
        try {
            item.state = states_.load(id);
            if (item.is_new) {
                auto m = spool_.load(id);
                item.mailbox = m.envelope.upstream_mailbox.empty() ? cfg_.upstream.mailbox : m.envelope.upstream_mailbox;
            }
        } catch (const std::exception& e) {
            spdlog::error("spool: cannot read message {}: {} (left in place)", id, e.what());
            continue;
        }
        out.items.push_back(std::move(item));
    }
    return out;
}

// Files what a survey found: new messages are queued, held ones left,
// retry requests (`subrelay queue retry`) and due retries made ready.
void delivery::apply(const spool_survey& found) {
    if (!found.ok) return;
    const std::int64_t now = now_();
    // Messages deleted behind our back (`subrelay queue delete`) are forgotten.
    for (auto it = messages_.begin(); it != messages_.end();) {
        if (it->second.state == status::waiting && !std::binary_search(found.ids.begin(), found.ids.end(), it->first))
            it = messages_.erase(it);
        else
            ++it;
    }
    for (const auto& item : found.items) {
        auto known = messages_.find(item.id);
        // In flight since the survey began: its worker knows better.
        if (known != messages_.end() && known->second.state != status::waiting) continue;
        if (known == messages_.end()) {
            // Known at the survey and forgotten since: delivered meanwhile.
            if (!item.is_new) continue;
            known = messages_.emplace(item.id, entry{item.mailbox, status::waiting}).first;
        }
        if (item.state && item.state->held) continue;
        const std::int64_t at = item.state ? item.state->next_attempt : 0;
        if (at <= now)
            make_ready(item.id);
        else
            schedule(item.id, at);
    }
}

void delivery::snapshot(std::set<std::string>& skip, std::set<std::string>& known) const {
    for (const auto& [id, e] : messages_) {
        known.insert(id);
        if (e.state != status::waiting) skip.insert(id);
    }
}

asio::awaitable<void> delivery::rescan() {
    std::set<std::string> skip;
    std::set<std::string> known;
    snapshot(skip, known);
    auto look = [this, &skip, &known] { return survey(skip, known); };
    spool_survey found = co_await run_blocking(blocking_, look);
    apply(found);
}

asio::awaitable<void> delivery::watch_wake_file() {
    const fs::path wake = states_.dir() / ".wake";
    struct stat st {};
    std::int64_t last = ::stat(wake.c_str(), &st) == 0 ? st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec : 0;
    asio::steady_timer timer(io_);
    timers_.insert(&timer);
    while (!stopping_) {
        timer.expires_after(std::chrono::seconds(1));
        co_await timer.async_wait(with_error);
        if (stopping_) break;
        std::int64_t now = ::stat(wake.c_str(), &st) == 0 ? st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec : 0;
        if (now != last) {
            last = now;
            co_await rescan();
        }
    }
    timers_.erase(&timer);
}

void delivery::enqueue(const std::string& id, const std::string& upstream_mailbox) {
    asio::post(io_, [this, id, upstream_mailbox] { enqueue_here(id, upstream_mailbox); });
}

void delivery::enqueue_here(const std::string& id, const std::string& upstream_mailbox) {
    if (stopping_) return;
    auto [it, inserted] = messages_.emplace(id, entry{upstream_mailbox, status::waiting});
    if (!inserted && it->second.state != status::waiting) return;
    make_ready(id);
}

void delivery::make_ready(const std::string& id) {
    auto it = messages_.find(id);
    if (it == messages_.end() || it->second.state != status::waiting || stopping_) return;
    it->second.state = status::ready;
    lane& l = lane_for(it->second.mailbox);
    l.ready.push_back(id);
    kick(l);
}

void delivery::schedule(const std::string& id, std::int64_t at) {
    auto it = messages_.find(id);
    if (it == messages_.end()) return;
    it->second.state = status::waiting;
    asio::co_spawn(io_, wake_at(id, at), asio::detached);
}

asio::awaitable<void> delivery::wake_at(std::string id, std::int64_t at) {
    asio::steady_timer timer(io_, std::chrono::seconds(std::max<std::int64_t>(0, at - now_())));
    timers_.insert(&timer);
    co_await timer.async_wait(with_error);
    timers_.erase(&timer);
    if (stopping_) co_return;
    // A rescan may have made it ready already; make_ready ignores that.
    make_ready(id);
}

void delivery::kick(lane& l) {
    if (stopping_ || l.ready.empty()) return;
    if (std::chrono::steady_clock::now() < l.paused_until) return;  // a timer kicks again later
    // Connections waiting for work take it before another one is opened.
    const std::size_t idle = l.idle_waiters.size();
    for (auto* t : l.idle_waiters) t->cancel();
    if (l.ready.size() <= idle) return;
    if (l.active >= std::max(1u, cfg_.upstream.max_connections_per_mailbox)) return;
    ++l.active;
    ++workers_;
    auto worker = cfg_.upstream.kind == conf::upstream_kind::directory ? directory_worker(l) : smtp_worker(l);
    asio::co_spawn(io_, std::move(worker), [this, &l](std::exception_ptr e) {
        --workers_;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("delivery worker failed: {}", ex.what());
            }
        }
        // Work that came in while this connection was closing gets a new one.
        kick(l);
    });
}

void delivery::pause_lane(lane& l) {
    // Exchange throttles per mailbox: slow this one down, the others go on.
    if (std::chrono::steady_clock::now() < l.paused_until) return;  // already paused
    const auto wait = std::min<std::chrono::seconds>(std::chrono::seconds(60L << std::min(l.throttles, 4u)),
                                                     std::chrono::seconds(900));
    ++l.throttles;
    l.paused_until = std::chrono::steady_clock::now() + wait;
    spdlog::warn("upstream mailbox {} is throttled: no new connection for {}s", l.mailbox, wait.count());
    asio::co_spawn(io_, resume_lane_after(l, wait), asio::detached);
}

asio::awaitable<void> delivery::resume_lane_after(lane& l, std::chrono::seconds wait) {
    asio::steady_timer timer(io_, wait);
    timers_.insert(&timer);
    co_await timer.async_wait(with_error);
    timers_.erase(&timer);
    if (!stopping_) kick(l);
}

// The connection could not be set up: every message waiting for this lane
// records the attempt and waits for its next one.
void delivery::defer_lane(lane& l, const std::string& reason, const std::string& upstream_reply,
                          const classification& c) {
    std::deque<std::string> waiting;
    waiting.swap(l.ready);
    const std::int64_t now = now_();
    const auto settings = schedule_settings();
    for (const auto& id : waiting) {
        std::int64_t at = now + settings.initial.count();
        try {
            queue_state st = states_.load(id).value_or(queue_state{});
            note_attempt(st, now, reason, upstream_reply, c.hint);
            st.next_attempt = now + backoff(settings, st.attempts).count();
            at = st.next_attempt;
            states_.save(id, st);
        } catch (const std::exception& e) {
            spdlog::error("queue state of {}: {}", id, e.what());
        }
        spdlog::info("delivery id={} upstream={} status=deferred reason=\"{}\"{}", id, l.mailbox, reason,
                     c.hint.empty() ? "" : " hint=\"" + c.hint + "\"");
        auto it = messages_.find(id);
        if (it != messages_.end()) it->second.state = status::waiting;
        schedule(id, at);
    }
}

asio::awaitable<bool> delivery::wait_for_rate(lane& l) {
    const std::uint32_t max = cfg_.upstream.max_messages_per_minute;
    if (max == 0) co_return true;
    for (;;) {
        if (stopping_) co_return false;  // not sent: it stays queued for the next start
        const auto now = std::chrono::steady_clock::now();
        while (!l.sent.empty() && now - l.sent.front() >= std::chrono::minutes(1)) l.sent.pop_front();
        if (l.sent.size() < max) break;
        // The excess waits here rather than being sent to be throttled.
        asio::steady_timer timer(io_, l.sent.front() + std::chrono::minutes(1));
        timers_.insert(&timer);
        co_await timer.async_wait(with_error);
        timers_.erase(&timer);
    }
    l.sent.push_back(std::chrono::steady_clock::now());
    co_return true;
}

// One delivery attempt of one message over an open connection (null for
// the directory upstream). Everything learnt is saved in the message's
// state before the next step.
asio::awaitable<delivery::attempt_result> delivery::attempt(lane& l, upstream_connection* conn,
                                                            const std::string& id, bool reused) {
    attempt_result result_of_attempt;
    std::string& connection_failure = result_of_attempt.connection_failure;
    // A queue command holds the message: look again shortly.
    const attempt_result busy{outcome::busy, now_() + 2, {}};
    const fs::path file = spool_.dir() / "queue" / id;
    auto lock = message_lock::try_lock(file);
    if (!lock) co_return fs::exists(file) ? busy : attempt_result{};

    struct work {
        spool::loaded msg;
        queue_state st;
    };
    auto load = [this, &id] {
        work w;
        w.msg = spool_.load(id);
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
    if (w.st.held) co_return attempt_result{};
    const spool_envelope& env = w.msg.envelope;
    const auto settings = schedule_settings();
    const std::int64_t now = now_();
    std::vector<std::string> to = remaining(env, w.st);

    if (!to.empty() && expired(settings, env.received_at, now)) {
        // Too old: what is left fails, and the sender hears why.
        const std::string why = "4.4.7 message expired after " + describe_duration(settings.lifetime) +
                                " in the queue" +
                                (w.st.last_upstream_reply.empty() ? std::string()
                                                                  : "; last reply: " + w.st.last_upstream_reply);
        for (const auto& r : to) w.st.failed.push_back({r, why});
        spdlog::warn("delivery id={} status=expired recipients={}", id, smtp::bracketed_list(to));
        to.clear();
    }

    if (!to.empty()) {
        if (delay_warning_due(settings, w.st, env.received_at, now) && !smtp::is_automatic(env.sender, w.msg.data)) {
            smtp::dsn_request notice = notice_for(cfg_, id, w.msg, smtp::dsn_request::kind::delay);
            for (const auto& r : to)
                notice.recipients.push_back({r, "4.4.7", w.st.last_upstream_reply, cfg_.upstream.host});
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

        const std::vector<std::string> attempted = to;
        std::string reply_line;
        std::string hint;
        if (conn == nullptr) {
            // The directory upstream: the message and its envelope as files.
            auto write_out = [this, &id, &w, &to] {
                const auto& dir = cfg_.upstream.directory;
                fs::create_directories(dir);
                boost::json::object j;
                j["id"] = id;
                j["sender"] = w.msg.envelope.sender;
                boost::json::array rcpts;
                for (const auto& r : to) rcpts.emplace_back(r);
                j["recipients"] = std::move(rcpts);
                j["identity"] = w.msg.envelope.identity;
                j["upstream_mailbox"] = w.msg.envelope.upstream_mailbox;
                j["client_address"] = w.msg.envelope.client_address;
                j["received_at"] = w.msg.envelope.received_at;
                // The message first, then the envelope: a reader that sees
                // the .json file finds the whole .eml beside it.
                const fs::path eml = dir / (id + ".eml");
                const fs::path json = dir / (id + ".json");
                write_file_atomically(eml, eml.string() + ".tmp", {w.msg.data}, 0640);
                write_file_atomically(json, json.string() + ".tmp", {boost::json::serialize(j) + "\n"}, 0640);
            };
            try {
                co_await run_blocking(blocking_, write_out);
                for (const auto& r : to) w.st.delivered.push_back(r);
                reply_line = "written to " + cfg_.upstream.directory.string();
            } catch (const std::exception& e) {
                reply_line = std::string("451 4.3.0 ") + e.what();
            }
            note_attempt(w.st, now, reply_line, "", "");
        } else {
            if (!co_await wait_for_rate(l)) co_return busy;
            smtp::outgoing_message out;
            out.sender = env.sender;
            out.recipients = to;
            out.data = w.msg.data;
            out.size = w.msg.data.size();
            out.eight_bit = env.eight_bit;
            out.smtputf8 = env.smtputf8;
            smtp::message_result result;
            try {
                result = co_await conn->send(out);
            } catch (const std::exception& e) {
                connection_failure = e.what();
            }
            if (!connection_failure.empty() && reused && !conn->content_sent()) {
                // A pooled connection the upstream closed while it was idle
                // (Exchange closes idle sessions and restarts servers): none of
                // the message reached it, so it goes again at once over a new
                // connection, and this is not counted as an attempt.
                spdlog::info("delivery id={} upstream={}: the pooled connection was gone ({}); again on a new one",
                             id, l.mailbox, connection_failure);
                result_of_attempt.what = outcome::retry;
                result_of_attempt.retry_at = now;
                co_return result_of_attempt;
            }
            if (!connection_failure.empty()) {
                reply_line = connection_failure;
                classification c = classify(smtp::reply{}, "data", l.mailbox);
                hint = c.hint;
            } else {
                // Sort recipients: delivered, refused for good, or to try again.
                const std::vector<std::string> delivered = result.delivered();
                for (const auto& r : delivered) w.st.delivered.push_back(r);
                for (const auto& r : result.recipients) {
                    if (contains(delivered, r.address)) continue;
                    const smtp::reply& why = r.rcpt_reply.positive() ? result.final_reply : r.rcpt_reply;
                    if (why.permanent()) w.st.failed.push_back({r.address, why.summary()});
                }
                if (result.recipients.empty() && result.final_reply.permanent()) {
                    // MAIL itself was refused for good: every recipient shares its fate.
                    for (const auto& r : to) w.st.failed.push_back({r, result.final_reply.summary()});
                }
                reply_line = result.final_reply.summary();
                classification c = classify(result.final_reply, result.recipients.empty() ? "mail" : "data",
                                            l.mailbox);
                hint = c.hint;
                if (c.throttled) pause_lane(l);
            }
            note_attempt(w.st, now, reply_line, connection_failure.empty() ? reply_line : std::string(), hint);
        }
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
                     w.msg.data.size(), verdict, reply_line, hint.empty() ? "" : " hint=\"" + hint + "\"");
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
            if (smtp::is_automatic(e.sender, w.msg.data)) {
                spdlog::info("delivery id={}: no notice for an automatic message (sender <{}>)", id, e.sender);
            } else {
                smtp::dsn_request notice = notice_for(cfg_, id, w.msg, smtp::dsn_request::kind::failure);
                for (const auto& f : w.st.failed)
                    notice.recipients.push_back({f.address, status_of(f.reply, "5.0.0"), f.reply, cfg_.upstream.host});
                bounce_id = spool_.store(notice_envelope(e, now), smtp::build_dsn(notice, system_wall_clock(), system_random()));
            }
        }
        spool_.remove(id);
        states_.remove(id);
    };
    try {
        co_await run_blocking(blocking_, finish);
    } catch (const std::exception& e) {
        spdlog::error("delivery id={}: cannot finish: {} (kept; tried again later)", id, e.what());
        co_return attempt_result{outcome::retry, now + settings.initial.count(), {}};
    }
    if (!bounce_id.empty()) {
        spdlog::info("delivery id={} bounce to <{}> queued as {}", id, env.sender, bounce_id);
        enqueue_here(bounce_id, env.upstream_mailbox.empty() ? cfg_.upstream.mailbox : env.upstream_mailbox);
    }
    co_return attempt_result{};
}

void delivery::settle(const std::string& id, const attempt_result& r) {
    auto it = messages_.find(id);
    if (it == messages_.end()) return;
    if (r.what == outcome::done) {
        messages_.erase(it);
        return;
    }
    it->second.state = status::waiting;
    schedule(id, r.retry_at);
}

asio::awaitable<void> delivery::smtp_worker(lane& l) {
    struct active_guard {
        lane& l;
        ~active_guard() { --l.active; }
    } guard{l};

    upstream_endpoint to = credentials_ != nullptr ? credentials_->endpoint_for(l.mailbox)
                                                   : upstream_endpoint{cfg_.upstream.host, cfg_.upstream.port,
                                                                       cfg_.upstream.tls};
    std::optional<upstream_connection> conn;
    std::string failure;
    std::string failure_reply;  // the upstream's reply that failed the connection, if any
    classification failure_class;
    try {
        // A Google service account makes its mailbox's token source now: reading its key may fail.
        auth::token_source* tokens = credentials_ != nullptr ? credentials_->tokens_for(l.mailbox) : nullptr;
        conn.emplace(cfg_, std::move(to), *tls_, tokens, l.mailbox);
        co_await conn->open();
        l.throttles = 0;
    } catch (const auth::token_error& e) {
        // The profile is broken or its endpoint unwell: messages wait (and
        // bounce only at the end of their lifetime), the log says what to do.
        failure = e.what();
        failure_class.hint = e.hint();
    } catch (const upstream_error& e) {
        failure = e.what();
        if (e.server_reply().code != 0) failure_reply = e.server_reply().summary();
        failure_class = classify(e.server_reply(), e.stage(), l.mailbox);
    } catch (const std::exception& e) {
        failure = e.what();
        failure_class = classify(smtp::reply{}, "connect", l.mailbox);
    }
    co_await publish_token_status();
    if (!failure.empty()) {
        spdlog::warn("upstream connection for {} failed: {}{}", l.mailbox, failure,
                     failure_class.hint.empty() ? "" : " (" + failure_class.hint + ")");
        if (failure_class.throttled) {
            pause_lane(l);
            // The connections already open keep delivering what waits.
            if (l.active > 1) co_return;
        }
        defer_lane(l, failure, failure_reply, failure_class);
        co_return;
    }

    auto deadline = std::chrono::steady_clock::now() + idle_keepalive;
    bool reused = false;
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
        if (!conn->reusable(std::chrono::steady_clock::now())) {
            // Too old, or its token expired: QUIT, and the next message opens
            // a new connection with the current token (kick() on this worker's end).
            spdlog::info("upstream connection for {}: token expired or connection too old; opening a new one",
                         l.mailbox);
            break;
        }
        std::string id = l.ready.front();
        l.ready.pop_front();
        messages_[id].state = status::in_flight;
        const attempt_result r = co_await attempt(l, &*conn, id, reused);
        reused = true;
        settle(id, r);
        if (!r.connection_failure.empty()) break;  // this connection is gone
        deadline = std::chrono::steady_clock::now() + idle_keepalive;
    }
    co_await conn->quit();
}

// Keeps `subrelay oauth status` current: rewrites the status file when a
// token was fetched or a request failed since the last time.
asio::awaitable<void> delivery::publish_token_status() {
    if (credentials_ == nullptr) co_return;
    std::string signature;
    for (const auto& st : credentials_->status())
        signature += st.profile + '\n' + st.mailbox + '\n' + std::to_string(st.token.fetches) + '\n' +
                     st.token.last_error + '\n';
    if (signature == published_status_) co_return;
    published_status_ = signature;
    const std::string doc = credentials_->status_json() + "\n";
    const fs::path file = oauth_status_path(spool_.dir());
    auto write = [&doc, &file] {
        fs::create_directories(file.parent_path());
        write_file_atomically(file, file.string() + ".tmp", {doc}, 0640);
    };
    try {
        co_await run_blocking(blocking_, write);
    } catch (const std::exception& e) {
        spdlog::warn("oauth status file {}: {}", file.string(), e.what());
    }
}

asio::awaitable<void> delivery::directory_worker(lane& l) {
    struct active_guard {
        lane& l;
        ~active_guard() { --l.active; }
    } guard{l};
    while (!stopping_ && !l.ready.empty()) {
        std::string id = l.ready.front();
        l.ready.pop_front();
        messages_[id].state = status::in_flight;
        const attempt_result r = co_await attempt(l, nullptr, id);
        settle(id, r);
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
