// The admin verbs: reads through policy::load_file, changes through
// policy::edit_file (lock, re-read, change, validate, atomic write).
#include "relay/cli/admin.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <istream>
#include <ostream>

#include "auth/password.hpp"
#include "conf/config.hpp"
#include "policy/edit.hpp"
#include "policy/policy.hpp"
#include "smtp/address.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay::admin {

namespace {

namespace json = boost::json;

constexpr std::size_t default_result_size = 1000;  // like Exchange's cmdlets

// Normalised option names.
constexpr const char* o_identity = "identity";
constexpr const char* o_name = "name";
constexpr const char* o_json = "json";
constexpr const char* o_disabled = "smtpclientauthenticationdisabled";
constexpr const char* o_from_file = "fromfile";
constexpr const char* o_result_size = "resultsize";
constexpr const char* o_filter = "filter";
constexpr const char* o_password_stdin = "passwordstdin";
constexpr const char* o_generate_password = "generatepassword";
constexpr const char* o_allowed_senders = "allowedsenders";
constexpr const char* o_allowed_recipient_domains = "allowedrecipientdomains";
constexpr const char* o_upstream_mailbox = "upstreammailbox";
constexpr const char* o_authentication_policy = "authenticationpolicy";
constexpr const char* o_max_messages_per_minute = "maxmessagesperminute";
constexpr const char* o_max_recipients_per_day = "maxrecipientsperday";
constexpr const char* o_max_recipients_per_message = "maxrecipientspermessage";
constexpr const char* o_null_sender = "nullsender";
constexpr const char* o_default_authentication_policy = "defaultauthenticationpolicy";
constexpr const char* o_security_defaults = "securitydefaults";
constexpr const char* o_allow_basic_auth_smtp = "allowbasicauthsmtp";
constexpr const char* o_network = "network";
constexpr const char* o_listeners = "listeners";
constexpr const char* o_listener = "listener";
constexpr const char* o_from = "from";
constexpr const char* o_client = "client";

}  // namespace

// An admin verb's invocation, with the configuration it works on.
struct context : invocation {
    conf::config cfg;
};

namespace {

std::string not_found(std::string_view identity) {
    return "The operation couldn't be performed because object '" + std::string(identity) + "' couldn't be found.";
}

const char* true_false(bool b) { return b ? "True" : "False"; }

std::string true_false(std::optional<bool> b) { return b ? true_false(*b) : ""; }

// PowerShell's rendering of a multi-valued property: "{a, b}".
std::string multi_value(const std::vector<std::string>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ", ";
        out += values[i];
    }
    return out + "}";
}

std::string optional_count(std::optional<std::uint32_t> n) { return n ? std::to_string(*n) : ""; }

std::string null_sender_name(policy::null_sender_mode mode) {
    return mode == policy::null_sender_mode::rewrite ? "rewrite" : "refuse";
}

std::string limit_text(std::uint32_t n) { return n == 0 ? "unlimited" : std::to_string(n); }

json::value json_tristate(std::optional<bool> b) { return b ? json::value(*b) : json::value(nullptr); }

json::value json_count(std::optional<std::uint32_t> n) { return n ? json::value(*n) : json::value(nullptr); }

json::array json_list(const std::vector<std::string>& values) {
    json::array a;
    for (const auto& v : values) a.emplace_back(v);
    return a;
}

void print_json(context& c, const json::value& v) { c.out << json::serialize(v) << '\n'; }

template <class T>
T* find_by(std::vector<T>& items, std::string_view key, std::string T::*field) {
    auto it = std::find_if(items.begin(), items.end(), [&](const T& x) { return text::iequals(x.*field, key); });
    return it == items.end() ? nullptr : &*it;
}

policy::mailbox* find_mailbox(policy::policy_file& p, std::string_view identity) {
    return find_by(p.mailboxes, identity, &policy::mailbox::identity);
}

policy::authentication_policy* find_auth_policy(policy::policy_file& p, std::string_view name) {
    return find_by(p.authentication_policies, name, &policy::authentication_policy::name);
}

