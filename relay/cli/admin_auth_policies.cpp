// Authentication policies (AllowBasicAuthSmtp per policy, assigned to
// accounts or as the organization's default):
// New-/Set-/Remove-/Get-AuthenticationPolicy.
#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr const char* o_name = "name";
constexpr const char* o_allow_basic_auth_smtp = "allowbasicauthsmtp";

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

int get_authenticationpolicy(context& c) {
    using policy::authentication_policy;
    auto p = load_policy(c);
    if (!p) return 1;
    const std::string& default_policy = p->org.default_authentication_policy;
    const property_table<authentication_policy> properties = {
        prop<authentication_policy>("Name", [](const authentication_policy& ap) { return ap.name; }),
        prop<authentication_policy>("AllowBasicAuthSmtp",
                                    [](const authentication_policy& ap) { return ap.allow_basic_auth_smtp; }),
        prop<authentication_policy>(
            "IsDefault", [&](const authentication_policy& ap) { return text::iequals(ap.name, default_policy); }),
    };
    std::vector<const authentication_policy*> selected;
    if (!select_objects(c, p->authentication_policies, &authentication_policy::name, selected)) return 1;
    show(c, properties, selected);
    return 0;
}

}  // namespace subrelay::relay::admin
