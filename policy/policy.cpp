#include "policy/policy.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "conf/toml_reader/toml_reader.hpp"
#include "smtp/address.hpp"
#include "smtp/header.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::policy {

namespace {

using toml_reader::problem;
using toml_reader::table_reader;

// crypt(3) method prefixes accepted for password_hash: yescrypt, bcrypt,
// SHA-512, SHA-256, scrypt, gost-yescrypt.
constexpr std::array<std::string_view, 8> hash_prefixes{"$y$", "$2b$", "$2a$", "$2y$", "$6$", "$5$", "$7$", "$gy$"};

bool looks_like_crypt_hash(std::string_view h) {
    for (auto prefix : hash_prefixes) {
        if (h.size() > prefix.size() && h.substr(0, prefix.size()) == prefix) {
            for (char c : h) {
                const auto u = static_cast<unsigned char>(c);
                if (u <= 0x20 || u >= 0x7f) return false;
            }
            return true;
        }
    }
    return false;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// A DNS domain name (or a UTF-8 one): dot-separated labels of letters,
// digits and hyphens, no label starting or ending with a hyphen.
bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > 253) return false;
    std::size_t start = 0;
    while (true) {
        const auto dot = d.find('.', start);
        const auto label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            const auto u = static_cast<unsigned char>(c);
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                            u >= 0x80;
            if (!ok) return false;
        }
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

// An allowed sender: an address, or "*@domain" for every address of a domain.
// "" when valid, else what is wrong.
std::string sender_problem(std::string_view s) {
    if (s.substr(0, 1) == "*") {
        if (s.size() > 2 && s.substr(0, 2) == "*@" && valid_domain(s.substr(2))) return {};
        return "is not a valid *@domain pattern";
    }
    return smtp::valid_mailbox(s) ? "" : "is not a valid address";
}

std::string domain_problem(std::string_view s) { return valid_domain(s) ? "" : "is not a valid domain"; }

std::string listener_problem(std::string_view s) {
    return conf::valid_listener_name(s) ? ""
                             : "is not a listener (\"submission\", \"submissions\" or a listen address \"host:port\")";
}

void read_limit(table_reader& r, std::string_view key, std::optional<std::uint32_t>& out) {
    std::uint32_t v = 0;
    if (r.read_number(key, v, 0)) out = v;
}

// An array of strings, each checked by `problem_of` ("" when valid).
template <typename Check>
void read_strings(table_reader& r, std::string_view key, std::vector<std::string>& out, std::vector<problem>& problems,
                  Check problem_of) {
    const auto* arr = r.array(key);
    if (arr == nullptr) return;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto& element = *arr->get(i);
        const auto k = toml_reader::index_key(r.path(key), i);
        const auto* s = element.as_string();
        if (s == nullptr) {
            problems.push_back({k, toml_reader::type_mismatch("a string", element)});
        } else if (auto wrong = problem_of(std::string_view(s->get())); !wrong.empty()) {
            problems.push_back({k, quote(s->get()) + " " + wrong});
        } else {
            out.push_back(s->get());
        }
    }
}

