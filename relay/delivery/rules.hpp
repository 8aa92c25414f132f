#pragma once
// The delivery's rules, as pure functions of their inputs (time is passed
// in): when a message is tried again, when it expires or is late enough
// for a delay notice, and what an upstream reply means for the queue.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/spool/queue_state.hpp"
#include "smtp/reply.hpp"

namespace subrelay::relay {

struct retry_schedule {
    std::chrono::seconds initial{300};           // first retry (Postfix-like: about 5 minutes)
    std::chrono::seconds max{3600};              // doubling, capped at about an hour
    std::chrono::seconds lifetime{5 * 24 * 3600};// then bounce
    std::chrono::seconds delay_warning{4 * 3600};// 0: never warn
};

// Wait before attempt number attempts+1, after `attempts` failed ones (>= 1).
std::chrono::seconds backoff(const retry_schedule& s, unsigned attempts);
// True once the message has been queued longer than its lifetime.
bool expired(const retry_schedule& s, std::int64_t received_at, std::int64_t now);
// True when a delay notice is due and has not been sent.
bool delay_warning_due(const retry_schedule& s, const queue_state& st, std::int64_t received_at, std::int64_t now);

// What an upstream reply (or failure) means for the queue.
struct classification {
    bool permanent = false;      // 5xx: the recipient/message fails for good
    bool throttled = false;      // slow down this upstream mailbox (432 4.3.2, 4.7.x rate limits, ...)
    bool auth = false;           // the upstream refused our authentication
    std::string hint;            // one line naming the fix; empty when there is nothing specific to say
};

// stage: "connect", "tls", "auth", "mail", "rcpt", "data" (where it happened).
// mailbox: the upstream mailbox, named in hints ("Set-CASMailbox -Identity relay@contoso.com ...").
classification classify(const smtp::reply& r, std::string_view stage, std::string_view mailbox);

}  // namespace subrelay::relay