// What a get-* verb shows: the one object -Identity names, or all of them.
// False (after saying so) when -Identity names nothing.
template <class T>
bool select_objects(context& c, std::vector<T>& items, std::string T::*key, std::vector<const T*>& out) {
    if (c.opts.has(o_identity)) {
        const T* one = find_by(items, c.opts.value(o_identity), key);
        if (one == nullptr) {
            c.fail() << not_found(c.opts.value(o_identity)) << '\n';
            return false;
        }
        out.push_back(one);
    } else {
        for (const auto& x : items) out.push_back(&x);
    }
    return true;
}

std::optional<policy::policy_file> load_policy(context& c) {
    auto loaded = policy::load_file(c.cfg.policy.file);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) c.err << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(loaded.policy);
}

// Runs one atomic edit. A refusal from `change` is printed as
// "subrelay VERB: reason"; validation errors as edit_file reports them.
int apply_edit(context& c, const policy::policy_change& change, bool create_missing) {
    std::string refusal;
    auto result = policy::edit_file(
        c.cfg.policy.file,
        [&](policy::policy_file& p) {
            refusal = change(p);
            return refusal;
        },
        create_missing);
    if (result.ok) return 0;
    if (!refusal.empty()) {
        c.fail() << refusal << '\n';
    } else {
        for (const auto& e : result.errors) c.err << e << '\n';
        if (result.errors.empty()) c.fail() << "the policy file was not changed\n";
    }
    return 1;
}

// "nothing to change" for a set-* verb given no setting.
int nothing_to_change(context& c, std::string_view settings) {
    c.fail() << "nothing to change: give " << settings << '\n';
    return 1;
}

// ---- transport / organization -------------------------------------------

}  // namespace

int get_transportconfig(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    if (c.opts.flag(o_json)) {
        print_json(c, json::object{{"SmtpClientAuthenticationDisabled", p->org.smtp_client_authentication_disabled}});
    } else {
        format_list(c.out,
                    {{"SmtpClientAuthenticationDisabled", true_false(p->org.smtp_client_authentication_disabled)}});
    }
    return 0;
}

namespace {

}  // namespace

int set_transportconfig(context& c) {
    if (!c.opts.has(o_disabled)) return nothing_to_change(c, "-SmtpClientAuthenticationDisabled $true or $false");
    const bool disabled = c.opts.boolean(o_disabled);
    return apply_edit(
        c,
        [&](policy::policy_file& p) {
            p.org.smtp_client_authentication_disabled = disabled;
            return std::string();
        },
        true);
}

namespace {

}  // namespace

int get_organizationconfig(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    const auto& o = p->org;
    if (c.opts.flag(o_json)) {
        json::object j{{"DefaultAuthenticationPolicy", o.default_authentication_policy.empty()
                                                           ? json::value(nullptr)
                                                           : json::value(o.default_authentication_policy)},
                       {"SecurityDefaults", o.security_defaults},
                       {"MaxMessagesPerMinute", o.max_messages_per_minute},
                       {"MaxRecipientsPerDay", o.max_recipients_per_day},
                       {"MaxRecipientsPerMessage", o.max_recipients_per_message}};
        print_json(c, j);
    } else {
        format_list(c.out, {{"DefaultAuthenticationPolicy", o.default_authentication_policy},
                            {"SecurityDefaults", true_false(o.security_defaults)},
                            {"MaxMessagesPerMinute", std::to_string(o.max_messages_per_minute)},
                            {"MaxRecipientsPerDay", std::to_string(o.max_recipients_per_day)},
                            {"MaxRecipientsPerMessage", std::to_string(o.max_recipients_per_message)}});
    }
    return 0;
}

namespace {

}  // namespace