void read_mailbox(const toml::table& t, const std::string& prefix, mailbox& m, std::vector<problem>& problems) {
    table_reader r(t, prefix, problems);
    if (r.read("identity", m.identity)) {
        if (m.identity.empty()) {
            r.error("identity", "is required");
        } else if (!smtp::valid_mailbox(m.identity)) r.error("identity", quote(m.identity) + " is not a valid address");
    } else if (!r.has("identity")) {
        r.error("identity", "is required");
    }
    // Absent or empty: an account used only through bindings (AUTH always fails).
    if (r.read("password_hash", m.password_hash) && !m.password_hash.empty() &&
        !looks_like_crypt_hash(m.password_hash)) {
        // The value itself is never echoed: it is a secret.
        r.error("password_hash", "must be a crypt(3) hash starting with $y$, $2b$, $2a$, $2y$, $6$, $5$, $7$ or $gy$");
        m.password_hash.clear();
    }
    bool disabled = false;
    if (r.read("smtp_client_authentication_disabled", disabled)) m.smtp_client_authentication_disabled = disabled;
    read_strings(r, "allowed_senders", m.allowed_senders, problems, sender_problem);
    read_strings(r, "allowed_recipient_domains", m.allowed_recipient_domains, problems, domain_problem);
    if (r.read("upstream_mailbox", m.upstream_mailbox) && !m.upstream_mailbox.empty() &&
        !smtp::valid_mailbox(m.upstream_mailbox)) {
        r.error("upstream_mailbox", quote(m.upstream_mailbox) + " is not a valid address");
    }
    r.read("authentication_policy", m.authentication_policy);
    read_limit(r, "max_messages_per_minute", m.max_messages_per_minute);
    read_limit(r, "max_recipients_per_day", m.max_recipients_per_day);
    read_limit(r, "max_recipients_per_message", m.max_recipients_per_message);
    std::string null_sender;
    if (r.read("null_sender", null_sender)) {
        if (null_sender == "rewrite") {
            m.null_sender = null_sender_mode::rewrite;
        } else if (null_sender == "refuse") {
            m.null_sender = null_sender_mode::refuse;
        } else {
            r.error("null_sender", "expected \"rewrite\" or \"refuse\", got " + quote(null_sender));
        }
    }
    bool check_header_from = true;
    if (r.read("check_header_from", check_header_from)) m.check_header_from = check_header_from;
    r.finish();
}

void read_authentication_policy(const toml::table& t, const std::string& prefix, authentication_policy& a,
                                std::vector<problem>& problems) {
    table_reader r(t, prefix, problems);
    if (r.read("name", a.name)) {
        if (a.name.empty()) r.error("name", "is required");
    } else if (!r.has("name")) {
        r.error("name", "is required");
    }
    r.read("allow_basic_auth_smtp", a.allow_basic_auth_smtp);
    r.finish();
}

void read_binding(const toml::table& t, const std::string& prefix, binding& b, std::vector<problem>& problems) {
    table_reader r(t, prefix, problems);
    if (r.read("network", b.network_text)) {
        std::string why;
        if (!network::parse(b.network_text, b.net, why)) r.error("network", quote(b.network_text) + " " + why);
    } else if (!r.has("network")) {
        r.error("network", "is required");
    }
    if (r.read("identity", b.identity)) {
        if (b.identity.empty()) r.error("identity", "is required");
    } else if (!r.has("identity")) {
        r.error("identity", "is required");
    }
    read_strings(r, "listeners", b.listeners, problems, listener_problem);
    r.finish();
}

// Reads an array of tables `key` ([[key]]), one element at a time.
// `at[i]` is the index in the file of out[i] (elements that are not tables are skipped).
template <typename T, typename Read>
void read_tables(table_reader& r, std::string_view key, std::vector<T>& out, std::vector<std::size_t>& at,
                 std::vector<problem>& problems, Read read) {
    const auto* node = r.get(key);
    if (node == nullptr) return;
    const auto* arr = node->as_array();
    if (arr == nullptr) {
        r.error(key, toml_reader::type_mismatch("an array of tables ([[" + std::string(key) + "]])", *node));
        return;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto& element = *arr->get(i);
        const auto prefix = toml_reader::index_key(key, i);
        const auto* t = element.as_table();
        if (t == nullptr) {
            problems.push_back({prefix, toml_reader::type_mismatch("a table", element)});
            continue;
        }
        T value;
        read(*t, prefix, value, problems);
        out.push_back(std::move(value));
        at.push_back(i);
    }
}

const authentication_policy* find_policy(const std::vector<authentication_policy>& policies, std::string_view name) {
    for (const auto& p : policies) {
        if (text::iequals(p.name, name)) return &p;
    }
    return nullptr;
}

}  // namespace

bool ends_with_complete_table(std::string_view text) {
    // Trailing blank lines and spaces are fine; the last line with content must have its line end.
    const auto last = text.find_last_not_of(" \t\r\n");
    if (last == std::string_view::npos) return false;
    return text.find('\n', last) != std::string_view::npos;
}

