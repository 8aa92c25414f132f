#include "policy/audit.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <boost/json.hpp>

#include "smtp/text/ascii.hpp"

namespace subrelay::policy {

namespace json = boost::json;

namespace {

json::value opt(const std::optional<bool>& v) { return v ? json::value(*v) : json::value(nullptr); }
json::value opt(const std::optional<std::uint32_t>& v) { return v ? json::value(*v) : json::value(nullptr); }
json::value text_or_null(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }

json::value list(const std::vector<std::string>& values) {
    json::array a;
    for (const auto& v : values) a.emplace_back(v);
    return a;
}

json::object transport_view(const organization& o) {
    return {{"SmtpClientAuthenticationDisabled", o.smtp_client_authentication_disabled}};
}

json::object organization_view(const organization& o) {
    return {{"DefaultAuthenticationPolicy", text_or_null(o.default_authentication_policy)},
            {"SecurityDefaults", o.security_defaults},
            {"MaxMessagesPerMinute", o.max_messages_per_minute},
            {"MaxRecipientsPerDay", o.max_recipients_per_day},
            {"MaxRecipientsPerMessage", o.max_recipients_per_message},
            {"CheckHeaderFrom", o.check_header_from}};
}

// Everything but the hash: whether there is one is all the log may say.
json::object mailbox_view(const mailbox& m) {
    return {{"Identity", m.identity},
            {"SmtpClientAuthenticationDisabled", opt(m.smtp_client_authentication_disabled)},
            {"HasPassword", !m.password_hash.empty()},
            {"AllowedSenders", list(m.allowed_senders)},
            {"AllowedRecipientDomains", list(m.allowed_recipient_domains)},
            {"UpstreamMailbox", text_or_null(m.upstream_mailbox)},
            {"AuthenticationPolicy", text_or_null(m.authentication_policy)},
            {"MaxMessagesPerMinute", opt(m.max_messages_per_minute)},
            {"MaxRecipientsPerDay", opt(m.max_recipients_per_day)},
            {"MaxRecipientsPerMessage", opt(m.max_recipients_per_message)},
            {"NullSender", m.null_sender == null_sender_mode::refuse ? "refuse" : "rewrite"},
            {"CheckHeaderFrom", opt(m.check_header_from)}};
}

json::object auth_policy_view(const authentication_policy& p) {
    return {{"Name", p.name}, {"AllowBasicAuthSmtp", p.allow_basic_auth_smtp}};
}

json::object binding_view(const binding& b) {
    return {{"Network", b.network_text}, {"Identity", b.identity}, {"Listeners", list(b.listeners)}};
}

// Objects of one kind, matched by key (any case): created, removed, changed.
template <class T, class Key, class View>
void compare(const std::vector<T>& before, const std::vector<T>& after, const char* kind, Key key, View view,
             std::vector<object_change>& out) {
    auto find = [&key](const std::vector<T>& in, const std::string& k) -> const T* {
        for (const auto& x : in)
            if (text::iequals(key(x), k)) return &x;
        return nullptr;
    };
    for (const auto& b : before) {
        const T* a = find(after, key(b));
        if (a == nullptr) {
            out.push_back({kind, key(b), view(b), nullptr});
        } else if (!(*a == b)) {
            json::object then = view(b);
            json::object now = view(*a);
            if constexpr (std::is_same_v<T, mailbox>) {
                if (a->password_hash != b.password_hash && !a->password_hash.empty()) now["PasswordChanged"] = true;
            }
            out.push_back({kind, key(*a), std::move(then), std::move(now)});
        }
    }
    for (const auto& a : after)
        if (find(before, key(a)) == nullptr) out.push_back({kind, key(a), nullptr, view(a)});
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

std::vector<object_change> policy_changes(const policy_file& before, const policy_file& after) {
    std::vector<object_change> out;
    const organization& o0 = before.org;
    const organization& o1 = after.org;
    if (o0.smtp_client_authentication_disabled != o1.smtp_client_authentication_disabled)
        out.push_back({"TransportConfig", "Organization", transport_view(o0), transport_view(o1)});
    if (organization_view(o0) != organization_view(o1))
        out.push_back({"OrganizationConfig", "Organization", organization_view(o0), organization_view(o1)});
    compare(before.mailboxes, after.mailboxes, "Mailbox", [](const mailbox& m) { return m.identity; }, mailbox_view,
            out);
    compare(before.authentication_policies, after.authentication_policies, "AuthenticationPolicy",
            [](const authentication_policy& p) { return p.name; }, auth_policy_view, out);
    compare(before.bindings, after.bindings, "RelayBinding", [](const binding& b) { return b.network_text; },
            binding_view, out);
    return out;
}

std::string to_json_line(const audit_entry& e) {
    json::object o;
    o["time"] = e.time;
    o["who"] = e.who;
    o["what"] = e.what;
    o["kind"] = e.change.kind;
    o["object"] = e.change.identity;
    o["before"] = e.change.before;
    o["after"] = e.change.after;
    return json::serialize(o);
}

std::optional<audit_entry> parse_audit_line(const std::string& line) {
    boost::system::error_code ec;
    const json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const json::object& o = v.get_object();
    auto text = [&o](const char* key) -> std::optional<std::string> {
        const auto* x = o.if_contains(key);
        if (x == nullptr || !x->is_string()) return std::nullopt;
        return std::string(x->get_string());
    };
    const auto* time = o.if_contains("time");
    const auto who = text("who");
    const auto what = text("what");
    const auto kind = text("kind");
    const auto object = text("object");
    if (time == nullptr || !time->is_int64() || !who || !what || !kind || !object) return std::nullopt;
    audit_entry e;
    e.time = time->as_int64();
    e.who = *who;
    e.what = *what;
    e.change.kind = *kind;
    e.change.identity = *object;
    if (const auto* b = o.if_contains("before")) e.change.before = *b;
    if (const auto* a = o.if_contains("after")) e.change.after = *a;
    return e;
}

std::filesystem::path audit_log_path(const std::filesystem::path& spool_dir) { return spool_dir / "audit.log"; }

audit_log::audit_log(const std::filesystem::path& file) : file_(file) {
    const bool existed = std::filesystem::exists(file);
    fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) {
        throw std::runtime_error("cannot open the audit log " + file.string() + ": " + errno_text(errno) +
                                 " (a change that cannot be recorded is not made)");
    }
    if (!existed && ::geteuid() == 0) {
        // Made by root: it belongs to whoever owns the spool, as the relay does.
        struct stat dir {};
        if (::stat(file.parent_path().c_str(), &dir) == 0 && ::fchown(fd_, dir.st_uid, dir.st_gid) != 0) {
            const int e = errno;
            ::close(fd_);
            fd_ = -1;
            throw std::runtime_error("cannot give the audit log " + file.string() + " to the spool's owner: " +
                                     errno_text(e));
        }
    }
}

audit_log::~audit_log() {
    if (fd_ >= 0) ::close(fd_);
}

void audit_log::append(const std::vector<audit_entry>& entries) {
    std::string data;
    for (const auto& e : entries) data += to_json_line(e) + "\n";
    std::string_view rest = data;
    while (!rest.empty()) {
        const ssize_t n = ::write(fd_, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("cannot write the audit log " + file_.string() + ": " + errno_text(errno));
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd_) != 0)
        throw std::runtime_error("cannot sync the audit log " + file_.string() + ": " + errno_text(errno));
}

std::vector<audit_entry> read_audit_log(const std::filesystem::path& file) {
    std::vector<audit_entry> out;
    std::ifstream in(file);
    if (!in) {
        if (!std::filesystem::exists(file)) return out;
        throw std::runtime_error("cannot read the audit log " + file.string() + ": " + errno_text(errno));
    }
    for (std::string line; std::getline(in, line);) {
        if (auto e = parse_audit_line(line)) out.push_back(std::move(*e));
    }
    return out;
}

std::string powershell_value(const json::value& v) {
    if (v.is_null()) return "$null";
    if (v.is_bool()) return v.get_bool() ? "$true" : "$false";
    if (v.is_number()) return json::serialize(v);
    if (v.is_array()) {
        std::string out;
        for (const auto& x : v.get_array()) out += (out.empty() ? "" : ",") + powershell_value(x);
        return out.empty() ? "$null" : out;
    }
    const std::string s = v.is_string() ? std::string(v.get_string()) : json::serialize(v);
    if (s == "$true" || s == "$false" || s == "$null") return s;  // as an option's value was written
    const bool plain = !s.empty() && s.find_first_of(" \t'\"$;|&(){}`#,") == std::string::npos;
    if (plain) return s;
    std::string out = "'";
    for (const char ch : s) {
        out += ch;
        if (ch == '\'') out += '\'';
    }
    return out + "'";
}

namespace {

// " -Name value" for each property of `after` that differs from `before`
// (every property, when before is not an object), but those in `skip`.
std::string changed_parameters(const json::value& before, const json::value& after,
                               std::initializer_list<std::string_view> skip) {
    std::string out;
    if (!after.is_object()) return out;
    for (const auto& [name, now] : after.get_object()) {
        if (std::find(skip.begin(), skip.end(), std::string_view(name)) != skip.end()) continue;
        if (before.is_object()) {
            const auto* then = before.get_object().if_contains(name);
            if (then != nullptr && *then == now) continue;
        } else if (now.is_null() || (now.is_array() && now.get_array().empty())) {
            continue;  // a new object: what it sets
        }
        out += " -" + std::string(name) + " " + powershell_value(now);
    }
    return out;
}

}  // namespace

std::string cmdlet_for(const object_change& c) {
    const std::string id = powershell_value(json::value(c.identity));
    const bool created = c.before.is_null();
    const bool removed = c.after.is_null();
    if (c.kind == "TransportConfig") return "Set-TransportConfig" + changed_parameters(c.before, c.after, {});
    if (c.kind == "OrganizationConfig") return "Set-OrganizationConfig" + changed_parameters(c.before, c.after, {});
    if (c.kind == "Mailbox") {
        if (removed) return "Remove-RelayAccount -Identity " + id;
        const std::string password =
            created || (c.after.is_object() && c.after.get_object().contains("PasswordChanged")) ? " -PasswordStdin"
                                                                                                  : "";
        const std::string rest =
            changed_parameters(c.before, c.after, {"Identity", "HasPassword", "PasswordChanged"});
        if (created) return "New-RelayAccount -Identity " + id + password + rest;
        if (password.empty() && rest.starts_with(" -SmtpClientAuthenticationDisabled ") &&
            rest.find(" -", 1) == std::string::npos)
            return "Set-CASMailbox -Identity " + id + rest;
        return "Set-RelayAccount -Identity " + id + password + rest;
    }
    if (c.kind == "AuthenticationPolicy") {
        if (removed) return "Remove-AuthenticationPolicy -Identity " + id;
        if (created) return "New-AuthenticationPolicy -Name " + id + changed_parameters(c.before, c.after, {"Name"});
        return "Set-AuthenticationPolicy -Identity " + id + changed_parameters(c.before, c.after, {"Name"});
    }
    if (c.kind == "RelayBinding") {
        const std::string add = "New-RelayBinding -Network " + id + changed_parameters(nullptr, c.after, {"Network"});
        if (removed) return "Remove-RelayBinding -Network " + id;
        if (created) return add;
        return "Remove-RelayBinding -Network " + id + "; " + add;
    }
    if (c.kind == "AdminUser") {
        if (removed) return "Remove-AdminUser -Identity " + id;
        const std::string password =
            created || (c.after.is_object() && c.after.get_object().contains("PasswordChanged")) ? " -PasswordStdin"
                                                                                                  : "";
        const std::string rest = changed_parameters(c.before, c.after, {"Name", "HasPassword", "PasswordChanged"});
        return (created ? "New-AdminUser -Identity " : "Set-AdminUser -Identity ") + id + rest + password;
    }
    return c.kind + " " + id;
}

std::vector<audit_entry> read_audit_log_from(const std::filesystem::path& file, std::uintmax_t& offset) {
    std::vector<audit_entry> out;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        offset = 0;
        return out;
    }
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::uintmax_t>(in.tellg());
    if (offset > size) offset = 0;  // a new log
    in.seekg(static_cast<std::streamoff>(offset));
    for (std::string line; std::getline(in, line);) {
        if (auto e = parse_audit_line(line)) out.push_back(std::move(*e));
    }
    offset = size;
    return out;
}

std::vector<object_change> unrecorded(std::vector<object_change> changes, std::vector<audit_entry>& recorded) {
    std::erase_if(changes, [&recorded](const object_change& c) {
        // The latest record of this object's state covers it.
        const auto it = std::find_if(recorded.rbegin(), recorded.rend(), [&c](const audit_entry& e) {
            return e.change.kind == c.kind && text::iequals(e.change.identity, c.identity) && e.change.after == c.after;
        });
        if (it == recorded.rend()) return false;
        recorded.erase(std::next(it).base());
        return true;
    });
    return changes;
}

std::string unix_caller() {
    const uid_t uid = ::getuid();
    std::string name;
    if (const passwd* pw = ::getpwuid(uid); pw != nullptr && pw->pw_name != nullptr) name = pw->pw_name;
    if (name.empty()) name = "uid " + std::to_string(uid);
    if (uid == 0) {
        if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0')
            return std::string(sudo) + " (sudo)";
    }
    return name;
}

hand_edit_recorder::hand_edit_recorder(std::filesystem::path log) : log_(std::move(log)) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(log_, ec);
    offset_ = ec ? 0 : size;
}

