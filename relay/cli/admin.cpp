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

constexpr const char* default_config = "/etc/subrelay/subrelay.toml";
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

struct context {
    std::string verb;
    std::string usage;
    parsed_options opts;
    std::istream& in;
    std::ostream& out;
    std::ostream& err;
    conf::config cfg;

    // Starts an error line: "subrelay VERB: ".
    std::ostream& fail() const { return err << "subrelay " << verb << ": "; }

    [[nodiscard]] bool has(const char* name) const { return opts.has(name); }
    [[nodiscard]] bool flag(const char* name) const { return opts.flags.count(name) != 0; }
    [[nodiscard]] std::string text(const char* name) const { return opts.value(name); }
    // The value kinds were checked by parse_options.
    [[nodiscard]] bool boolean(const char* name) const { return parse_boolean(text(name)).value().value_or(false); }
    [[nodiscard]] std::optional<bool> tristate(const char* name) const { return parse_boolean(text(name)).value(); }
    [[nodiscard]] std::uint32_t count(const char* name) const { return parse_count(text(name)).value_or(0); }
    [[nodiscard]] std::optional<std::uint32_t> nullable_count(const char* name) const {
        return parse_count(text(name));
    }
    [[nodiscard]] std::string nullable_text(const char* name) const {
        auto v = text(name);
        auto b = parse_boolean(v);
        return b && !*b ? std::string() : v;
    }
    [[nodiscard]] std::vector<std::string> list(const char* name) const {
        auto v = text(name);
        auto b = parse_boolean(v);
        return b && !*b ? std::vector<std::string>() : split_list(v);
    }
    [[nodiscard]] std::string spelled(const char* name) const {
        auto it = opts.spelled.find(name);
        return it == opts.spelled.end() ? std::string("-") + name : it->second;
    }
};

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
    if (c.has(o_identity)) {
        const T* one = find_by(items, c.text(o_identity), key);
        if (one == nullptr) {
            c.fail() << not_found(c.text(o_identity)) << '\n';
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

int get_transportconfig(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    if (c.flag(o_json)) {
        print_json(c, json::object{{"SmtpClientAuthenticationDisabled", p->org.smtp_client_authentication_disabled}});
    } else {
        format_list(c.out,
                    {{"SmtpClientAuthenticationDisabled", true_false(p->org.smtp_client_authentication_disabled)}});
    }
    return 0;
}

int set_transportconfig(context& c) {
    if (!c.has(o_disabled)) return nothing_to_change(c, "-SmtpClientAuthenticationDisabled $true or $false");
    const bool disabled = c.boolean(o_disabled);
    return apply_edit(
        c,
        [&](policy::policy_file& p) {
            p.org.smtp_client_authentication_disabled = disabled;
            return std::string();
        },
        true);
}

int get_organizationconfig(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    const auto& o = p->org;
    if (c.flag(o_json)) {
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

int set_organizationconfig(context& c) {
    if (!c.has(o_default_authentication_policy) && !c.has(o_security_defaults) && !c.has(o_max_messages_per_minute) &&
        !c.has(o_max_recipients_per_day) && !c.has(o_max_recipients_per_message)) {
        return nothing_to_change(c,
                                 "-DefaultAuthenticationPolicy, -SecurityDefaults, -MaxMessagesPerMinute, "
                                 "-MaxRecipientsPerDay or -MaxRecipientsPerMessage");
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            if (c.has(o_default_authentication_policy)) {
                const auto name = c.nullable_text(o_default_authentication_policy);
                if (name.empty()) {
                    p.org.default_authentication_policy.clear();
                } else {
                    const auto* ap = find_auth_policy(p, name);
                    if (ap == nullptr) return not_found(name);
                    p.org.default_authentication_policy = ap->name;
                }
            }
            if (c.has(o_security_defaults)) p.org.security_defaults = c.boolean(o_security_defaults);
            if (c.has(o_max_messages_per_minute)) p.org.max_messages_per_minute = c.count(o_max_messages_per_minute);
            if (c.has(o_max_recipients_per_day)) p.org.max_recipients_per_day = c.count(o_max_recipients_per_day);
            if (c.has(o_max_recipients_per_message)) {
                p.org.max_recipients_per_message = c.count(o_max_recipients_per_message);
            }
            return "";
        },
        true);
}

// ---- CAS mailbox ---------------------------------------------------------

// -ResultSize: "unlimited" or a positive number. 0: unlimited.
bool read_result_size(context& c, std::size_t& size) {
    size = default_result_size;
    if (!c.has(o_result_size)) return true;
    const auto text = c.text(o_result_size);
    if (text::iequals(text, "unlimited")) {
        size = 0;
        return true;
    }
    auto n = parse_count(text);
    if (!n || *n == 0) {
        c.fail() << c.spelled(o_result_size) << ": '" << text << "' is not a positive number or unlimited\n";
        return false;
    }
    size = *n;
    return true;
}

int get_casmailbox(context& c) {
    std::size_t limit = 0;
    if (!read_result_size(c, limit)) return 1;
    cas_filter filter;
    const bool filtered = c.has(o_filter);
    if (filtered) {
        std::string why;
        if (!parse_filter(c.text(o_filter), filter, why)) {
            c.fail() << c.spelled(o_filter) << ": " << why << '\n';
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
        if (!c.has(o_result_size)) {
            c.err << "WARNING: By default, only the first " << default_result_size
                  << " items are returned. Use the ResultSize parameter to specify the number of items returned. "
                     "To return all items, specify \"-ResultSize Unlimited\".\n";
        }
    }

    if (c.flag(o_json)) {
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

int set_casmailbox(context& c) {
    const bool bulk = c.has(o_from_file);
    if (bulk == c.has(o_identity)) {
        c.fail() << "give either -Identity or --from-file\n";
        return 1;
    }
    if (!c.has(o_disabled)) return nothing_to_change(c, "-SmtpClientAuthenticationDisabled $true, $false or $null");
    const auto setting = c.tristate(o_disabled);

    if (!bulk) {
        const auto identity = c.text(o_identity);
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
    if (!read_identities(c, c.text(o_from_file), identities)) return 1;
    if (identities.empty()) {
        c.fail() << "no identities in '" << c.text(o_from_file) << "'\n";
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

// ---- relay accounts ------------------------------------------------------

// Reads the password options: --password-stdin or --generate-password.
// `password` stays empty when neither was given.
bool read_password(context& c, std::string& password, bool& generated) {
    generated = false;
    const bool from_stdin = c.flag(o_password_stdin);
    const bool generate = c.flag(o_generate_password);
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
        if (c.has(name)) return true;
    }
    return false;
}

std::string apply_account_settings(const context& c, policy::policy_file& p, policy::mailbox& m) {
    if (c.has(o_disabled)) m.smtp_client_authentication_disabled = c.tristate(o_disabled);
    if (c.has(o_allowed_senders)) m.allowed_senders = c.list(o_allowed_senders);
    if (c.has(o_allowed_recipient_domains)) m.allowed_recipient_domains = c.list(o_allowed_recipient_domains);
    if (c.has(o_upstream_mailbox)) m.upstream_mailbox = c.nullable_text(o_upstream_mailbox);
    if (c.has(o_authentication_policy)) {
        const auto name = c.nullable_text(o_authentication_policy);
        if (name.empty()) {
            m.authentication_policy.clear();
        } else {
            const auto* ap = find_auth_policy(p, name);
            if (ap == nullptr) return not_found(name);
            m.authentication_policy = ap->name;
        }
    }
    if (c.has(o_max_messages_per_minute)) m.max_messages_per_minute = c.nullable_count(o_max_messages_per_minute);
    if (c.has(o_max_recipients_per_day)) m.max_recipients_per_day = c.nullable_count(o_max_recipients_per_day);
    if (c.has(o_max_recipients_per_message))
        m.max_recipients_per_message = c.nullable_count(o_max_recipients_per_message);
    if (c.has(o_null_sender)) {
        const auto mode = c.text(o_null_sender);
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

int new_relayaccount(context& c) {
    const auto identity = c.text(o_identity);
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

int set_relayaccount(context& c) {
    const auto identity = c.text(o_identity);
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

int remove_relayaccount(context& c) {
    const auto identity = c.text(o_identity);
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

int get_relayaccount(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    std::vector<const policy::mailbox*> selected;
    if (!select_objects(c, p->mailboxes, &policy::mailbox::identity, selected)) return 1;
    if (c.flag(o_json)) {
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

// ---- authentication policies ---------------------------------------------

int new_authenticationpolicy(context& c) {
    const auto name = c.text(o_name);
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
            if (c.has(o_allow_basic_auth_smtp)) ap.allow_basic_auth_smtp = c.boolean(o_allow_basic_auth_smtp);
            p.authentication_policies.push_back(std::move(ap));
            return "";
        },
        true);
}

int set_authenticationpolicy(context& c) {
    const auto name = c.text(o_identity);
    if (name.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    if (!c.has(o_allow_basic_auth_smtp)) return nothing_to_change(c, "-AllowBasicAuthSmtp $true or $false");
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto* ap = find_auth_policy(p, name);
            if (ap == nullptr) return not_found(name);
            ap->allow_basic_auth_smtp = c.boolean(o_allow_basic_auth_smtp);
            return "";
        },
        false);
}

int remove_authenticationpolicy(context& c) {
    const auto name = c.text(o_identity);
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

int get_authenticationpolicy(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    std::vector<const policy::authentication_policy*> selected;
    if (!select_objects(c, p->authentication_policies, &policy::authentication_policy::name, selected)) return 1;
    if (c.flag(o_json)) {
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

int new_relaybinding(context& c) {
    const auto text = c.text(o_network);
    policy::network net;
    if (!parse_network(c, text, net)) return 1;
    const auto identity = c.text(o_identity);
    if (identity.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    const auto listeners = c.list(o_listeners);
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

int remove_relaybinding(context& c) {
    const auto text = c.text(o_network);
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

int get_relaybinding(context& c) {
    auto p = load_policy(c);
    if (!p) return 1;
    if (c.flag(o_json)) {
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

// ---- explain -------------------------------------------------------------

int explain(context& c) {
    const auto identity = c.text(o_identity);
    if (identity.empty()) {
        c.fail() << "an identity is required (subrelay explain IDENTITY)\n";
        return 1;
    }
    // Which listener addresses to ask binding_for about.
    std::string kind = "submission";
    std::vector<std::string> addresses;
    if (c.has(o_client)) {
        std::string why;
        const auto client = c.text(o_client);
        if (!policy::network::parse_address(client)) {
            c.fail() << c.spelled(o_client) << ": '" << client << "' is not an IP address\n";
            return 1;
        }
        const auto listener = c.has(o_listener) ? c.text(o_listener) : std::string("submission");
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
                c.fail() << c.spelled(o_listener) << ": expected submission, submissions or HOST:PORT\n";
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

    if (c.has(o_from)) {
        const auto from = c.text(o_from);
        if (auto refusal = engine.check_sender(m->identity, from)) {
            c.out << "Sender " << from << ": refused (" << refusal->summary() << ")\n";
        } else {
            c.out << "Sender " << from << ": allowed\n";
        }
    }
    if (c.has(o_client)) {
        const auto client = c.text(o_client);
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

// ---- the verb table --------------------------------------------------------

using verb_fn = int (*)(context&);

struct verb_def {
    const char* name;
    const char* summary;
    const char* usage;
    std::vector<option_spec> options;
    const char* positional;  // the option a positional argument fills, or nullptr
    verb_fn run;
};

const option_spec identity_opt{"Identity", value_kind::text};
const option_spec json_opt{"Json", value_kind::flag};

std::vector<option_spec> account_options() {
    return {identity_opt,
            {"PasswordStdin", value_kind::flag},
            {"GeneratePassword", value_kind::flag},
            {"SmtpClientAuthenticationDisabled", value_kind::tristate},
            {"AllowedSenders", value_kind::list},
            {"AllowedRecipientDomains", value_kind::list},
            {"UpstreamMailbox", value_kind::nullable_text},
            {"AuthenticationPolicy", value_kind::nullable_text},
            {"MaxMessagesPerMinute", value_kind::nullable_count},
            {"MaxRecipientsPerDay", value_kind::nullable_count},
            {"MaxRecipientsPerMessage", value_kind::nullable_count},
            {"NullSender", value_kind::text}};
}

constexpr const char* common_help = R"(
Options are accepted in PowerShell spelling (-Identity x, -Name:value, any
case) and GNU spelling (--identity x, --name=value). Booleans: $true, $false,
$null or true, false, null. In a POSIX shell quote them ('$false') or write
false: an unquoted $false expands to nothing.
--config FILE   the configuration (default /etc/subrelay/subrelay.toml); the
                policy file it names is read and edited.
Exit status: 0 done, 1 error, 2 the command line does not parse.
)";

const std::vector<verb_def>& verb_table() {
    static const std::vector<verb_def> table = {
        {"get-transportconfig",
         "show the organization-wide SmtpClientAuthenticationDisabled",
         "usage: subrelay get-transportconfig [--json]\n\n"
         "Shows the organization-wide SmtpClientAuthenticationDisabled, like Get-TransportConfig.\n",
         {json_opt},
         nullptr,
         get_transportconfig},
        {"set-transportconfig",
         "turn SMTP AUTH off or on for the organization",
         "usage: subrelay set-transportconfig -SmtpClientAuthenticationDisabled $true|$false\n\n"
         "Sets the organization-wide default, like Set-TransportConfig. Accounts whose\n"
         "own SmtpClientAuthenticationDisabled is set ($true or $false) are not affected.\n",
         {{"SmtpClientAuthenticationDisabled", value_kind::boolean}},
         nullptr,
         set_transportconfig},
        {"get-organizationconfig",
         "show the organization's defaults and limits",
         "usage: subrelay get-organizationconfig [--json]\n\n"
         "Shows DefaultAuthenticationPolicy, SecurityDefaults and the default limits.\n",
         {json_opt},
         nullptr,
         get_organizationconfig},
        {"set-organizationconfig",
         "change the organization's defaults and limits",
         "usage: subrelay set-organizationconfig [-DefaultAuthenticationPolicy NAME|$null]\n"
         "           [-SecurityDefaults $true|$false] [-MaxMessagesPerMinute N]\n"
         "           [-MaxRecipientsPerDay N] [-MaxRecipientsPerMessage N]\n\n"
         "SecurityDefaults $true turns SMTP AUTH off for every account. A limit of 0\n"
         "(or unlimited) means no limit.\n",
         {{"DefaultAuthenticationPolicy", value_kind::nullable_text},
          {"SecurityDefaults", value_kind::boolean},
          {"MaxMessagesPerMinute", value_kind::count},
          {"MaxRecipientsPerDay", value_kind::count},
          {"MaxRecipientsPerMessage", value_kind::count}},
         nullptr,
         set_organizationconfig},
        {"get-casmailbox",
         "show SmtpClientAuthenticationDisabled per account",
         "usage: subrelay get-casmailbox [-Identity X] [-ResultSize unlimited|N]\n"
         "           [-Filter 'SmtpClientAuthenticationDisabled -eq $true'] [--json]\n\n"
         "Lists accounts and their SmtpClientAuthenticationDisabled (blank: unset, the\n"
         "organization decides), like Get-CASMailbox. -Filter supports -eq and -ne with\n"
         "$true, $false or $null; -ne $true also lists unset accounts. Without\n"
         "-ResultSize at most 1000 accounts are listed.\n",
         {identity_opt, {"ResultSize", value_kind::text}, {"Filter", value_kind::text}, json_opt},
         o_identity,
         get_casmailbox},
        {"set-casmailbox",
         "turn SMTP AUTH off or on for accounts",
         "usage: subrelay set-casmailbox -Identity X -SmtpClientAuthenticationDisabled $true|$false|$null\n"
         "       subrelay set-casmailbox --from-file FILE -SmtpClientAuthenticationDisabled ...\n\n"
         "$true: SMTP AUTH off for the account; $false: on, whatever the organization\n"
         "says; $null: the organization decides. --from-file reads one identity a line\n"
         "(- for standard input; blank lines and # comments ignored) and changes all\n"
         "of them in one edit; identities not found are reported and make the exit\n"
         "status 1, the others are still changed.\n",
         {identity_opt, {"SmtpClientAuthenticationDisabled", value_kind::tristate}, {"FromFile", value_kind::text}},
         o_identity,
         set_casmailbox},
        {"new-relayaccount", "create an account",
         "usage: subrelay new-relayaccount -Identity X (--password-stdin | --generate-password)\n"
         "           [-SmtpClientAuthenticationDisabled $true|$false|$null]\n"
         "           [--allowed-senders a@x,*@y] [--allowed-recipient-domains d1,d2]\n"
         "           [--upstream-mailbox M] [--authentication-policy NAME]\n\n"
         "--password-stdin reads the password as one line; --generate-password makes\n"
         "a random one and prints it once. Only its crypt(3) hash is stored.\n",
         account_options(), o_identity, new_relayaccount},
        {"set-relayaccount", "change an account",
         "usage: subrelay set-relayaccount -Identity X [--password-stdin | --generate-password]\n"
         "           [-SmtpClientAuthenticationDisabled $true|$false|$null]\n"
         "           [--allowed-senders LIST|$null] [--allowed-recipient-domains LIST|$null]\n"
         "           [--upstream-mailbox M|$null] [--authentication-policy NAME|$null]\n"
         "           [--max-messages-per-minute N|$null] [--max-recipients-per-day N|$null]\n"
         "           [--max-recipients-per-message N|$null] [--null-sender rewrite|refuse]\n\n"
         "$null clears a setting (the default applies: the organization's limits, the\n"
         "default upstream mailbox, the identity as the only sender). 0 = no limit.\n"
         "--null-sender: MAIL FROM:<> is relayed with the account's identity as the\n"
         "envelope sender (rewrite, the default) or refused (refuse).\n",
         account_options(), o_identity, set_relayaccount},
        {"remove-relayaccount",
         "delete an account",
         "usage: subrelay remove-relayaccount -Identity X\n\n"
         "Refuses while a relay binding uses the account.\n",
         {identity_opt},
         o_identity,
         remove_relayaccount},
        {"get-relayaccount",
         "show accounts and their settings",
         "usage: subrelay get-relayaccount [-Identity X] [--json]\n\n"
         "Shows every setting of the accounts except the password hash.\n",
         {identity_opt, json_opt},
         o_identity,
         get_relayaccount},
        {"new-authenticationpolicy",
         "create an authentication policy",
         "usage: subrelay new-authenticationpolicy -Name N [-AllowBasicAuthSmtp $true|$false]\n\n"
         "Like New-AuthenticationPolicy: AllowBasicAuthSmtp is $false unless given.\n",
         {{"Name", value_kind::text}, {"AllowBasicAuthSmtp", value_kind::boolean}},
         o_name,
         new_authenticationpolicy},
        {"set-authenticationpolicy",
         "change an authentication policy",
         "usage: subrelay set-authenticationpolicy -Identity N -AllowBasicAuthSmtp $true|$false\n",
         {identity_opt, {"AllowBasicAuthSmtp", value_kind::boolean}},
         o_identity,
         set_authenticationpolicy},
        {"remove-authenticationpolicy",
         "delete an authentication policy",
         "usage: subrelay remove-authenticationpolicy -Identity N\n\n"
         "Refuses while accounts or the organization default use the policy.\n",
         {identity_opt},
         o_identity,
         remove_authenticationpolicy},
        {"get-authenticationpolicy",
         "show authentication policies",
         "usage: subrelay get-authenticationpolicy [-Identity N] [--json]\n",
         {identity_opt, json_opt},
         o_identity,
         get_authenticationpolicy},
        {"new-relaybinding",
         "let a network submit as an account without AUTH",
         "usage: subrelay new-relaybinding -Network CIDR -Identity X [--listeners a,b]\n\n"
         "Clients from CIDR (10.1.20.0/24, 2001:db8::/48 or one address) submit as X\n"
         "without authenticating. --listeners: submission, submissions or HOST:PORT\n"
         "(default: all listeners).\n",
         {{"Network", value_kind::text}, identity_opt, {"Listeners", value_kind::list}},
         nullptr,
         new_relaybinding},
        {"remove-relaybinding",
         "delete a relay binding",
         "usage: subrelay remove-relaybinding -Network CIDR\n",
         {{"Network", value_kind::text}},
         nullptr,
         remove_relaybinding},
        {"get-relaybinding",
         "show relay bindings",
         "usage: subrelay get-relaybinding [--json]\n",
         {json_opt},
         nullptr,
         get_relaybinding},
        {"explain",
         "explain what the policy decides for an account",
         "usage: subrelay explain IDENTITY [--from ADDR] [--client IP]\n"
         "           [--listener submission|submissions|HOST:PORT]\n\n"
         "Prints each step of the SMTP AUTH decision, whether the account may send as\n"
         "ADDR, which relay binding a client address matches, and the limits in force.\n"
         "Exits 0 even when the account is refused (it is a report).\n",
         {identity_opt, {"From", value_kind::text}, {"Client", value_kind::text}, {"Listener", value_kind::text}},
         o_identity,
         explain},
    };
    return table;
}

const verb_def* find_verb(std::string_view name) {
    const auto& table = verb_table();
    auto it = std::find_if(table.begin(), table.end(), [&](const verb_def& v) { return name == v.name; });
    return it == table.end() ? nullptr : &*it;
}

}  // namespace

bool is_verb(std::string_view verb) { return find_verb(verb) != nullptr; }

std::string summary() {
    std::string out;
    for (const auto& v : verb_table()) {
        std::string name = v.name;
        out += "  " + name + std::string(name.size() < 30 ? 30 - name.size() : 1, ' ') + v.summary + '\n';
    }
    return out;
}

int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
    const verb_def* v = args.empty() ? nullptr : find_verb(args[0]);
    if (v == nullptr) {
        err << "subrelay: unknown verb '" << (args.empty() ? "" : args[0]) << "' (see subrelay --help)\n";
        return 2;
    }
    const std::string usage = std::string(v->usage) + common_help;
    auto specs = v->options;
    specs.push_back({"Config", value_kind::text});
    parsed_options opts;
    if (auto why = parse_options(args, specs, v->positional ? 1 : 0, opts); !why.empty()) {
        err << "subrelay " << v->name << ": " << why << '\n' << usage;
        return 2;
    }
    if (opts.help) {
        out << usage;
        return 0;
    }
    if (!opts.positionals.empty()) {
        if (opts.has(v->positional)) {
            err << "subrelay " << v->name << ": '" << opts.positionals[0] << "' and " << opts.spelled[v->positional]
                << " both name the object\n"
                << usage;
            return 2;
        }
        opts.values[v->positional] = opts.positionals[0];
    }
    const std::string config_file = opts.has("config") ? opts.value("config") : std::string(default_config);
    auto parsed = conf::parse_file(config_file);
    if (!parsed.ok()) {
        for (const auto& e : parsed.errors) err << e.to_string() << '\n';
        return 1;
    }
    context c{v->name, usage, std::move(opts), in, out, err, std::move(parsed.cfg)};
    return v->run(c);
}

}  // namespace subrelay::relay::admin
