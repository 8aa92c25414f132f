#pragma once
// Per-account submission counters (messages per minute, recipients per
// day). They live outside the immutable engine so that they survive a
// policy reload. Thread-safe. Time comes from an injected clock.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <deque>

#include "policy/policy.hpp"
#include "smtp/reply.hpp"

namespace subrelay::policy {

class limiter {
public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
    explicit limiter(clock_fn now = [] { return std::chrono::steady_clock::now(); });

    // At MAIL: may the account start another message now? (sliding minute;
    // 421 4.4.2 when over max_messages_per_minute.) Does not count it.
    [[nodiscard]] std::optional<smtp::reply> check_message(std::string_view identity, const effective_limits& l);
    // At RCPT: would one more recipient exceed the message or the daily
    // limit? `in_message` is the number already accepted for this message.
    [[nodiscard]] std::optional<smtp::reply> check_recipient(std::string_view identity, const effective_limits& l,
                                                             std::size_t in_message);
    // After the message was accepted (250): counts it and its recipients.
    void record(std::string_view identity, std::size_t recipients);

private:
    struct counters {
        std::deque<std::chrono::steady_clock::time_point> messages;                              // last minute
        std::deque<std::pair<std::chrono::steady_clock::time_point, std::size_t>> recipients;  // last 24 h
        std::size_t recipients_total = 0;
    };
    counters& get(std::string_view identity);
    void expire(counters& c, std::chrono::steady_clock::time_point now);

    clock_fn now_;
    std::mutex mutex_;
    std::unordered_map<std::string, counters> by_identity_;
};

}  // namespace subrelay::policy