std::string load_error::to_string() const {
    std::string out = file.string();
    out += ": ";
    if (!key.empty()) {
        out += key;
        out += ": ";
    }
    out += message;
    return out;
}

load_result load_text(std::string_view text, const std::filesystem::path& file) {
    load_result result;
    std::string syntax_error;
    const auto root = toml_reader::parse_document(text, file, syntax_error);
    if (!root) {
        result.errors.push_back({file, "", std::move(syntax_error)});
        return result;
    }

    result.ends_complete = ends_with_complete_table(text);
    // Nothing at all (or only comments) is not a policy that refuses every
    // account: it is a file that was truncated or never written.
    if (root->empty()) {
        result.errors.push_back({file, "", "the file is empty (no [organization], [[mailbox]] or [[binding]]); "
                                           "an empty policy would refuse every account"});
        return result;
    }

    std::vector<problem> problems;
    auto& policy = result.policy;
    table_reader r(*root, "", problems);
    if (const auto* org = r.table("organization")) {
        table_reader o(*org, "organization", problems);
        o.read("smtp_client_authentication_disabled", policy.org.smtp_client_authentication_disabled);
        o.read("security_defaults", policy.org.security_defaults);
        o.read("default_authentication_policy", policy.org.default_authentication_policy);
        o.read_number("max_messages_per_minute", policy.org.max_messages_per_minute, 0);
        o.read_number("max_recipients_per_day", policy.org.max_recipients_per_day, 0);
        o.read_number("max_recipients_per_message", policy.org.max_recipients_per_message, 0);
        o.read("check_header_from", policy.org.check_header_from);
        o.finish();
    }

    std::vector<std::size_t> policy_at;
    std::vector<std::size_t> mailbox_at;
    std::vector<std::size_t> binding_at;
    read_tables(r, "authentication_policy", policy.authentication_policies, policy_at, problems,
                read_authentication_policy);
    read_tables(r, "mailbox", policy.mailboxes, mailbox_at, problems, read_mailbox);
    read_tables(r, "binding", policy.bindings, binding_at, problems, read_binding);
    r.finish();

    // Cross references, in file order.
    const auto& policies = policy.authentication_policies;
    for (std::size_t i = 0; i < policies.size(); ++i) {
        if (policies[i].name.empty()) continue;
        for (std::size_t j = 0; j < i; ++j) {
            if (text::iequals(policies[j].name, policies[i].name)) {
                problems.push_back({toml_reader::index_key("authentication_policy", policy_at[i]) + ".name",
                                    quote(policies[i].name) + " is already used by " +
                                        toml_reader::index_key("authentication_policy", policy_at[j])});
                break;
            }
        }
    }
    const auto undefined_policy = [&](const std::string& name) {
        return quote(name) + " is not the name of any [[authentication_policy]]";
    };
    if (!policy.org.default_authentication_policy.empty() &&
        find_policy(policies, policy.org.default_authentication_policy) == nullptr) {
        problems.push_back(
            {"organization.default_authentication_policy", undefined_policy(policy.org.default_authentication_policy)});
    }
    const auto& mailboxes = policy.mailboxes;
    for (std::size_t i = 0; i < mailboxes.size(); ++i) {
        const auto prefix = toml_reader::index_key("mailbox", mailbox_at[i]);
        const auto& m = mailboxes[i];
        if (!m.identity.empty()) {
            for (std::size_t j = 0; j < i; ++j) {
                if (text::iequals(mailboxes[j].identity, m.identity)) {
                    problems.push_back({prefix + ".identity", quote(m.identity) + " is already used by " +
                                                                  toml_reader::index_key("mailbox", mailbox_at[j])});
                    break;
                }
            }
        }
        if (!m.authentication_policy.empty() && find_policy(policies, m.authentication_policy) == nullptr) {
            problems.push_back({prefix + ".authentication_policy", undefined_policy(m.authentication_policy)});
        }
    }
    const auto& bindings = policy.bindings;
    for (std::size_t i = 0; i < bindings.size(); ++i) {
        const auto prefix = toml_reader::index_key("binding", binding_at[i]);
        const auto& b = bindings[i];
        if (!b.network_text.empty()) {
            std::string why;
            network n;
            if (network::parse(b.network_text, n, why)) {
                for (std::size_t j = 0; j < i; ++j) {
                    network other;
                    if (network::parse(bindings[j].network_text, other, why) && other == n) {
                        problems.push_back({prefix + ".network", quote(b.network_text) + " is already used by " +
                                                                     toml_reader::index_key("binding", binding_at[j])});
                        break;
                    }
                }
            }
        }
        if (!b.identity.empty()) {
            const bool known = std::any_of(mailboxes.begin(), mailboxes.end(),
                                           [&](const mailbox& m) { return text::iequals(m.identity, b.identity); });
            if (!known) {
                problems.push_back({prefix + ".identity", quote(b.identity) + " is not the identity of any [[mailbox]]"});
            }
        }
    }
    for (auto& p : problems) result.errors.push_back({file, std::move(p.key), std::move(p.message)});
    return result;
}