int set_organizationconfig(context& c) {
    if (!c.opts.has(o_default_authentication_policy) && !c.opts.has(o_security_defaults) && !c.opts.has(o_max_messages_per_minute) &&
        !c.opts.has(o_max_recipients_per_day) && !c.opts.has(o_max_recipients_per_message)) {
        return nothing_to_change(c,
                                 "-DefaultAuthenticationPolicy, -SecurityDefaults, -MaxMessagesPerMinute, "
                                 "-MaxRecipientsPerDay or -MaxRecipientsPerMessage");
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            if (c.opts.has(o_default_authentication_policy)) {
                const auto name = c.opts.nullable_text(o_default_authentication_policy);
                if (name.empty()) {
                    p.org.default_authentication_policy.clear();
                } else {
                    const auto* ap = find_auth_policy(p, name);
                    if (ap == nullptr) return not_found(name);
                    p.org.default_authentication_policy = ap->name;
                }
            }
            if (c.opts.has(o_security_defaults)) p.org.security_defaults = c.opts.boolean(o_security_defaults);
            if (c.opts.has(o_max_messages_per_minute)) p.org.max_messages_per_minute = c.opts.count(o_max_messages_per_minute);
            if (c.opts.has(o_max_recipients_per_day)) p.org.max_recipients_per_day = c.opts.count(o_max_recipients_per_day);
            if (c.opts.has(o_max_recipients_per_message)) {
                p.org.max_recipients_per_message = c.opts.count(o_max_recipients_per_message);
            }
            return "";
        },
        true);
}

namespace {

// ---- CAS mailbox ---------------------------------------------------------

// -ResultSize: "unlimited" or a positive number. 0: unlimited.
bool read_result_size(context& c, std::size_t& size) {
    size = default_result_size;
    if (!c.opts.has(o_result_size)) return true;
    const auto text = c.opts.value(o_result_size);
    if (text::iequals(text, "unlimited")) {
        size = 0;
        return true;
    }
    auto n = parse_count(text);
    if (!n || *n == 0) {
        c.fail() << c.opts.spelling(o_result_size) << ": '" << text << "' is not a positive number or unlimited\n";
        return false;
    }
    size = *n;
    return true;
}

}  // namespace

int get_casmailbox(context& c) {
    std::size_t limit = 0;
    if (!read_result_size(c, limit)) return 1;
    cas_filter filter;
    const bool filtered = c.opts.has(o_filter);
    if (filtered) {
        std::string why;
        if (!parse_filter(c.opts.value(o_filter), filter, why)) {
            c.fail() << c.opts.spelling(o_filter) << ": " << why << '\n';
            return 1;
        }
    }
    auto p = load_policy(c);
    if (!p) return 1;

    std::vector<const policy::mailbox*> selected;
    if (!select_objects(c, p->mailboxes, &policy::mailbox::identity, selected)) return 1;
    if (filtered) {
        std::erase_if(selected, [&](const policy::mailbox* m) {
            return !filter.matches(m->smtp_client_authentication_disabled);
        });
    }
    if (limit != 0 && selected.size() > limit) {
        selected.resize(limit);
        if (!c.opts.has(o_result_size)) {
            c.err << "WARNING: By default, only the first " << default_result_size
                  << " items are returned. Use the ResultSize parameter to specify the number of items returned. "
                     "To return all items, specify \"-ResultSize Unlimited\".\n";
        }
    }

    if (c.opts.flag(o_json)) {
        json::array a;
        for (const auto* m : selected) {
            a.push_back(json::object{
                {"Identity", m->identity},
                {"SmtpClientAuthenticationDisabled", json_tristate(m->smtp_client_authentication_disabled)}});
        }
        print_json(c, a);
        return 0;
    }
    for (std::size_t i = 0; i < selected.size(); ++i) {
        if (i > 0) c.out << '\n';
        format_list(c.out, {{"Identity", selected[i]->identity},
                            {"SmtpClientAuthenticationDisabled",
                             true_false(selected[i]->smtp_client_authentication_disabled)}});
    }
    return 0;
}

namespace {

// Identities from a file (or standard input for "-"): one a line; blank
// lines and lines starting with # ignored; whitespace and CR trimmed.
bool read_identities(context& c, const std::string& file, std::vector<std::string>& out) {
    std::ifstream stream;
    std::istream* source = &c.in;
    if (file != "-") {
        stream.open(file);
        if (!stream) {
            c.fail() << "cannot read '" << file << "'\n";
            return false;
        }
        source = &stream;
    }
    for (std::string line; std::getline(*source, line);) {
        const auto identity = text::trim(line, " \t\r");
        if (identity.empty() || identity.front() == '#') continue;
        out.emplace_back(identity);
    }
    if (source->bad()) {
        c.fail() << "cannot read '" << file << "'\n";
        return false;
    }
    return true;
}

}  // namespace

