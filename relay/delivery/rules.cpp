#include "relay/delivery/rules.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <optional>
#include <vector>

#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

// ---------------------------------------------------------------------------
// Scheduling

std::chrono::seconds backoff(const retry_schedule& s, unsigned attempts) {
    // initial * 2^(attempts-1), capped; doubling stops at the cap (no overflow).
    std::chrono::seconds wait = s.initial;
    for (unsigned i = 1; i < attempts && wait < s.max; ++i) wait *= 2;
    return std::min(wait, s.max);
}

bool expired(const retry_schedule& s, std::int64_t received_at, std::int64_t now) {
    return now - received_at >= s.lifetime.count();
}

bool delay_warning_due(const retry_schedule& s, const queue_state& st, std::int64_t received_at, std::int64_t now) {
    return s.delay_warning.count() > 0 && !st.delay_warned && now - received_at >= s.delay_warning.count() &&
           !expired(s, received_at, now);
}

// ---------------------------------------------------------------------------
// Classification of upstream replies

namespace {

struct enhanced_code {
    int cls = 0, subject = 0, detail = 0;
    [[nodiscard]] bool is(int c, int s, int d) const { return cls == c && subject == s && detail == d; }
    // The same code in either class: 4.7.66 or 5.7.66.
    [[nodiscard]] bool any_class(int s, int d) const { return cls != 0 && subject == s && detail == d; }
};

std::optional<enhanced_code> parse_enhanced(std::string_view text) {
    enhanced_code e;
    int* parts[] = {&e.cls, &e.subject, &e.detail};
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int i = 0; i < 3; ++i) {
        auto [next, ec] = std::from_chars(p, end, *parts[i]);
        if (ec != std::errc{} || next == p || next - p > 3) return std::nullopt;
        p = next;
        if (i < 2) {
            if (p == end || *p != '.') return std::nullopt;
            ++p;
        }
    }
    if (p != end && *p != ' ') return std::nullopt;
    if (e.cls < 2 || e.cls > 5) return std::nullopt;
    return e;
}

struct reply_facts {
    int code = 0;
    enhanced_code enh;
    std::string text;        // lower case, lines joined with spaces
    std::string_view stage;
    [[nodiscard]] bool has(std::string_view needle) const { return text.find(needle) != std::string::npos; }
    [[nodiscard]] bool transient() const { return code >= 400 && code < 500; }
    // "rate" as a word: "submission rate", "rate limit", "rate-limited".
    [[nodiscard]] bool has_word_rate() const {
        for (std::size_t pos = text.find("rate"); pos != std::string::npos; pos = text.find("rate", pos + 1)) {
            bool before = pos == 0 || !std::isalpha(static_cast<unsigned char>(text[pos - 1]));
            std::size_t after = pos + 4;
            bool after_ok = after == text.size() || !std::isalpha(static_cast<unsigned char>(text[after])) ||
                            text.compare(after, 5, "limit") == 0;
            if (before && after_ok) return true;
        }
        return false;
    }
};

reply_facts facts_of(const smtp::reply& r, std::string_view stage) {
    reply_facts f;
    f.code = r.code;
    f.stage = stage;
    for (const auto& l : r.lines) {
        if (!f.text.empty()) f.text += ' ';
        f.text += l;
    }
    f.text = text::ascii_lower(f.text);
    std::optional<enhanced_code> e;
    if (!r.enhanced.empty()) e = parse_enhanced(r.enhanced);
    else if (!r.lines.empty()) e = parse_enhanced(std::string_view(r.lines.front()).substr(0, r.lines.front().find(' ')));
    if (e) f.enh = *e;
    return f;
}

bool is_throttle(const reply_facts& f) {
    if (!f.transient()) return false;
    if (f.code == 432) return true;                                                // Exchange: 432 4.3.2
    if (f.enh.is(4, 3, 2)) return f.has("concurrent") || f.has("limit");         // not "shutting down"
    if (f.enh.is(4, 7, 28)) return true;                                           // Gmail: unusual rate
    if (f.enh.cls == 4 && f.enh.subject == 7 && f.enh.detail >= 500 && f.enh.detail <= 699)
        return true;                                                               // Exchange: 4.7.500-699 server busy
    // The recipient's own limits (4.2.x mailbox, 4.5.3 too many recipients) are not about us.
    if (f.enh.subject == 2 || f.enh.is(4, 5, 3)) return false;
    return f.has_word_rate() || f.has("ratelimit") || f.has("throttl") || f.has("limit exceeded") ||
           f.has("too many connections") || f.has("too many messages") || f.has("server busy");
}

bool is_auth(const reply_facts& f, bool throttled) {
    if (f.code == 0 || throttled) return false;  // a network failure is not a refusal
    if (f.enh.any_class(7, 139) || f.enh.any_class(7, 3) || f.enh.any_class(7, 57) || f.enh.any_class(7, 8) ||
        f.enh.any_class(7, 9) || f.enh.any_class(7, 30))
        return true;
    if (f.code == 535 || f.code == 534) return true;
    return f.stage == "auth" && f.code != 421;
}