load_result load_file(const std::filesystem::path& file) {
    // A directory reads as an empty text, a FIFO would block: only a regular
    // file (or a link to one) is a policy file.
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        load_result result;
        result.errors.push_back(
            {file, "", S_ISDIR(st.st_mode) ? "is a directory, not a policy file" : "is not a regular file"});
        return result;
    }
    std::string read_error;
    const auto text = toml_reader::read_file(file, read_error);
    if (!text) {
        load_result result;
        result.errors.push_back({file, "", std::move(read_error)});
        return result;
    }
    return load_text(*text, file);
}

engine::engine(policy_file p) : policy_(std::move(p)) {
    for (std::size_t i = 0; i < policy_.mailboxes.size(); ++i) {
        index_.try_emplace(text::ascii_lower(policy_.mailboxes[i].identity), i);  // first one wins
    }
}

const mailbox* engine::find(std::string_view identity) const {
    const auto it = index_.find(text::ascii_lower(identity));
    return it == index_.end() ? nullptr : &policy_.mailboxes[it->second];
}

const mailbox* engine::find_login(std::string_view name, std::string_view default_domain) const {
    if (const mailbox* m = find(name)) return m;
    if (default_domain.empty() || name.empty() || name.find('@') != std::string_view::npos) return nullptr;
    return find(std::string(name) + "@" + std::string(default_domain));
}

namespace replies {

smtp::reply security_defaults() {
    return {535, "5.7.139",
            "Authentication unsuccessful, user is locked by your organization's security defaults policy. "
            "Contact your administrator."};
}
smtp::reply basic_auth_disabled() {
    return {535, "5.7.139", "Authentication unsuccessful, basic authentication is disabled."};
}
smtp::reply recipient_domain_not_allowed(std::string_view domain) {
    return {550, "5.7.1", "Recipient domain " + std::string(domain) + " is not allowed for this account"};
}
smtp::reply message_rate_exceeded() {
    return {421, "4.4.2", "Message submission rate for this client has exceeded the configured limit"};
}
smtp::reply daily_recipients_exceeded() {
    return {554, "5.2.0",
            "STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a "
            "permanent exception with message Cannot submit message."};
}
smtp::reply too_many_recipients() { return {452, "4.5.3", "Too many recipients"}; }

}  // namespace replies

namespace {

const char* power_shell_bool(bool b) { return b ? "True" : "False"; }

}  // namespace

