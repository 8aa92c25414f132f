// Organization-wide settings: Get-/Set-TransportConfig (SMTP AUTH for the
// tenant) and Get-/Set-OrganizationConfig (default authentication policy,
// security defaults, default limits, the From: header check).
#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr const char* o_default_authentication_policy = "defaultauthenticationpolicy";
constexpr const char* o_security_defaults = "securitydefaults";

using organization = policy::organization;

}  // namespace

int get_transportconfig(context& c) {
    static const property_table<organization> properties = {
        prop<organization>("SmtpClientAuthenticationDisabled",
                           [](const organization& o) { return o.smtp_client_authentication_disabled; }),
    };
    auto p = load_policy(c);
    if (!p) return 1;
    show(c, properties, p->org);
    return 0;
}

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

int get_organizationconfig(context& c) {
    static const property_table<organization> properties = {
        prop<organization>("DefaultAuthenticationPolicy",
                           [](const organization& o) { return unless_empty(o.default_authentication_policy); }),
        prop<organization>("SecurityDefaults", [](const organization& o) { return o.security_defaults; }),
        prop<organization>("MaxMessagesPerMinute", [](const organization& o) { return o.max_messages_per_minute; }),
        prop<organization>("MaxRecipientsPerDay", [](const organization& o) { return o.max_recipients_per_day; }),
        prop<organization>("MaxRecipientsPerMessage",
                           [](const organization& o) { return o.max_recipients_per_message; }),
        prop<organization>("CheckHeaderFrom", [](const organization& o) { return o.check_header_from; }),
    };
    auto p = load_policy(c);
    if (!p) return 1;
    show(c, properties, p->org);
    return 0;
}

int set_organizationconfig(context& c) {
    const auto& o = c.opts;
    if (!o.has(o_default_authentication_policy) && !o.has(o_security_defaults) && !o.has(o_max_messages_per_minute) &&
        !o.has(o_max_recipients_per_day) && !o.has(o_max_recipients_per_message) && !o.has(o_check_header_from)) {
        return nothing_to_change(c,
                                 "-DefaultAuthenticationPolicy, -SecurityDefaults, -MaxMessagesPerMinute, "
                                 "-MaxRecipientsPerDay, -MaxRecipientsPerMessage or -CheckHeaderFrom");
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            if (o.has(o_default_authentication_policy)) {
                const auto name = o.nullable_text(o_default_authentication_policy);
                if (name.empty()) {
                    p.org.default_authentication_policy.clear();
                } else {
                    const auto* ap = find_auth_policy(p, name);
                    if (ap == nullptr) return not_found(name);
                    p.org.default_authentication_policy = ap->name;
                }
            }
            if (o.has(o_security_defaults)) p.org.security_defaults = o.boolean(o_security_defaults);
            if (o.has(o_max_messages_per_minute)) p.org.max_messages_per_minute = o.count(o_max_messages_per_minute);
            if (o.has(o_max_recipients_per_day)) p.org.max_recipients_per_day = o.count(o_max_recipients_per_day);
            if (o.has(o_max_recipients_per_message)) {
                p.org.max_recipients_per_message = o.count(o_max_recipients_per_message);
            }
            if (o.has(o_check_header_from)) p.org.check_header_from = o.boolean(o_check_header_from);
            return "";
        },
        true);
}

}  // namespace subrelay::relay::admin
