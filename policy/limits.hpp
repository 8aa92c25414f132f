#pragma once
// Per-account submission counters (messages per minute, recipients per
// day). They live outside the immutable engine so that they survive a
// policy reload, and are copied out as wall-clock times (snapshot) and back
// (restore) so that they survive a restart. Thread-safe. Time comes from an
// injected clock.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <unordered_map>
#include <deque>
#include <vector>

#include "policy/policy.hpp"
#include "smtp/reply.hpp"

namespace subrelay::policy {

class limiter;

// What the limiter has counted for one account, with wall-clock times: a
// steady_clock time means nothing to the next process.
struct counted_account {
    using time_point = std::chrono::system_clock::time_point;
    std::string identity;                                       // lower case
    std::vector<time_point> messages;                           // oldest first
    std::vector<std::pair<time_point, std::size_t>> recipients;  // oldest first; counts > 0
    friend bool operator==(const counted_account&, const counted_account&) = default;
};

// Every account with something still in its windows, by identity. What
// transactions under way hold is not part of it: they end with the process.
struct limiter_snapshot {
    std::vector<counted_account> accounts;
    friend bool operator==(const limiter_snapshot&, const limiter_snapshot&) = default;
};

// What one transaction holds of its account's quotas, from MAIL and each
// RCPT until its message is accepted (commit) or not (the destructor, or
// release(), gives it back): parallel sessions of one account cannot all
// pass a check that counts only accepted messages.
class reservation {
public:
    reservation(limiter& l, std::string identity) : limiter_(&l), identity_(std::move(identity)) {}
    reservation(reservation&& other) noexcept
        : limiter_(std::exchange(other.limiter_, nullptr)), identity_(std::move(other.identity_)),
          recipients_(other.recipients_) {}
    reservation& operator=(reservation&& other) noexcept {
        if (this != &other) {
            release();
            limiter_ = std::exchange(other.limiter_, nullptr);
            identity_ = std::move(other.identity_);
            recipients_ = other.recipients_;
        }
        return *this;
    }
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;
    ~reservation() { release(); }

    [[nodiscard]] const std::string& identity() const { return identity_; }
    [[nodiscard]] std::size_t recipients() const { return recipients_; }
    // The message was accepted: what was held is counted for good.
    void commit();
    // The transaction ended without a message: what was held is free again.
    void release();
    // The last recipient reserved was refused after all (by the quota the
    // nodes of a cluster share): its place is free again.
    void release_recipient();

private:
    friend class limiter;
    limiter* limiter_;
    std::string identity_;
    std::size_t recipients_ = 0;
};

class limiter {
public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
    explicit limiter(clock_fn now = [] { return std::chrono::steady_clock::now(); });

    // At MAIL: a reservation of one message, or nullopt and the reply
    // (421 4.4.2 past max_messages_per_minute in the sliding minute,
    // counting what other transactions hold). At RCPT: one recipient more
    // in `r`, or the reply (past the message's or the day's limit).
    [[nodiscard]] std::optional<reservation> reserve_message(std::string_view identity, const effective_limits& l,
                                                             smtp::reply& refusal);
    [[nodiscard]] std::optional<smtp::reply> reserve_recipient(reservation& r, const effective_limits& l);

    // The counted messages and recipients still in their windows, with
    // times converted to the wall clock, which reads `system_now` at this
    // moment.
    [[nodiscard]] limiter_snapshot snapshot(std::chrono::system_clock::time_point system_now);
    // Adds what a snapshot (of an earlier process) holds to the counters
    // (at start, before any session). Times are converted back by their age
    // at `system_now`: what has left its window is dropped, and a time in the
    // future (the clock was set back) counts as now.
    void restore(const limiter_snapshot& s, std::chrono::system_clock::time_point system_now);
    // How many times the counters have grown: when it differs from the value
    // read before the last snapshot that was saved, there is news to save.
    [[nodiscard]] std::uint64_t changes() const { return changes_.load(std::memory_order_acquire); }

private:
    friend class reservation;
    struct counters {
        std::deque<std::chrono::steady_clock::time_point> messages;                              // last minute
        std::deque<std::pair<std::chrono::steady_clock::time_point, std::size_t>> recipients;  // last 24 h
        std::size_t recipients_total = 0;
        std::size_t held_messages = 0;    // reserved by transactions under way
        std::size_t held_recipients = 0;
    };
    void give_back(const std::string& identity, std::size_t recipients, bool record_them);
    void give_back_recipient(const std::string& identity);
    void add(counters& c, std::chrono::steady_clock::time_point now, std::size_t recipients);  // mutex_ held
    counters& get(std::string_view identity);
    void expire(counters& c, std::chrono::steady_clock::time_point now);

    clock_fn now_;
    std::atomic<std::uint64_t> changes_{0};
    std::mutex mutex_;
    std::unordered_map<std::string, counters> by_identity_;
};

}  // namespace subrelay::policy
