// search-adminauditlog: the audit trail of policy changes (policy/audit.hpp),
// like Exchange's Search-AdminAuditLog: who changed what, when, and the
// object's properties before and after.
#include <ctime>
#include <ostream>

#include <boost/json.hpp>

#include "policy/audit.hpp"
#include "relay/cli/admin_context.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::relay::admin {

namespace json = boost::json;

namespace {

// "Mailbox" and "Set-CASMailbox -Identity x ..." split: the cmdlet's name and its parameters.
std::pair<std::string, std::string> split_command(const std::string& what) {
    const auto space = what.find(' ');
    if (space == std::string::npos) return {what, ""};
    return {what.substr(0, space), what.substr(space + 1)};
}

// "SmtpClientAuthenticationDisabled: null -> false" per property that differs.
std::string modified_properties(const policy::object_change& c) {
    if (c.before.is_null()) return "(created)";
    if (c.after.is_null()) return "(removed)";
    if (!c.before.is_object() || !c.after.is_object()) return "";
    std::string out;
    for (const auto& [name, now] : c.after.get_object()) {
        const auto* then = c.before.get_object().if_contains(name);
        if (then != nullptr && *then == now) continue;
        if (!out.empty()) out += "; ";
        out += std::string(name) + ": " + (then != nullptr ? json::serialize(*then) : std::string("null")) + " -> " +
               json::serialize(now);
    }
    return out;
}

}  // namespace

int search_adminauditlog(context& c) {
    std::int64_t since = 0;
    if (c.opts.has("since") && !policy::parse_audit_since(c.opts.value("since"), since))
        return c.usage_error("--since takes a UTC date or time: 2026-12-05 or 2026-12-05T10:30:00Z");
    std::vector<policy::audit_entry> entries;
    try {
        entries = policy::read_audit_log(policy::audit_log_path(c.cfg.spool.dir));
    } catch (const std::exception& e) {
        c.fail() << e.what() << '\n';
        return 1;
    }
    const std::string identity = c.opts.value(o_identity);
    std::vector<const policy::audit_entry*> found;
    for (const auto& e : entries) {
        if (e.time < since) continue;
        if (!identity.empty() && !text::iequals(e.change.identity, identity)) continue;
        found.push_back(&e);
    }
    if (c.opts.flag(o_json)) {
        json::array a;
        for (const auto* e : found) a.push_back(json::parse(policy::to_json_line(*e)));
        c.out << json::serialize(a) << '\n';
        return 0;
    }
    for (std::size_t i = 0; i < found.size(); ++i) {
        const auto& e = *found[i];
        const auto [cmdlet, parameters] = split_command(e.what);
        if (i > 0) c.out << '\n';
        format_list(c.out, {{"RunDate", text::iso8601_utc(e.time)},
                            {"Caller", e.who},
                            {"CmdletName", cmdlet},
                            {"CmdletParameters", parameters},
                            {"ObjectModified", e.change.identity},
                            {"ObjectKind", e.change.kind},
                            {"ModifiedProperties", modified_properties(e.change)}});
    }
    return 0;
}

}  // namespace subrelay::relay::admin
