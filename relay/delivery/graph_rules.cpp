#include "relay/delivery/graph_rules.hpp"

#include <algorithm>
#include <charconv>

#include <boost/json.hpp>

#include "smtp/header.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace {

// Without a Retry-After, a throttled mailbox waits this long.
constexpr std::chrono::seconds default_pause{60};

graph_outcome outcome(graph_outcome::kind k, smtp::reply r, std::string hint = {}) {
    graph_outcome o;
    o.what = k;
    o.reply = std::move(r);
    o.hint = std::move(hint);
    return o;
}

std::string said(const graph_answer& a) {
    std::string s = "Microsoft Graph: " + std::to_string(a.status);
    if (!a.error_code.empty()) s += " " + a.error_code;
    if (!a.error_message.empty()) s += ": " + a.error_message;
    return s;
}

}  // namespace

graph_outcome classify_graph(const graph_answer& a, std::string_view mailbox, bool token_renewed) {
    using kind = graph_outcome::kind;
    const std::string box(mailbox);
    const std::string& code = a.error_code;
    if (a.status == 202) return outcome(kind::sent, smtp::reply(250, "2.0.0", "Accepted by Microsoft Graph"));
    if (a.status == 429 || a.status == 503 || a.status == 504) {
        auto o = outcome(kind::pause_mailbox, smtp::reply(451, "4.7.0", said(a)));
        o.wait = a.retry_after.value_or(default_pause);
        return o;
    }
    if (a.status == 401) {
        if (!token_renewed) return outcome(kind::renew_token, smtp::reply(451, "4.7.0", said(a)));
        return outcome(kind::mailbox_unavailable, smtp::reply(451, "4.7.0", said(a)),
                       "Graph refused a fresh token: the app needs the Mail.Send application permission with admin "
                       "consent, and its tokens must be for https://graph.microsoft.com/.default");
    }
    if (code == "ErrorAccessDenied") {
        return outcome(kind::mailbox_unavailable, smtp::reply(451, "4.7.0", said(a)),
                       "grant the app Mail.Send (application) with admin consent; if an Application Access Policy "
                       "limits it, let it reach " + box + ": Test-ApplicationAccessPolicy -Identity " + box +
                           " -AppId APP-ID");
    }
    if (code == "MailboxNotEnabledForRESTAPI" || code == "ErrorInvalidUser" || code == "Request_ResourceNotFound" ||
        code == "ResourceNotFound") {
        return outcome(kind::mailbox_unavailable, smtp::reply(451, "4.7.0", said(a)),
                       box + " must be an Exchange Online mailbox (licensed, not on-premises, not soft-deleted)");
    }
    if (code == "ErrorSendAsDenied") {
        return outcome(kind::failed, smtp::reply(550, "5.7.60", said(a)),
                       "let " + box + " send as the message's sender: Add-RecipientPermission -Identity SENDER "
                       "-Trustee " + box + " -AccessRights SendAs");
    }
    if (code == "ErrorInvalidRecipients") return outcome(kind::failed, smtp::reply(550, "5.1.1", said(a)));
    if (a.status == 413 || code == "ErrorMessageSizeExceeded")
        return outcome(kind::failed, smtp::reply(552, "5.3.4", said(a)));
    if (code.starts_with("ErrorMimeContent")) return outcome(kind::failed, smtp::reply(554, "5.6.0", said(a)));
    // Anything else waits and is tried again: a message is not bounced on
    // an answer nobody has seen yet (it bounces at the end of its lifetime).
    return outcome(kind::retry, smtp::reply(451, "4.3.0", said(a)));
}

void read_graph_error(std::string_view body, graph_answer& a) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return;
    const auto* error = v.get_object().if_contains("error");
    if (error == nullptr || !error->is_object()) return;
    const auto& e = error->get_object();
    if (const auto* c = e.if_contains("code"); c != nullptr && c->is_string()) a.error_code = std::string(c->get_string());
    if (const auto* m = e.if_contains("message"); m != nullptr && m->is_string())
        a.error_message = std::string(m->get_string());
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    long long seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty() || seconds < 0) return std::nullopt;
    return std::chrono::seconds(std::min<long long>(seconds, 24 * 3600));
}

