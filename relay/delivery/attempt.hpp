#pragma once
// One delivery attempt of one message, as pure functions over the
// message's state (relay/spool/queue_state.hpp) and what the target answered: which
// recipients to try, and how the outcome is recorded. The delivery runs
// them between reading the state and writing it back; nothing here does
// I/O or reads the clock.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/delivery/rules.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"
#include "smtp/client_session.hpp"

namespace subrelay::relay {

// Recipients of the envelope that are neither delivered nor failed.
std::vector<std::string> remaining(const spool_envelope& env, const queue_state& st);

// Counts an attempt: its reply (and the upstream's own reply, "" when the
// failure was ours: the one from an earlier attempt is kept), hint and a
// history line.
void note_attempt(queue_state& st, std::int64_t now, const std::string& reply, const std::string& upstream_reply,
                  const std::string& hint);

// The message outlived its lifetime: `to` fail with 4.4.7, quoting the
// last upstream reply (the message's own, else `lane_reply`, the one that
// kept its upstream mailbox unavailable).
void expire(queue_state& st, const std::vector<std::string>& to, const retry_schedule& s,
            const std::string& lane_reply = {});

// What an attempt came to, for the log line and the lane.
struct recorded {
    std::string reply_line;     // one line
    std::string hint;           // "" or the fix
    bool throttled = false;     // the upstream asks this mailbox to slow down
};

// A transaction that ran to its end (or to a refused MAIL): recipients the
// upstream accepted are delivered, those refused for good failed, the rest
// stay; the attempt is counted. `hint`: the target's own fix for what it
// was answered (Graph's), instead of the SMTP rules'.
recorded record_result(queue_state& st, const std::vector<std::string>& to, const smtp::message_result& r,
                       std::int64_t now, std::string_view mailbox, std::string_view hint = {});
// A transaction that broke off (connection lost, file not written): nothing
// delivered, the attempt is counted.
recorded record_failure(queue_state& st, const std::string& failure, std::int64_t now, std::string_view mailbox);

// "5 days", "3 hours", "42 seconds".
std::string describe_duration(std::chrono::seconds d);

}  // namespace subrelay::relay
