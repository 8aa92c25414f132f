#include "policy/limits.hpp"

#include "smtp/text/ascii.hpp"

#include <algorithm>

namespace subrelay::policy {

namespace {

constexpr auto message_window = std::chrono::minutes(1);
constexpr auto recipient_window = std::chrono::hours(24);

}  // namespace

limiter::limiter(clock_fn now) : now_(std::move(now)) {}

limiter::counters& limiter::get(std::string_view identity) { return by_identity_[text::ascii_lower(identity)]; }

void limiter::expire(counters& c, std::chrono::steady_clock::time_point now) {
    // An event leaves the window when it is a full window old.
    while (!c.messages.empty() && now - c.messages.front() >= message_window) c.messages.pop_front();
    while (!c.recipients.empty() && now - c.recipients.front().first >= recipient_window) {
        c.recipients_total -= c.recipients.front().second;
        c.recipients.pop_front();
    }
}

std::optional<smtp::reply> limiter::check_message(std::string_view identity, const effective_limits& l) {
    if (l.max_messages_per_minute == 0) return std::nullopt;
    const auto now = now_();
    std::lock_guard lock(mutex_);
    const auto it = by_identity_.find(text::ascii_lower(identity));
    if (it == by_identity_.end()) return std::nullopt;
    expire(it->second, now);
    if (it->second.messages.size() >= l.max_messages_per_minute) return replies::message_rate_exceeded();
    return std::nullopt;
}

std::optional<smtp::reply> limiter::check_recipient(std::string_view identity, const effective_limits& l,
                                                    std::size_t in_message) {
    if (l.max_recipients_per_message != 0 && in_message >= l.max_recipients_per_message) {
        return replies::too_many_recipients();
    }
    if (l.max_recipients_per_day == 0) return std::nullopt;
    const auto now = now_();
    std::lock_guard lock(mutex_);
    std::size_t recorded = 0;
    if (const auto it = by_identity_.find(text::ascii_lower(identity)); it != by_identity_.end()) {
        expire(it->second, now);
        recorded = it->second.recipients_total;
    }
    if (recorded + in_message + 1 > l.max_recipients_per_day) return replies::daily_recipients_exceeded();
    return std::nullopt;
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

void limiter::record(std::string_view identity, std::size_t recipients) {
    const auto now = now_();
    std::lock_guard lock(mutex_);
    add(get(identity), now, recipients);
}

void limiter::add(counters& c, std::chrono::steady_clock::time_point now, std::size_t recipients) {
    expire(c, now);
    c.messages.push_back(now);
    if (recipients > 0) {
        c.recipients.emplace_back(now, recipients);
        c.recipients_total += recipients;
    }
}

}  // namespace subrelay::policy
