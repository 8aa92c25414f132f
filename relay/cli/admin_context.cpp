#include "relay/cli/admin_context.hpp"

#include <chrono>
#include <istream>
#include <ostream>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "auth/password.hpp"
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

}  // namespace

std::string cmdlet_text(const context& c, const std::string& object) {
    std::string out = cmdlet_name(c.verb);
    const bool from_file = c.opts.has("fromfile");
    if (from_file) out += " -Identity " + policy::powershell_value(boost::json::value(object));
    if (c.specs == nullptr) return out;
    for (const auto& spec : *c.specs) {
        const std::string name = spec.name();
        if (name == "config" || name == "json" || name == "fromfile" || !c.opts.has(name)) continue;
        if (from_file && name == o_identity) continue;
        out += " -" + spec.display;
        if (spec.kind == value_kind::boolean || spec.kind == value_kind::tristate) {
            const std::optional<bool> v = c.opts.tristate(name);
            out += !v ? " $null" : *v ? " $true" : " $false";
        } else if (spec.kind == value_kind::list) {
            boost::json::array values;
            for (const auto& v : c.opts.list(name)) values.emplace_back(v);
            out += " " + policy::powershell_value(values);
        } else if (spec.kind != value_kind::flag) {
            out += " " + policy::powershell_value(boost::json::value(c.opts.value(name)));
        }
    }
    return out;
}

std::unique_ptr<policy::audit_log> open_audit_log(const context& c) {
    try {
        if (!std::filesystem::exists(c.cfg.spool.dir)) {
            // Before the relay's first start: the spool is made as the relay makes it, 0700.
            std::filesystem::create_directories(c.cfg.spool.dir);
            std::filesystem::permissions(c.cfg.spool.dir, std::filesystem::perms::owner_all,
                                         std::filesystem::perm_options::replace);
        }
        return std::make_unique<policy::audit_log>(policy::audit_log_path(c.cfg.spool.dir));
    } catch (const std::exception& e) {
        c.fail() << e.what() << '\n';
        return nullptr;
    }
}

std::string record_changes(const context& c, policy::audit_log& audit, std::vector<policy::object_change> changes) {
    std::vector<policy::audit_entry> entries;
    const std::int64_t now = now_seconds();
    const std::string who = policy::unix_caller();
    for (auto& changed : changes) entries.push_back({now, who, cmdlet_text(c, changed.identity), std::move(changed)});
    try {
        audit.append(entries);
    } catch (const std::exception& e) {
        return std::string(e.what()) + "; nothing was changed";
    }
    return {};
}

int apply_edit(const context& c, const policy::policy_change& change, bool create_missing) {
    // The audit log first: a change that cannot be recorded is not made.
    const auto audit = open_audit_log(c);
    if (!audit) return 1;
    std::string refusal;
    // Recorded before the new file is in place: the relay, reading it, finds the record.
    const auto record = [&](const policy::policy_file& before, const policy::policy_file& after) {
        return record_changes(c, *audit, policy::policy_changes(before, after));
    };
    auto result = policy::edit_file(
        c.cfg.policy.file,
        [&](policy::policy_file& p) {
            refusal = change(p);
            return refusal;
        },
        create_missing, record);
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

bool read_password(const context& c, std::string& password, bool& generated) {
    generated = false;
    const bool from_stdin = c.opts.flag(o_password_stdin);
    const bool generate = c.opts.flag(o_generate_password);
    if (from_stdin && generate) {
        c.fail() << "give --password-stdin or --generate-password, not both\n";
        return false;
    }
    if (generate) {
        try {
            password = auth::generate_password();
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

bool hash_password(const context& c, const std::string& password, std::string& out) {
    try {
        out = auth::hash_password(password);
        return true;
    } catch (const std::exception& e) {
        c.fail() << e.what() << '\n';
        return false;
    }
}

bool read_new_password(const context& c, std::string& password, bool& generated, std::string& hash) {
    if (!read_password(c, password, generated)) return false;
    if (password.empty()) {
        c.fail() << "give --password-stdin (read one line) or --generate-password\n";
        return false;
    }
    return hash_password(c, password, hash);
}

}  // namespace subrelay::relay::admin
