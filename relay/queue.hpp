#pragma once
// The delivery state of queued messages, beside the spool: one small state
// file per message (spool/state/ID), written atomically, so that what was
// delivered, how often it was tried and why it failed survive a crash.
// Scheduling and the classification of upstream replies are pure
// functions of their inputs (time is passed in), for tests.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.hpp"

namespace subrelay::relay {

struct recipient_failure {
    std::string address;
    std::string reply;        // the upstream's reply, one line ("550 5.1.1 ...")
    friend bool operator==(const recipient_failure&, const recipient_failure&) = default;
};

struct queue_state {
    unsigned attempts = 0;
    std::int64_t first_attempt = 0;          // unix seconds; 0: not tried yet
    std::int64_t next_attempt = 0;           // unix seconds; 0: as soon as possible
    std::string last_reply;                  // one line: the last upstream reply or failure
    std::string hint;                        // one line naming the fix, or empty
    bool held = false;                       // `queue hold`: not delivered until released
    bool delay_warned = false;               // the delay notice went out
    std::vector<std::string> delivered;      // recipients the upstream accepted (never sent again)
    std::vector<recipient_failure> failed;   // recipients refused for good (for the bounce)
    std::vector<std::string> history;        // "DATE attempt N: reply" lines, the last 20
    friend bool operator==(const queue_state&, const queue_state&) = default;
};

std::string format_state(const queue_state& s);
std::optional<queue_state> parse_state(std::string_view text);

class state_store {
public:
    explicit state_store(std::filesystem::path spool_dir);   // uses spool_dir/state/
    void open();                                             // creates the directory; throws std::runtime_error
    // nullopt when the message has no state yet (never tried).
    [[nodiscard]] std::optional<queue_state> load(const std::string& id) const;
    // Atomic: temporary file, fsync, rename, fsync the directory. Throws std::runtime_error.
    void save(const std::string& id, const queue_state& s) const;
    void remove(const std::string& id) const;
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

private:
    std::filesystem::path dir_;
};

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