namespace {

// Where the header section ends: after the CRLF of its last field (the
// empty line not included), or the message's end.
std::size_t header_end(std::string_view m) {
    if (m.starts_with("\r\n")) return 0;
    const auto blank = m.find("\r\n\r\n");
    return blank == std::string_view::npos ? m.size() : blank + 2;
}

// After the first field (with its folded lines): where the relay's
// Received: field ends.
std::size_t first_field_end(std::string_view m, std::size_t limit) {
    std::size_t at = 0;
    while (at < limit) {
        const auto crlf = m.find("\r\n", at);
        if (crlf == std::string_view::npos || crlf + 2 > limit) return limit;
        at = crlf + 2;
        if (at >= m.size() || (m[at] != ' ' && m[at] != '\t')) return at;
    }
    return limit;
}

bool contains(const std::vector<std::string>& list, std::string_view address) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& a) { return text::iequals(a, address); });
}

}  // namespace

graph_header_check check_graph_header(std::string_view header_section, const std::vector<std::string>& to,
                                      const std::vector<std::string>& envelope) {
    graph_header_check out;
    const auto compared = smtp::compare_header_recipients(header_section, to);
    if (const auto* e = std::get_if<smtp::header_error>(&compared)) {
        out.refusal = smtp::reply(550, "5.6.0", "Cannot read the " + e->field + ": field (" + e->message +
                                                    "): Microsoft Graph sends to the addresses in To:, Cc: and Bcc:");
        return out;
    }
    const auto& found = std::get<smtp::header_recipients>(compared);
    for (const auto& extra : found.extra) {
        if (contains(envelope, extra)) continue;
        out.refusal = smtp::reply(550, "5.7.1", "Header address <" + extra +
                                                    "> is not a recipient of this message: Microsoft Graph sends to "
                                                    "every address in To:, Cc: and Bcc:; name it in RCPT TO too, or "
                                                    "leave it out");
        return out;
    }
    out.missing = found.missing;
    return out;
}

std::variant<std::string, smtp::reply> graph_message(std::string message, const std::vector<std::string>& to,
                                                     const std::vector<std::string>& envelope) {
    const std::size_t end = header_end(message);
    const graph_header_check check = check_graph_header(std::string_view(message).substr(0, end), to, envelope);
    if (check.refusal) return *check.refusal;
    if (!check.missing.empty()) message.insert(first_field_end(message, end), smtp::bcc_field(check.missing));
    return message;
}

namespace {

// A URL path segment (RFC 3986): unreserved characters, sub-delims, ':' and
// '@' stay; the rest is percent-encoded.
std::string path_segment(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          std::string_view("-._~!$&'()*+,;=:@").find(ch) != std::string_view::npos;
        if (keep) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0f]);
        }
    }
    return out;
}

}  // namespace

std::string graph_user_path(std::string_view mailbox) { return "/v1.0/users/" + path_segment(mailbox); }
std::string graph_send_path(std::string_view mailbox) { return graph_user_path(mailbox) + "/sendMail"; }
std::string graph_messages_path(std::string_view mailbox) { return graph_user_path(mailbox) + "/messages"; }
std::string graph_message_path(std::string_view mailbox, std::string_view id) {
    return graph_messages_path(mailbox) + "/" + path_segment(id);
}
std::string graph_draft_send_path(std::string_view mailbox, std::string_view id) {
    return graph_message_path(mailbox, id) + "/send";
}

std::string draft_access_hint(std::string_view mailbox) {
    return "save_to_sent_items = false sends through a draft: grant the app Mail.ReadWrite (application) with admin "
           "consent as well as Mail.Send, or set save_to_sent_items = true (Graph then keeps a copy in Sent Items); "
           "an Application Access Policy must let it reach " + std::string(mailbox);
}

auth::https_session::request graph_mime_post(std::string path, std::string base64_message) {
    auth::https_session::request r;
    r.method = "POST";
    r.path = std::move(path);
    r.content_type = "text/plain";
    r.body = std::move(base64_message);
    return r;
}

std::string read_created_id(std::string_view body) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return {};
    const auto* id = v.get_object().if_contains("id");
    return id != nullptr && id->is_string() ? std::string(id->get_string()) : std::string();
}

std::string delete_after_submit_patch() {
    return R"({"singleValueExtendedProperties":[{"id":"Boolean 0x0E01","value":"true"}]})";
}

}  // namespace subrelay::relay