auth_decision engine::may_authenticate(const mailbox& m) const {
    auth_decision d;
    const auto& org = policy_.org;
    // Every step is listed (what an operator wants to see); the first that
    // refuses decides, in Exchange's order.
    std::optional<auth_source> refused_by;
    std::string why;

    d.steps.push_back(std::string("SecurityDefaults: ") + power_shell_bool(org.security_defaults));
    if (org.security_defaults) {
        refused_by = auth_source::security_defaults;
        d.refusal = replies::security_defaults();
        why = "security defaults";
    }

    const bool own_policy = !m.authentication_policy.empty();
    const std::string& policy_name = own_policy ? m.authentication_policy : org.default_authentication_policy;
    if (policy_name.empty()) {
        d.steps.emplace_back("AuthenticationPolicy: none");
    } else {
        const auto* ap = find_policy(policy_.authentication_policies, policy_name);
        const std::string origin = own_policy ? "" : " (organization default)";
        // A policy that is not defined (a file that was never validated) blocks: fail closed.
        const bool allows = ap != nullptr && ap->allow_basic_auth_smtp;
        if (ap != nullptr) {
            d.steps.push_back("AuthenticationPolicy: " + ap->name + " (AllowBasicAuthSmtp = " + power_shell_bool(allows) +
                              ")" + origin);
        } else {
            d.steps.push_back("AuthenticationPolicy: " + policy_name + " (not defined: treated as AllowBasicAuthSmtp = False)" +
                              origin);
        }
        if (!allows && !refused_by) {
            refused_by = auth_source::authentication_policy;
            d.refusal = replies::basic_auth_disabled();
            why = "authentication policy " + policy_name;
        }
    }

    d.steps.push_back(std::string("Organization: SmtpClientAuthenticationDisabled = ") +
                      power_shell_bool(org.smtp_client_authentication_disabled));
    if (m.smtp_client_authentication_disabled.has_value()) {
        d.steps.push_back(std::string("Mailbox: SmtpClientAuthenticationDisabled = ") +
                          power_shell_bool(*m.smtp_client_authentication_disabled) + " (overrides the organization)");
        if (*m.smtp_client_authentication_disabled && !refused_by) {
            refused_by = auth_source::mailbox;
            d.refusal = smtp::replies::auth_disabled_for_mailbox();
            why = "mailbox";
        }
        d.source = auth_source::mailbox;
    } else {
        d.steps.emplace_back("Mailbox: SmtpClientAuthenticationDisabled = (unset: the organization decides)");
        if (org.smtp_client_authentication_disabled && !refused_by) {
            refused_by = auth_source::organization;
            d.refusal = smtp::replies::auth_disabled_for_tenant();
            why = "organization";
        }
        d.source = auth_source::organization;
    }

    if (refused_by) {
        d.allowed = false;
        d.source = *refused_by;
        d.steps.push_back("Effective: disabled (" + why + ")");
    } else {
        d.allowed = true;
        d.steps.emplace_back("Effective: enabled");
    }
    return d;
}

std::optional<smtp::reply> engine::recheck_at_mail(const mailbox& m) const {
    auto decision = may_authenticate(m);
    if (decision.allowed) return std::nullopt;
    smtp::reply r = *decision.refusal;
    r.code = 550;
    return r;
}

namespace {

bool sender_matches(std::string_view pattern, std::string_view address) {
    if (pattern.size() > 2 && pattern.substr(0, 2) == "*@") {
        const auto at = address.rfind('@');
        return at != std::string_view::npos && at > 0 && text::iequals(address.substr(at + 1), pattern.substr(2));
    }
    return text::iequals(address, pattern);
}

}  // namespace

std::optional<smtp::reply> engine::check_sender(std::string_view identity, std::string_view address) const {
    const mailbox* m = find(identity);
    if (m == nullptr) return smtp::replies::send_as_denied();
    if (address.empty())
        return m->null_sender == null_sender_mode::rewrite ? std::nullopt
                                                           : std::optional(smtp::replies::send_as_denied());
    if (m->allowed_senders.empty()) {
        if (text::iequals(address, m->identity)) return std::nullopt;
        return smtp::replies::send_as_denied();
    }
    for (const auto& sender : m->allowed_senders) {
        if (sender_matches(sender, address)) return std::nullopt;
    }
    return smtp::replies::send_as_denied();
}

bool engine::checks_header_from(const mailbox& m) const {
    return m.check_header_from.value_or(policy_.org.check_header_from);
}