int set_casmailbox(context& c) {
    const bool bulk = c.opts.has(o_from_file);
    if (bulk == c.opts.has(o_identity)) {
        c.fail() << "give either -Identity or --from-file\n";
        return 1;
    }
    if (!c.opts.has(o_disabled)) return nothing_to_change(c, "-SmtpClientAuthenticationDisabled $true, $false or $null");
    const auto setting = c.opts.tristate(o_disabled);

    if (!bulk) {
        const auto identity = c.opts.value(o_identity);
        return apply_edit(
            c,
            [&](policy::policy_file& p) -> std::string {
                auto* m = find_mailbox(p, identity);
                if (m == nullptr) return not_found(identity);
                m->smtp_client_authentication_disabled = setting;
                return "";
            },
            false);
    }

    std::vector<std::string> identities;
    if (!read_identities(c, c.opts.value(o_from_file), identities)) return 1;
    if (identities.empty()) {
        c.fail() << "no identities in '" << c.opts.value(o_from_file) << "'\n";
        return 1;
    }
    std::size_t changed = 0;
    std::vector<std::string> missing;
    const int status = apply_edit(
        c,
        [&](policy::policy_file& p) {
            changed = 0;
            missing.clear();
            for (const auto& identity : identities) {
                if (auto* m = find_mailbox(p, identity)) {
                    m->smtp_client_authentication_disabled = setting;
                    ++changed;
                } else {
                    missing.push_back(identity);
                }
            }
            return std::string();
        },
        false);
    if (status != 0) return status;
    for (const auto& identity : missing) c.fail() << not_found(identity) << '\n';
    if (!missing.empty()) {
        c.fail() << "changed " << changed << ", not found " << missing.size() << '\n';
        return 1;
    }
    return 0;
}

namespace {

// ---- relay accounts ------------------------------------------------------

// Reads the password options: --password-stdin or --generate-password.
// `password` stays empty when neither was given.
bool read_password(context& c, std::string& password, bool& generated) {
    generated = false;
    const bool from_stdin = c.opts.flag(o_password_stdin);
    const bool generate = c.opts.flag(o_generate_password);
    if (from_stdin && generate) {
        c.fail() << "give --password-stdin or --generate-password, not both\n";
        return false;
    }
    if (generate) {
        try {
            password = generate_password();
        } catch (const std::exception& e) {
            c.fail() << e.what() << '\n';
            return false;
        }
        generated = true;
    } else if (from_stdin) {
        if (!std::getline(c.in, password)) {
            c.fail() << "no password on standard input\n";
            return false;
        }
        if (!password.empty() && password.back() == '\r') password.pop_back();
        if (password.empty()) {
            c.fail() << "the password is empty\n";
            return false;
        }
    }
    return true;
}

// The account settings an option list can change (not the identity or password).
bool has_account_settings(const context& c) {
    for (const char* name :
         {o_disabled, o_allowed_senders, o_allowed_recipient_domains, o_upstream_mailbox, o_authentication_policy,
          o_max_messages_per_minute, o_max_recipients_per_day, o_max_recipients_per_message, o_null_sender}) {
        if (c.opts.has(name)) return true;
    }
    return false;
}

std::string apply_account_settings(const context& c, policy::policy_file& p, policy::mailbox& m) {
    if (c.opts.has(o_disabled)) m.smtp_client_authentication_disabled = c.opts.tristate(o_disabled);
    if (c.opts.has(o_allowed_senders)) m.allowed_senders = c.opts.list(o_allowed_senders);
    if (c.opts.has(o_allowed_recipient_domains)) m.allowed_recipient_domains = c.opts.list(o_allowed_recipient_domains);
    if (c.opts.has(o_upstream_mailbox)) m.upstream_mailbox = c.opts.nullable_text(o_upstream_mailbox);
    if (c.opts.has(o_authentication_policy)) {
        const auto name = c.opts.nullable_text(o_authentication_policy);
        if (name.empty()) {
            m.authentication_policy.clear();
        } else {
            const auto* ap = find_auth_policy(p, name);
            if (ap == nullptr) return not_found(name);
            m.authentication_policy = ap->name;
        }
    }
    if (c.opts.has(o_max_messages_per_minute)) m.max_messages_per_minute = c.opts.nullable_count(o_max_messages_per_minute);
    if (c.opts.has(o_max_recipients_per_day)) m.max_recipients_per_day = c.opts.nullable_count(o_max_recipients_per_day);
    if (c.opts.has(o_max_recipients_per_message))
        m.max_recipients_per_message = c.opts.nullable_count(o_max_recipients_per_message);
    if (c.opts.has(o_null_sender)) {
        const auto mode = c.opts.value(o_null_sender);
        if (text::iequals(mode, "rewrite")) {
            m.null_sender = policy::null_sender_mode::rewrite;
        } else if (text::iequals(mode, "refuse")) {
            m.null_sender = policy::null_sender_mode::refuse;
        } else {
            return "NullSender must be rewrite or refuse, not '" + mode + "'.";
        }
    }
    return "";
}

bool hash(context& c, const std::string& password, std::string& out) {
    try {
        out = auth::hash_password(password);
        return true;
    } catch (const std::exception& e) {
        c.fail() << e.what() << '\n';
        return false;
    }
}

}  // namespace