struct hint_rule {
    std::function<bool(const reply_facts&)> matches;
    std::string_view text;  // MAILBOX is replaced by the upstream mailbox
};

// First match wins: the specific rules come before the general ones.
const std::vector<hint_rule>& hint_rules() {
    static const std::vector<hint_rule> rules = {
        {[](const reply_facts& f) { return f.enh.any_class(7, 139) && f.has("disabled for the mailbox"); },
         "the service mailbox needs SMTP AUTH: Set-CASMailbox -Identity MAILBOX -SmtpClientAuthenticationDisabled "
         "$false"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 139) && f.has("disabled for the tenant"); },
         "SMTP AUTH is disabled for the tenant: allow it for the service mailbox only with Set-CASMailbox -Identity "
         "MAILBOX -SmtpClientAuthenticationDisabled $false (overrides the tenant), or for the whole tenant with "
         "Set-TransportConfig -SmtpClientAuthenticationDisabled $false"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 139) && f.has("security defaults"); },
         "security defaults block SMTP AUTH: turn them off in Microsoft Entra ID and use Conditional Access instead, "
         "then allow SMTP AUTH for MAILBOX (Set-CASMailbox -Identity MAILBOX -SmtpClientAuthenticationDisabled "
         "$false)"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 139); },
         "the upstream refused the token for MAILBOX: check oauth.client_id, the tenant in oauth.token_url, and that "
         "the app may send as MAILBOX (SMTP.SendAsApp, FullAccess on MAILBOX)"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 3); },
         "the token was refused: check the app's SMTP.SendAsApp permission (with admin consent), that its service "
         "principal is registered in Exchange (New-ServicePrincipal) and has FullAccess/SendAs on MAILBOX "
         "(Add-MailboxPermission -Identity MAILBOX -User <service principal id> -AccessRights FullAccess)"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 57); },
         "the upstream did not see our authentication: check upstream.auth (\"xoauth2\" for Exchange Online), or the "
         "connector that should trust this relay when upstream.auth = \"none\""},
        {[](const reply_facts& f) {
             return f.enh.any_class(7, 60) || f.has("sendasdenied") || f.has("send as this sender");
         },
         "MAILBOX may not send as this sender: Add-RecipientPermission -Identity <sender> -Trustee MAILBOX "
         "-AccessRights SendAs, or restrict the account's allowed_senders"},
        {[](const reply_facts& f) { return f.code == 432 || (f.enh.is(4, 3, 2) && f.has("concurrent")); },
         "Exchange allows 3 concurrent connections per mailbox: lower upstream.max_connections_per_mailbox or spread "
         "accounts over more upstream mailboxes"},
        {[](const reply_facts& f) { return f.has("submissionquota"); },
         "MAILBOX hit Exchange's limit of 10,000 recipients a day: wait for the 24-hour window to pass, or spread "
         "accounts over more upstream mailboxes"},
        {[](const reply_facts& f) {
             return f.enh.any_class(7, 66) ||
                    (f.stage == "tls" && (f.has("protocol version") || f.has("unsupported protocol")));
         },
         "the upstream requires TLS 1.2 or later: check upstream.tls (\"starttls\" or \"implicit\") and that "
         "OpenSSL allows TLS 1.2"},
        {[](const reply_facts& f) { return f.stage == "tls" && f.has("certificate verify failed"); },
         "the upstream's certificate did not verify: check upstream.ca_file (empty: the system CAs) and "
         "upstream.host"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 30); },
         "basic authentication is not supported: use XOAUTH2 (upstream.auth = \"xoauth2\")"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 8); },
         "bad credentials: check the OAuth client (oauth.client_id and its secret) and that it has the scope "
         "https://mail.google.com/ (oauth.scope)"},
        {[](const reply_facts& f) { return f.enh.any_class(7, 9); },
         "the Google Workspace admin blocks this app or account (allowing less secure apps is gone): use OAuth and "
         "allow the OAuth client in the Admin console"},
        {[](const reply_facts& f) { return is_throttle(f); },
         "the upstream is throttling MAILBOX: delivery slows down by itself; if it persists, lower "
         "upstream.max_messages_per_minute or spread accounts over more upstream mailboxes"},
    };
    return rules;
}

std::string substitute(std::string_view text, std::string_view mailbox) {
    const std::string_view placeholder = "MAILBOX";
    const std::string_view name = mailbox.empty() ? std::string_view("<mailbox>") : mailbox;
    std::string out;
    for (std::size_t pos = 0;;) {
        std::size_t at = text.find(placeholder, pos);
        out.append(text.substr(pos, at - pos));
        if (at == std::string_view::npos) break;
        out.append(name);
        pos = at + placeholder.size();
    }
    return out;
}

}  // namespace

classification classify(const smtp::reply& r, std::string_view stage, std::string_view mailbox) {
    const reply_facts f = facts_of(r, stage);
    classification c;
    c.permanent = r.code >= 500;
    c.throttled = is_throttle(f);
    c.auth = is_auth(f, c.throttled);
    for (const auto& rule : hint_rules()) {
        if (rule.matches(f)) {
            c.hint = substitute(rule.text, mailbox);
            break;
        }
    }
    return c;
}

}  // namespace subrelay::relay