std::optional<header_from_refusal> engine::check_header_from(std::string_view identity,
                                                             std::string_view header_section, bool truncated) const {
    const mailbox* m = find(identity);
    if (m == nullptr) return header_from_refusal{smtp::replies::send_as_denied(), "", "no such account"};
    if (!checks_header_from(*m)) return std::nullopt;
    const auto found = smtp::sender_addresses(header_section);
    if (const auto* e = std::get_if<smtp::header_error>(&found)) {
        return header_from_refusal{smtp::replies::send_as_denied(), "",
                                   "the " + e->field + ": header cannot be read (" + e->message + ")"};
    }
    for (const auto& address : std::get<std::vector<std::string>>(found)) {
        if (auto r = check_sender(m->identity, address)) return header_from_refusal{*r, address, ""};
    }
    if (truncated) {
        return header_from_refusal{smtp::replies::send_as_denied(), "",
                                   "the header section is longer than " + std::to_string(header_section.size()) +
                                       " octets and was not read to its end"};
    }
    return std::nullopt;
}

std::optional<smtp::reply> engine::check_recipient(std::string_view identity, std::string_view address) const {
    const mailbox* m = find(identity);
    const auto domain = smtp::domain_of(address);
    if (m == nullptr) return replies::recipient_domain_not_allowed(domain);
    if (m->allowed_recipient_domains.empty()) return std::nullopt;
    if (!domain.empty()) {
        for (const auto& allowed : m->allowed_recipient_domains) {
            if (text::iequals(domain, allowed)) return std::nullopt;
        }
    }
    return replies::recipient_domain_not_allowed(domain);
}

const binding* engine::binding_for(std::string_view client_ip, std::string_view listener_kind,
                                   std::string_view listener_address) const {
    const auto ip = network::parse_address(client_ip);
    if (!ip) return nullptr;
    const binding* best = nullptr;
    for (const auto& b : policy_.bindings) {
        if (!b.net.contains(*ip)) continue;
        if (!conf::listener_named(b.listeners, listener_kind, listener_address)) continue;
        if (best == nullptr || b.net.prefix > best->net.prefix) best = &b;  // first wins on a tie
    }
    return best;
}

effective_limits engine::limits_for(const mailbox& m) const {
    const auto& org = policy_.org;
    return {m.max_messages_per_minute.value_or(org.max_messages_per_minute),
            m.max_recipients_per_day.value_or(org.max_recipients_per_day),
            m.max_recipients_per_message.value_or(org.max_recipients_per_message)};
}

std::string engine::envelope_sender(std::string_view identity, std::string_view sender) const {
    const mailbox* m = find(identity);
    if (sender.empty() && m != nullptr && m->null_sender == null_sender_mode::rewrite) return m->identity;
    return std::string(sender);
}

std::string engine::upstream_mailbox_for(std::string_view identity) const {
    const mailbox* m = find(identity);
    return m == nullptr ? std::string() : m->upstream_mailbox;
}

bool upstream_mailbox_configured(const conf::config& cfg, const engine* policy, std::string_view upstream) {
    if (upstream.empty() || cfg.upstream.kind == conf::upstream_kind::directory ||
        cfg.upstream.auth == conf::upstream_auth::none || text::iequals(upstream, cfg.upstream.mailbox))
        return true;
    const auto is_it = [upstream](const std::string& m) { return text::iequals(m, upstream); };
    const auto serves = [&is_it](const conf::oauth_config& p) {
        return is_it(p.subject) || std::any_of(p.mailboxes.begin(), p.mailboxes.end(), is_it);
    };
    if (serves(cfg.oauth) || std::any_of(cfg.oauth_profiles.begin(), cfg.oauth_profiles.end(), serves)) return true;
    if (policy == nullptr) return false;
    const auto& accounts = policy->file().mailboxes;
    return std::any_of(accounts.begin(), accounts.end(), [&is_it](const mailbox& m) { return is_it(m.upstream_mailbox); });
}

}  // namespace subrelay::policy
