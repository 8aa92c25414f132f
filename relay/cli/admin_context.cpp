#include "relay/cli/admin_context.hpp"

#include <chrono>
#include <ostream>

#include "policy/audit.hpp"

namespace subrelay::relay::admin {

int run(invocation& v, int (*verb)(context&)) {
    auto cfg = load_config(v.config_file(), v.err);
    if (!cfg) return 1;
    context c{v, std::move(*cfg)};
    return verb(c);
}

std::string not_found(std::string_view identity) {
    return "The operation couldn't be performed because object '" + std::string(identity) + "' couldn't be found.";
}

std::optional<policy::policy_file> load_policy(const context& c) {
    auto loaded = policy::load_file(c.cfg.policy.file);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) c.err << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(loaded.policy);
}

namespace {

// "set-casmailbox" as Exchange spells the cmdlet: "Set-CASMailbox".
std::string cmdlet_name(std::string_view verb) {
    static const std::vector<std::pair<std::string_view, std::string_view>> nouns = {
        {"transportconfig", "TransportConfig"},           {"organizationconfig", "OrganizationConfig"},
        {"casmailbox", "CASMailbox"},                     {"relayaccount", "RelayAccount"},
        {"authenticationpolicy", "AuthenticationPolicy"}, {"relaybinding", "RelayBinding"},
        {"adminuser", "AdminUser"}};
    const auto dash = verb.find('-');
    std::string name(verb.substr(0, dash));
    if (!name.empty()) name[0] = static_cast<char>(name[0] - 'a' + 'A');
    if (dash == std::string_view::npos) return name;
    const std::string_view noun = verb.substr(dash + 1);
    for (const auto& [lower, spelled] : nouns)
        if (noun == lower) return name + "-" + std::string(spelled);
    return name + "-" + std::string(noun);
}

// A value as PowerShell would take it: bare when it is one plain word or a
// $true/$false/$null, else in single quotes (a quote doubled).
std::string ps_value(const std::string& v) {
    const bool plain = !v.empty() && v.find_first_of(" \t'\"$;|&(){}`#") == std::string::npos;
    if (plain || v == "$true" || v == "$false" || v == "$null") return v;
    std::string out = "'";
    for (const char ch : v) {
        out += ch;
        if (ch == '\'') out += '\'';
    }
    return out + "'";
}

// The command as a cmdlet, for the audit log: "Set-CASMailbox -Identity X
// -SmtpClientAuthenticationDisabled $false". With --from-file, one command
// per object, naming it.
std::string cmdlet_text(const context& c, const std::string& object) {
    std::string out = cmdlet_name(c.verb);
    const bool from_file = c.opts.has("fromfile");
    if (from_file) out += " -Identity " + ps_value(object);
    if (c.specs == nullptr) return out;
    for (const auto& spec : *c.specs) {
        const std::string name = spec.name();
        if (name == "config" || name == "json" || name == "fromfile" || !c.opts.has(name)) continue;
        if (from_file && name == o_identity) continue;
        out += " -" + spec.display;
        if (spec.kind == value_kind::boolean || spec.kind == value_kind::tristate) {
            const std::optional<bool> v = c.opts.tristate(name);
            out += !v ? " $null" : *v ? " $true" : " $false";
        } else if (spec.kind != value_kind::flag) {
            out += " " + ps_value(c.opts.value(name));
        }
    }
    return out;
}

}  // namespace

int apply_edit(const context& c, const policy::policy_change& change, bool create_missing) {
    // The audit log first: a change that cannot be recorded is not made.
    std::optional<policy::audit_log> audit;
    try {
        if (!std::filesystem::exists(c.cfg.spool.dir)) {
            // Before the relay's first start: the spool is made as the relay makes it, 0700.
            std::filesystem::create_directories(c.cfg.spool.dir);
            std::filesystem::permissions(c.cfg.spool.dir, std::filesystem::perms::owner_all,
                                         std::filesystem::perm_options::replace);
        }
        audit.emplace(policy::audit_log_path(c.cfg.spool.dir));
    } catch (const std::exception& e) {
        c.fail() << e.what() << '\n';
        return 1;
    }
    std::string refusal;
    policy::policy_file before;
    policy::policy_file after;
    auto result = policy::edit_file(
        c.cfg.policy.file,
        [&](policy::policy_file& p) {
            before = p;
            refusal = change(p);
            after = p;
            return refusal;
        },
        create_missing);
    if (result.ok && result.changed) {
        std::vector<policy::audit_entry> entries;
        const std::int64_t now = now_seconds();
        const std::string who = policy::unix_caller();
        for (auto& changed : policy::policy_changes(before, after)) {
            entries.push_back({now, who, cmdlet_text(c, changed.identity), std::move(changed)});
        }
        try {
            audit->append(entries);
        } catch (const std::exception& e) {
            c.fail() << "the change was made, but " << e.what() << '\n';
            return 1;
        }
    }
    if (result.ok) return 0;
    if (!refusal.empty()) {
        c.fail() << refusal << '\n';
    } else {
        for (const auto& e : result.errors) c.err << e << '\n';
        if (result.errors.empty()) c.fail() << "the policy file was not changed\n";
    }
    return 1;
}

int nothing_to_change(const context& c, std::string_view settings) {
    c.fail() << "nothing to change: give " << settings << '\n';
    return 1;
}

}  // namespace subrelay::relay::admin
