#pragma once
// What Microsoft Graph's answer to a sendMail means for the queue, as pure
// functions (the Graph target does the I/O): sent, retried later, the
// mailbox paused (throttling) or unavailable (its permission or the mailbox
// itself), the token to be renewed once, or failed for good. Each answer
// that needs a fix comes with a one-line hint naming it, as the SMTP path's
// replies do (relay/delivery/rules.hpp).
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/reply.hpp"

namespace subrelay::relay {

// Graph's answer: the HTTP status, its Retry-After, and the error in its body.
struct graph_answer {
    int status = 0;
    std::optional<std::chrono::seconds> retry_after;
    std::string error_code;     // the body's error.code ("ErrorAccessDenied"), "" when none
    std::string error_message;  // the body's error.message
};

struct graph_outcome {
    enum class kind {
        sent,                  // 202: every recipient was handed over
        retry,                 // a temporary failure of this message: its backoff
        pause_mailbox,         // throttled (429, 503): the mailbox waits `wait`, its messages with it
        mailbox_unavailable,   // a failure of the mailbox, not of its messages (permission, no such mailbox)
        renew_token,           // 401: a new token, then once more
        failed,                // for good: the message's recipients bounce
    };
    kind what = kind::retry;
    std::chrono::seconds wait{0};  // pause_mailbox: Retry-After, or a default
    smtp::reply reply;             // the answer as an SMTP reply, for the history, the log and a bounce
    std::string hint;              // the fix, when there is one to name
};

// `token_renewed`: this attempt already renewed its token after a 401.
graph_outcome classify_graph(const graph_answer& a, std::string_view mailbox, bool token_renewed);

// Reads Graph's error body, {"error": {"code": ..., "message": ...}}, into
// `a` (nothing when the body is not one).
void read_graph_error(std::string_view body, graph_answer& a);

// Retry-After in delta-seconds ("120"); an HTTP-date or anything else is nullopt.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value);

}  // namespace subrelay::relay