int new_relayaccount(context& c) {
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    if (!smtp::valid_mailbox(identity)) {
        c.fail() << "'" << identity << "' is not a valid address\n";
        return 1;
    }
    std::string password;
    bool generated = false;
    if (!read_password(c, password, generated)) return 1;
    if (password.empty()) {
        c.fail() << "give --password-stdin (read one line) or --generate-password\n";
        return 1;
    }
    std::string password_hash;
    if (!hash(c, password, password_hash)) return 1;
    const int status = apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            if (const auto* existing = find_mailbox(p, identity)) {
                return "An account with identity '" + existing->identity + "' already exists.";
            }
            policy::mailbox m;
            m.identity = identity;
            m.password_hash = password_hash;
            if (auto why = apply_account_settings(c, p, m); !why.empty()) return why;
            p.mailboxes.push_back(std::move(m));
            return "";
        },
        true);
    if (status == 0 && generated) c.out << password << '\n';
    return status;
}

namespace {

}  // namespace

int set_relayaccount(context& c) {
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    std::string password;
    bool generated = false;
    if (!read_password(c, password, generated)) return 1;
    if (password.empty() && !has_account_settings(c)) {
        return nothing_to_change(c, "a setting (see subrelay set-relayaccount --help)");
    }
    std::string password_hash;
    if (!password.empty() && !hash(c, password, password_hash)) return 1;
    const int status = apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto* m = find_mailbox(p, identity);
            if (m == nullptr) return not_found(identity);
            if (!password_hash.empty()) m->password_hash = password_hash;
            return apply_account_settings(c, p, *m);
        },
        false);
    if (status == 0 && generated) c.out << password << '\n';
    return status;
}

namespace {

}  // namespace

int remove_relayaccount(context& c) {
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto it = std::find_if(p.mailboxes.begin(), p.mailboxes.end(),
                                   [&](const policy::mailbox& m) { return text::iequals(m.identity, identity); });
            if (it == p.mailboxes.end()) return not_found(identity);
            for (const auto& b : p.bindings) {
                if (text::iequals(b.identity, identity)) {
                    return "'" + it->identity + "' is used by the relay binding for " + b.network_text +
                           "; remove it first (subrelay remove-relaybinding -Network " + b.network_text + ")";
                }
            }
            p.mailboxes.erase(it);
            return "";
        },
        false);
}

namespace {

}  // namespace

