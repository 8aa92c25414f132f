#include "policy/limits.hpp"

#include "smtp/text/ascii.hpp"

#include <algorithm>

namespace subrelay::policy {

namespace {

constexpr auto message_window = std::chrono::minutes(1);
constexpr auto recipient_window = std::chrono::hours(24);
// Recipients accepted within a minute of each other share one entry, dated
// by the first: an account keeps at most 1,440 of them (one a message would
// be millions a day on a busy relay, in memory and in limits.state), at the
// price of recipients leaving the day's window up to a minute early.
constexpr auto recipient_bucket = std::chrono::minutes(1);

}  // namespace

limiter::limiter(clock_fn now) : now_(std::move(now)) {}

limiter_snapshot limiter::snapshot(std::chrono::system_clock::time_point system_now) {
    using system_duration = std::chrono::system_clock::duration;
    const auto now = now_();
    // An event counted while this runs may be a little younger than `now`:
    // it comes out a little in the future, which restore() takes as now.
    const auto to_system = [&](std::chrono::steady_clock::time_point t) {
        return system_now - std::chrono::duration_cast<system_duration>(now - t);
    };
    limiter_snapshot out;
    std::lock_guard lock(mutex_);
    for (auto& [identity, c] : by_identity_) {
        expire(c, now);
        if (c.messages.empty() && c.recipients.empty()) continue;
        counted_account a{identity, {}, {}};
        a.messages.reserve(c.messages.size());
        for (const auto t : c.messages) a.messages.push_back(to_system(t));
        a.recipients.reserve(c.recipients.size());
        for (const auto& [t, n] : c.recipients) a.recipients.emplace_back(to_system(t), n);
        out.accounts.push_back(std::move(a));
    }
    std::sort(out.accounts.begin(), out.accounts.end(),
              [](const counted_account& x, const counted_account& y) { return x.identity < y.identity; });
    return out;
}

void limiter::restore(const limiter_snapshot& s, std::chrono::system_clock::time_point system_now) {
    using steady = std::chrono::steady_clock;
    const auto now = now_();
    // The time an event of `age` ago has on this process's clock, or nullopt
    // when it has left `window`. Compared before subtracting: a time far in
    // the past or future must not overflow.
    const auto when = [&](std::chrono::system_clock::time_point t,
                          steady::duration window) -> std::optional<steady::time_point> {
        if (t >= system_now) return now;  // the clock was set back since: counts as now
        if (t <= system_now - window) return std::nullopt;
        return now - std::chrono::duration_cast<steady::duration>(system_now - t);
    };
    std::lock_guard lock(mutex_);
    for (const auto& a : s.accounts) {
        auto& c = get(a.identity);
        std::vector<steady::time_point> messages(c.messages.begin(), c.messages.end());
        for (const auto t : a.messages)
            if (const auto at = when(t, message_window)) messages.push_back(*at);
        std::sort(messages.begin(), messages.end());
        c.messages.assign(messages.begin(), messages.end());

        std::vector<std::pair<steady::time_point, std::size_t>> recipients(c.recipients.begin(), c.recipients.end());
        for (const auto& [t, n] : a.recipients)
            if (const auto at = when(t, recipient_window); at && n > 0) recipients.emplace_back(*at, n);
        std::stable_sort(recipients.begin(), recipients.end(),
                         [](const auto& x, const auto& y) { return x.first < y.first; });
        c.recipients.assign(recipients.begin(), recipients.end());
        c.recipients_total = 0;
        for (const auto& r : c.recipients) c.recipients_total += r.second;
        expire(c, now);
    }
}

limiter::counters& limiter::get(std::string_view identity) { return by_identity_[text::ascii_lower(identity)]; }

void limiter::expire(counters& c, std::chrono::steady_clock::time_point now) {
    // An event leaves the window when it is a full window old.
    while (!c.messages.empty() && now - c.messages.front() >= message_window) c.messages.pop_front();
    while (!c.recipients.empty() && now - c.recipients.front().first >= recipient_window) {
        c.recipients_total -= c.recipients.front().second;
        c.recipients.pop_front();
    }
}

std::optional<reservation> limiter::reserve_message(std::string_view identity, const effective_limits& l,
                                                    smtp::reply& refusal) {
    const auto now = now_();
    std::lock_guard lock(mutex_);
    auto& c = get(identity);
    expire(c, now);
    if (l.max_messages_per_minute != 0 && c.messages.size() + c.held_messages >= l.max_messages_per_minute) {
        refusal = replies::message_rate_exceeded();
        return std::nullopt;
    }
    ++c.held_messages;
    return reservation(*this, text::ascii_lower(identity));
}

std::optional<smtp::reply> limiter::reserve_recipient(reservation& r, const effective_limits& l) {
    if (l.max_recipients_per_message != 0 && r.recipients_ >= l.max_recipients_per_message) {
        return replies::too_many_recipients();
    }
    const auto now = now_();
    std::lock_guard lock(mutex_);
    auto& c = get(r.identity_);
    expire(c, now);
    if (l.max_recipients_per_day != 0 && c.recipients_total + c.held_recipients + 1 > l.max_recipients_per_day) {
        return replies::daily_recipients_exceeded();
    }
    ++c.held_recipients;
    ++r.recipients_;
    return std::nullopt;
}

void limiter::give_back(const std::string& identity, std::size_t recipients, bool record_them) {
    const auto now = now_();
    std::lock_guard lock(mutex_);  // held and counted in one step: nobody sees the quota free in between
    auto& c = get(identity);
    if (c.held_messages > 0) --c.held_messages;
    c.held_recipients -= std::min(c.held_recipients, recipients);
    if (record_them) add(c, now, recipients);
}

void reservation::commit() {
    if (limiter_ == nullptr) return;
    std::exchange(limiter_, nullptr)->give_back(identity_, recipients_, true);
}

void reservation::release() {
    if (limiter_ == nullptr) return;
    std::exchange(limiter_, nullptr)->give_back(identity_, recipients_, false);
}

void reservation::release_recipient() {
    if (limiter_ == nullptr || recipients_ == 0) return;
    --recipients_;
    limiter_->give_back_recipient(identity_);
}

void limiter::give_back_recipient(const std::string& identity) {
    std::lock_guard lock(mutex_);
    auto& c = get(identity);
    if (c.held_recipients > 0) --c.held_recipients;
}

void limiter::add(counters& c, std::chrono::steady_clock::time_point now, std::size_t recipients) {
    changes_.fetch_add(1, std::memory_order_acq_rel);
    expire(c, now);
    c.messages.push_back(now);
    if (recipients > 0) {
        if (!c.recipients.empty() && now - c.recipients.back().first < recipient_bucket)
            c.recipients.back().second += recipients;
        else
            c.recipients.emplace_back(now, recipients);
        c.recipients_total += recipients;
    }
}

}  // namespace subrelay::policy
