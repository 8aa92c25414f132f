#include "relay/queue.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "relay/spool/durable_file.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view state_magic = "subrelay-state ";
constexpr unsigned state_version = 1;

// Values are written on one line: backslash, newline, carriage return and
// tab are escaped, so that any string survives (and a tab can separate two
// values).
std::string escape(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: out += c;
        }
    }
    return out;
}

std::optional<std::string> unescape(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '\\') {
            out += v[i];
            continue;
        }
        if (++i == v.size()) return std::nullopt;
        switch (v[i]) {
            case '\\': out += '\\'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            default: return std::nullopt;
        }
    }
    return out;
}

template <typename T>
bool parse_number(std::string_view v, T& out) {
    if (v.empty()) return false;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc{} && end == v.data() + v.size();
}

bool parse_flag(std::string_view v, bool& out) {
    if (v != "0" && v != "1") return false;
    out = v == "1";
    return true;
}

void check_id(const std::string& id) {
    if (!valid_queue_id(id)) throw std::runtime_error("invalid queue id");
}

}  // namespace

// ---------------------------------------------------------------------------
// State file format

std::string format_state(const queue_state& s) {
    std::string out(state_magic);
    out += std::to_string(state_version) + "\n";
    auto line = [&out](std::string_view key, std::string_view value) {
        out.append(key).append(" ").append(value).append("\n");
    };
    line("attempts", std::to_string(s.attempts));
    line("first_attempt", std::to_string(s.first_attempt));
    line("next_attempt", std::to_string(s.next_attempt));
    line("held", s.held ? "1" : "0");
    line("delay_warned", s.delay_warned ? "1" : "0");
    if (!s.last_reply.empty()) line("last_reply", escape(s.last_reply));
    if (!s.last_upstream_reply.empty()) line("last_upstream_reply", escape(s.last_upstream_reply));
    if (!s.hint.empty()) line("hint", escape(s.hint));
    for (const auto& d : s.delivered) line("delivered", escape(d));
    for (const auto& f : s.failed) line("failed", escape(f.address) + "\t" + escape(f.reply));
    for (const auto& h : s.history) line("history", escape(h));
    return out;
}

std::optional<queue_state> parse_state(std::string_view text) {
    if (!text.starts_with(state_magic)) return std::nullopt;
    queue_state s;
    bool first = true;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (first) {
            // "subrelay-state N": any version; newer ones only add keys.
            unsigned version = 0;
            if (!parse_number(line.substr(state_magic.size()), version) || version == 0) return std::nullopt;
            first = false;
            continue;
        }
        if (line.empty()) continue;
        std::size_t sp = line.find(' ');
        std::string_view key = line.substr(0, sp);
        std::string_view raw = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        bool ok = true;
        if (key == "attempts") ok = parse_number(raw, s.attempts);
        else if (key == "first_attempt") ok = parse_number(raw, s.first_attempt);
        else if (key == "next_attempt") ok = parse_number(raw, s.next_attempt);
        else if (key == "held") ok = parse_flag(raw, s.held);
        else if (key == "delay_warned") ok = parse_flag(raw, s.delay_warned);
        else if (key == "last_reply" || key == "last_upstream_reply" || key == "hint" || key == "delivered" ||
                 key == "history") {
            auto v = unescape(raw);
            if (!v) return std::nullopt;
            if (key == "last_reply") s.last_reply = std::move(*v);
            else if (key == "last_upstream_reply") s.last_upstream_reply = std::move(*v);
            else if (key == "hint") s.hint = std::move(*v);
            else if (key == "delivered") s.delivered.push_back(std::move(*v));
            else s.history.push_back(std::move(*v));
        } else if (key == "failed") {
            std::size_t tab = raw.find('\t');
            if (tab == std::string_view::npos) return std::nullopt;
            auto address = unescape(raw.substr(0, tab));
            auto reply = unescape(raw.substr(tab + 1));
            if (!address || !reply) return std::nullopt;
            s.failed.push_back({std::move(*address), std::move(*reply)});
        }
        // Unknown keys are ignored: a newer version may add some.
        if (!ok) return std::nullopt;
    }
    if (first) return std::nullopt;
    return s;
}

// ---------------------------------------------------------------------------
// state_store

state_store::state_store(fs::path spool_dir) : dir_(std::move(spool_dir) / "state") {}

void state_store::open() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("cannot create " + dir_.string() + ": " + ec.message());
}

std::optional<queue_state> state_store::load(const std::string& id) const {
    check_id(id);
    const fs::path path = dir_ / id;
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw std::runtime_error("cannot read " + path.string() + ": " + errno_text(errno));
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("cannot read " + path.string() + ": " + errno_text(errno));
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    auto s = parse_state(text);
    if (!s) throw std::runtime_error(path.string() + ": damaged queue state file");
    return s;
}

void state_store::save(const std::string& id, const queue_state& s) const {
    check_id(id);
    const fs::path final_path = dir_ / id;
    // Hidden, and unique per process: never taken for a state file.
    const fs::path tmp = dir_ / ("." + id + ".tmp." + std::to_string(::getpid()));
    const std::string text = format_state(s);
    write_file_atomically(final_path, tmp, {text});
}

void state_store::remove(const std::string& id) const {
    check_id(id);
    const fs::path path = dir_ / id;
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw std::runtime_error("remove " + path.string() + ": " + errno_text(errno));
    }
    // No directory fsync: the message file is removed durably first, and a
    // state file that outlives it after a crash is removed at the next start.
}

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

// ---------------------------------------------------------------------------
// message_lock

std::optional<message_lock> message_lock::acquire(const fs::path& file, bool wait) {
    // Lock, then check that the name still refers to the locked file: the
    // previous holder may have removed or replaced it meanwhile.
    for (int tries = 0;; ++tries) {
        fd_guard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) {
            if (errno == ENOENT && !wait) return std::nullopt;
            throw std::system_error(errno, std::generic_category(), "open " + file.string());
        }
        int rc;
        do rc = ::flock(fd.get(), wait ? LOCK_EX : LOCK_EX | LOCK_NB);
        while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            if (errno == EWOULDBLOCK) return std::nullopt;
            throw std::system_error(errno, std::generic_category(), "flock " + file.string());
        }
        struct stat locked {};
        struct stat named {};
        if (::fstat(fd.get(), &locked) != 0)
            throw std::system_error(errno, std::generic_category(), "fstat " + file.string());
        if (::stat(file.c_str(), &named) != 0) {
            if (errno == ENOENT && !wait) return std::nullopt;
            throw std::system_error(errno, std::generic_category(), "stat " + file.string());
        }
        if (locked.st_dev == named.st_dev && locked.st_ino == named.st_ino) return message_lock(fd.release(), file);
        if (tries >= 100)
            throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                    "lock " + file.string() + ": the file keeps being replaced");
    }
}

std::optional<message_lock> message_lock::try_lock(const fs::path& file) { return acquire(file, false); }

message_lock message_lock::lock(const fs::path& file) { return std::move(*acquire(file, true)); }

message_lock::message_lock(message_lock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

message_lock& message_lock::operator=(message_lock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
    }
    return *this;
}

message_lock::~message_lock() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace subrelay::relay