int get_relayaccount(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    std::vector<const policy::mailbox*> selected;
    if (!select_objects(c, p->mailboxes, &policy::mailbox::identity, selected)) return 1;
    if (c.opts.flag(o_json)) {
        json::array a;
        for (const auto* m : selected) {
            a.push_back(json::object{
                {"Identity", m->identity},
                {"PasswordSet", !m->password_hash.empty()},
                {"SmtpClientAuthenticationDisabled", json_tristate(m->smtp_client_authentication_disabled)},
                {"AllowedSenders",
                 json_list(m->allowed_senders.empty() ? std::vector<std::string>{m->identity} : m->allowed_senders)},
                {"AllowedRecipientDomains", json_list(m->allowed_recipient_domains)},
                {"UpstreamMailbox",
                 m->upstream_mailbox.empty() ? json::value(nullptr) : json::value(m->upstream_mailbox)},
                {"AuthenticationPolicy",
                 m->authentication_policy.empty() ? json::value(nullptr) : json::value(m->authentication_policy)},
                {"MaxMessagesPerMinute", json_count(m->max_messages_per_minute)},
                {"MaxRecipientsPerDay", json_count(m->max_recipients_per_day)},
                {"MaxRecipientsPerMessage", json_count(m->max_recipients_per_message)},
                {"NullSender", null_sender_name(m->null_sender)},
            });
        }
        print_json(c, a);
        return 0;
    }
    for (std::size_t i = 0; i < selected.size(); ++i) {
        const auto& m = *selected[i];
        if (i > 0) c.out << '\n';
        format_list(
            c.out, {{"Identity", m.identity},
                    {"PasswordSet", true_false(!m.password_hash.empty())},
                    {"SmtpClientAuthenticationDisabled", true_false(m.smtp_client_authentication_disabled)},
                    // Empty in the file means the identity alone.
                    {"AllowedSenders",
                     multi_value(m.allowed_senders.empty() ? std::vector<std::string>{m.identity} : m.allowed_senders)},
                    {"AllowedRecipientDomains", multi_value(m.allowed_recipient_domains)},
                    {"UpstreamMailbox", m.upstream_mailbox},
                    {"AuthenticationPolicy", m.authentication_policy},
                    {"MaxMessagesPerMinute", optional_count(m.max_messages_per_minute)},
                    {"MaxRecipientsPerDay", optional_count(m.max_recipients_per_day)},
                    {"MaxRecipientsPerMessage", optional_count(m.max_recipients_per_message)},
                    {"NullSender", null_sender_name(m.null_sender)}});
    }
    return 0;
}

namespace {

// ---- authentication policies ---------------------------------------------

}  // namespace

int new_authenticationpolicy(context& c) {
    const auto name = c.opts.value(o_name);
    if (name.empty()) {
        c.fail() << "-Name is required\n";
        return 1;
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            if (const auto* existing = find_auth_policy(p, name)) {
                return "An authentication policy named '" + existing->name + "' already exists.";
            }
            policy::authentication_policy ap;
            ap.name = name;
            if (c.opts.has(o_allow_basic_auth_smtp)) ap.allow_basic_auth_smtp = c.opts.boolean(o_allow_basic_auth_smtp);
            p.authentication_policies.push_back(std::move(ap));
            return "";
        },
        true);
}

namespace {

}  // namespace

int set_authenticationpolicy(context& c) {
    const auto name = c.opts.value(o_identity);
    if (name.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    if (!c.opts.has(o_allow_basic_auth_smtp)) return nothing_to_change(c, "-AllowBasicAuthSmtp $true or $false");
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto* ap = find_auth_policy(p, name);
            if (ap == nullptr) return not_found(name);
            ap->allow_basic_auth_smtp = c.opts.boolean(o_allow_basic_auth_smtp);
            return "";
        },
        false);
}

namespace {

}  // namespace

int remove_authenticationpolicy(context& c) {
    const auto name = c.opts.value(o_identity);
    if (name.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto it =
                std::find_if(p.authentication_policies.begin(), p.authentication_policies.end(),
                             [&](const policy::authentication_policy& ap) { return text::iequals(ap.name, name); });
            if (it == p.authentication_policies.end()) return not_found(name);
            if (text::iequals(p.org.default_authentication_policy, it->name)) {
                return "The authentication policy '" + it->name +
                       "' is the organization's default; clear it first "
                       "(subrelay set-organizationconfig -DefaultAuthenticationPolicy '$null')";
            }
            std::vector<std::string> users;
            for (const auto& m : p.mailboxes) {
                if (text::iequals(m.authentication_policy, it->name)) users.push_back(m.identity);
            }
            if (!users.empty()) {
                std::string list;
                for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
                return "The authentication policy '" + it->name + "' is assigned to " + list +
                       "; assign another first (subrelay set-relayaccount -Identity X --authentication-policy '$null')";
            }
            p.authentication_policies.erase(it);
            return "";
        },
        false);
}