std::vector<audit_entry> hand_edit_recorder::record(std::vector<object_change> changes, std::int64_t now) {
    if (changes.empty()) return {};
    auto fresh = read_audit_log_from(log_, offset_);
    recorded_.insert(recorded_.end(), std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
    std::erase_if(recorded_, [now](const audit_entry& e) { return e.time < now - 600; });
    changes = unrecorded(std::move(changes), recorded_);
    std::vector<audit_entry> entries;
    for (auto& c : changes) {
        std::string what = cmdlet_for(c);
        entries.push_back({now, "file", std::move(what), std::move(c)});
    }
    if (entries.empty()) return entries;
    audit_log(log_).append(entries);
    (void)read_audit_log_from(log_, offset_);  // past what was just written
    return entries;
}

bool parse_audit_since(const std::string& text, std::int64_t& out) {
    std::tm tm{};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    char tail = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%c", &y, &mo, &d, &h, &mi, &s, &tail) == 6 ||
        (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3 && text.size() == 10)) {
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = s;
        out = ::timegm(&tm);
        return true;
    }
    return false;
}

edit_result recorded_edit(const std::filesystem::path& file, audit_log& log, const std::string& who,
                          std::int64_t now, const policy_change& change,
                          const std::function<std::string(const object_change&)>& what) {
    const auto record = [&](const policy_file& before, const policy_file& after) -> std::string {
        std::vector<audit_entry> entries;
        for (auto& changed : policy_changes(before, after)) {
            std::string cmdlet = what(changed);
            entries.push_back({now, who, std::move(cmdlet), std::move(changed)});
        }
        try {
            log.append(entries);
        } catch (const std::exception& e) {
            return std::string(e.what()) + "; nothing was changed";
        }
        return {};
    };
    return edit_file(file, change, false, record);
}

}  // namespace subrelay::policy
