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
#include <variant>
#include <vector>

#include "auth/https_client.hpp"
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

// Graph delivers a message to the addresses of its To:, Cc: and Bcc:
// fields. Against the recipients `to` still to reach (`envelope`: all of
// the message's): the ones no such field names (to be added as Bcc:), or
// the refusal of a message whose fields name an address that is no
// recipient (Graph would send to it) or cannot be read. Recipients of
// `envelope` no longer in `to` may be named: at most a duplicate.
struct graph_header_check {
    std::vector<std::string> missing;
    std::optional<smtp::reply> refusal;
};
graph_header_check check_graph_header(std::string_view header_section, const std::vector<std::string>& to,
                                      const std::vector<std::string>& envelope);

// The message as it goes to Graph's MIME send, which delivers to the
// addresses of its To:, Cc: and Bcc: fields: `message` (as spooled, the
// relay's Received: field first) with a Bcc: field after that first field
// naming the recipients of `to` that no such field names, so that each of
// them is reached. Refused (a 5xx for every recipient) when those fields
// name an address that is not a recipient of `envelope` (Graph would send to
// it), or cannot be read. Addresses of `envelope` no longer in `to` (delivered
// before) may be reached again: at most a duplicate.
std::variant<std::string, smtp::reply> graph_message(std::string message, const std::vector<std::string>& to,
                                                     const std::vector<std::string>& envelope);

// "/v1.0/users/{mailbox}/sendMail" with the mailbox as a path segment, and
// the other paths the Graph target uses: the mailbox, its messages (where
// a draft is made), one message, and a draft's send.
std::string graph_send_path(std::string_view mailbox);
std::string graph_user_path(std::string_view mailbox);
std::string graph_messages_path(std::string_view mailbox);
std::string graph_message_path(std::string_view mailbox, std::string_view id);
std::string graph_draft_send_path(std::string_view mailbox, std::string_view id);

// The fix when Graph refuses to make a draft (ErrorAccessDenied): the
// permission that save_to_sent_items = false needs.
std::string draft_access_hint(std::string_view mailbox);

// A POST of a message as MIME, as Graph takes it (text/plain, the message
// as base64) to `path`: sendMail, or a mailbox's messages (a draft).
auth::https_session::request graph_mime_post(std::string path, std::string base64_message);

// The id in Graph's answer to a message's creation ({"id": ...}); "" when none.
std::string read_created_id(std::string_view body);

// The PATCH that marks a draft to be deleted once sent instead of kept in
// Sent Items (PidTagDeleteAfterSubmit, MAPI property 0x0E01, Boolean).
std::string delete_after_submit_patch();

}  // namespace subrelay::relay