namespace {

}  // namespace

int get_authenticationpolicy(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    std::vector<const policy::authentication_policy*> selected;
    if (!select_objects(c, p->authentication_policies, &policy::authentication_policy::name, selected)) return 1;
    if (c.opts.flag(o_json)) {
        json::array a;
        for (const auto* ap : selected) {
            a.push_back(json::object{{"Name", ap->name},
                                     {"AllowBasicAuthSmtp", ap->allow_basic_auth_smtp},
                                     {"IsDefault", text::iequals(ap->name, p->org.default_authentication_policy)}});
        }
        print_json(c, a);
        return 0;
    }
    for (std::size_t i = 0; i < selected.size(); ++i) {
        if (i > 0) c.out << '\n';
        format_list(
            c.out, {{"Name", selected[i]->name},
                    {"AllowBasicAuthSmtp", true_false(selected[i]->allow_basic_auth_smtp)},
                    {"IsDefault", true_false(text::iequals(selected[i]->name, p->org.default_authentication_policy))}});
    }
    return 0;
}

namespace {

// ---- bindings ------------------------------------------------------------

bool same_network(const policy::network& a, const policy::network& b) {
    return a.address == b.address && a.prefix == b.prefix;
}

bool parse_network(context& c, const std::string& text, policy::network& net) {
    std::string why;
    if (text.empty()) {
        c.fail() << "-Network is required\n";
        return false;
    }
    if (!policy::network::parse(text, net, why)) {
        c.fail() << "'" << text << "' " << why << '\n';
        return false;
    }
    return true;
}

}  // namespace

int new_relaybinding(context& c) {
    const auto text = c.opts.value(o_network);
    policy::network net;
    if (!parse_network(c, text, net)) return 1;
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    const auto listeners = c.opts.list(o_listeners);
    for (const auto& l : listeners) {
        conf::listen_address address;
        std::string why;
        if (l != "submission" && l != "submissions" && !conf::parse_listen_address(l, address, why)) {
            c.fail() << "listener '" << l << "': expected submission, submissions or HOST:PORT\n";
            return 1;
        }
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            const auto* m = find_mailbox(p, identity);
            if (m == nullptr) return not_found(identity);
            for (const auto& b : p.bindings) {
                if (same_network(b.net, net)) {
                    return "A relay binding for " + b.network_text + " already exists (identity " + b.identity + ").";
                }
            }
            policy::binding b;
            b.network_text = text;
            b.net = net;
            b.identity = m->identity;
            b.listeners = listeners;
            p.bindings.push_back(std::move(b));
            return "";
        },
        true);
}

namespace {

}  // namespace

int remove_relaybinding(context& c) {
    const auto text = c.opts.value(o_network);
    policy::network net;
    if (!parse_network(c, text, net)) return 1;
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto it = std::find_if(p.bindings.begin(), p.bindings.end(),
                                   [&](const policy::binding& b) { return same_network(b.net, net); });
            if (it == p.bindings.end()) return not_found(text);
            p.bindings.erase(it);
            return "";
        },
        false);
}

namespace {

}  // namespace

int get_relaybinding(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    if (c.opts.flag(o_json)) {
        json::array a;
        for (const auto& b : p->bindings) {
            a.push_back(json::object{
                {"Network", b.network_text}, {"Identity", b.identity}, {"Listeners", json_list(b.listeners)}});
        }
        print_json(c, a);
        return 0;
    }
    for (std::size_t i = 0; i < p->bindings.size(); ++i) {
        const auto& b = p->bindings[i];
        if (i > 0) c.out << '\n';
        format_list(c.out, {{"Network", b.network_text},
                            {"Identity", b.identity},
                            {"Listeners", b.listeners.empty() ? std::string("All") : multi_value(b.listeners)}});
    }
    return 0;
}

namespace {

// ---- explain -------------------------------------------------------------

}  // namespace

int explain(context& c) {
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "an identity is required (subrelay explain IDENTITY)\n";
        return 1;
    }
    // Which listener addresses to ask binding_for about.
    std::string kind = "submission";
    std::vector<std::string> addresses;
    if (c.opts.has(o_client)) {
        std::string why;
        const auto client = c.opts.value(o_client);
        if (!policy::network::parse_address(client)) {
            c.fail() << c.opts.spelling(o_client) << ": '" << client << "' is not an IP address\n";
            return 1;
        }
        const auto listener = c.opts.has(o_listener) ? c.opts.value(o_listener) : std::string("submission");
        auto texts = [](const std::vector<conf::listen_address>& list) {
            std::vector<std::string> out;
            for (const auto& a : list) out.push_back(a.to_string());
            return out;
        };
        if (listener == "submission" || listener == "submissions") {
            kind = listener;
            addresses = texts(listener == "submission" ? c.cfg.server.submission : c.cfg.server.submissions);
        } else {
            conf::listen_address wanted;
            if (!conf::parse_listen_address(listener, wanted, why)) {
                c.fail() << c.opts.spelling(o_listener) << ": expected submission, submissions or HOST:PORT\n";
                return 1;
            }
            const auto sub = texts(c.cfg.server.submission);
            const auto subs = texts(c.cfg.server.submissions);
            if (std::find(sub.begin(), sub.end(), wanted.to_string()) != sub.end()) {
                kind = "submission";
            } else if (std::find(subs.begin(), subs.end(), wanted.to_string()) != subs.end()) {
                kind = "submissions";
            } else {
                c.fail() << "'" << listener << "' is not a listener of " << c.cfg.source.string() << '\n';
                return 1;
            }
            addresses = {wanted.to_string()};
        }
        if (addresses.empty()) addresses.emplace_back();
    }

    auto p = load_policy(c);
    if (!p) return 1;
    const policy::engine engine(std::move(*p));
    const auto* m = engine.find(identity);
    if (m == nullptr) {
        c.fail() << not_found(identity) << '\n';
        return 1;
    }
    const auto decision = engine.may_authenticate(*m);
    c.out << "Identity: " << m->identity << '\n';
    c.out << "SMTP AUTH:\n";
    for (const auto& step : decision.steps) c.out << "  " << step << '\n';
    if (decision.refusal) c.out << "AUTH reply: " << decision.refusal->summary() << '\n';

    if (c.opts.has(o_from)) {
        const auto from = c.opts.value(o_from);
        if (auto refusal = engine.check_sender(m->identity, from)) {
            c.out << "Sender " << from << ": refused (" << refusal->summary() << ")\n";
        } else {
            c.out << "Sender " << from << ": allowed\n";
        }
    }
    if (c.opts.has(o_client)) {
        const auto client = c.opts.value(o_client);
        for (const auto& address : addresses) {
            c.out << "Client " << client << " on " << kind;
            if (!address.empty()) c.out << " (" << address << ")";
            if (const auto* b = engine.binding_for(client, kind, address)) {
                c.out << ": binding " << b->network_text << " (identity " << b->identity << ")\n";
            } else {
                c.out << ": no binding\n";
            }
        }
    }
    c.out << "Recipients: "
          << (m->allowed_recipient_domains.empty() ? std::string("any domain")
                                                   : multi_value(m->allowed_recipient_domains))
          << '\n';
    const auto limits = engine.limits_for(*m);
    c.out << "Limits: MaxMessagesPerMinute " << limit_text(limits.max_messages_per_minute) << ", MaxRecipientsPerDay "
          << limit_text(limits.max_recipients_per_day) << ", MaxRecipientsPerMessage "
          << limit_text(limits.max_recipients_per_message) << '\n';
    auto upstream = engine.upstream_mailbox_for(m->identity);
    if (upstream.empty()) upstream = c.cfg.upstream.mailbox;
    if (!upstream.empty()) c.out << "Upstream mailbox: " << upstream << '\n';
    return 0;
}

namespace {

}  // namespace

int run(invocation& v, int (*verb)(context&)) {
    auto cfg = load_config(v.config_file(), v.err);
    if (!cfg) return 1;
    context c{v, std::move(*cfg)};
    return verb(c);
}

}  // namespace subrelay::relay::admin
