#include "relay/console/pages.hpp"

#include <algorithm>

#include "relay/console/console.hpp"
#include "smtp/text/ascii.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::console {

namespace json = boost::json;

namespace {

std::string esc(std::string_view s) { return html_escape(s); }

std::string csrf_field(const session& s) {
    return "<input type=\"hidden\" name=\"csrf\" value=\"" + esc(s.csrf) + "\">";
}

bool can_change(const session& s) { return s.access == role::admin; }

// A submit button; disabled, with a reason, for a reader.
std::string button(const session& s, std::string_view label, std::string_view cls = "primary",
                   std::string_view name = {}, std::string_view value = {}) {
    std::string out = "<button type=\"submit\" class=\"" + std::string(cls) + "\"";
    if (!name.empty()) out += " name=\"" + esc(name) + "\" value=\"" + esc(value) + "\"";
    if (!can_change(s)) out += " disabled title=\"Readers cannot make changes\"";
    return out + ">" + esc(label) + "</button>";
}

std::string joined(const std::vector<std::string>& items, std::string_view sep = ", ") {
    std::string out;
    for (const auto& i : items) {
        if (!out.empty()) out += sep;
        out += i;
    }
    return out;
}

std::string when(std::optional<std::int64_t> t) { return t ? text::utc_date_time(*t) : std::string("—"); }

std::string limit_text(std::uint32_t n) { return n == 0 ? std::string("unlimited") : std::to_string(n); }

std::string source_name(policy::auth_source s) {
    switch (s) {
    case policy::auth_source::security_defaults: return "Security defaults";
    case policy::auth_source::authentication_policy: return "Authentication policy";
    case policy::auth_source::mailbox: return "Mailbox";
    case policy::auth_source::organization: return "Organization";
    }
    return "";
}

std::string text_in(const json::object& o, const char* key) {
    const auto* p = o.if_contains(key);
    return p != nullptr && p->is_string() ? std::string(p->get_string()) : std::string();
}

std::optional<std::int64_t> number_in(const json::object& o, const char* key) {
    const auto* p = o.if_contains(key);
    if (p == nullptr) return std::nullopt;
    if (p->is_int64()) return p->get_int64();
    if (p->is_uint64()) return static_cast<std::int64_t>(p->get_uint64());
    return std::nullopt;
}

std::string flyout_head(const policy::mailbox& m, std::string_view subtitle) {
    return "<div class=\"flyout-head\"><a class=\"close\" href=\"/users\" aria-label=\"Close\">×</a><h2>" +
           esc(m.identity) + "</h2><p class=\"muted\">" + esc(subtitle) + "</p></div>";
}

std::string back_link(const policy::mailbox& m, std::string_view tab) {
    return "<p><a href=\"" + user_path(m.identity) + "?tab=" + std::string(tab) + "\">‹ Back</a></p>";
}

}  // namespace

std::string user_path(std::string_view identity) { return "/users/" + url_encode(identity); }

std::string render_page(const page_frame& f, std::string_view main, std::string_view flyout) {
    std::string out =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>" + esc(f.title) + " - subrelay admin center</title>"
        "<link rel=\"stylesheet\" href=\"/console.css\"><script src=\"/console.js\" defer></script></head><body>"
        "<header class=\"top\"><span class=\"brand\">subrelay admin center</span>";
    if (f.who != nullptr) {
        out += "<form method=\"post\" action=\"/signout\" class=\"who\">" + csrf_field(*f.who) + "<span>" +
               esc(f.who->user) + " (" + std::string(role_name(f.who->access)) +
               ")</span> <button type=\"submit\" class=\"link\">Sign out</button></form>";
    }
    out += "</header><div class=\"body\">";
    if (f.who != nullptr) {
        auto item = [&](std::string_view id, std::string_view href, std::string_view label) {
            return "<li" + std::string(f.nav == id ? " class=\"active\"" : "") + "><a href=\"" + std::string(href) +
                   "\">" + esc(label) + "</a></li>";
        };
        out += "<nav><ul><li class=\"group\">Users</li>" + item("users", "/users", "Active users") +
               "<li class=\"group\">Settings</li>" + item("org", "/org", "Org settings") +
               "<li class=\"group\">Exchange</li>" + item("mailflow", "/mailflow", "Mail flow") +
               item("audit", "/audit", "Audit log") + "</ul></nav>";
    }
    out += "<main>";
    if (!f.notice.empty()) out += "<div class=\"notice\" role=\"status\">" + esc(f.notice) + "</div>";
    if (!f.error.empty()) {
        out += "<div class=\"error\" role=\"alert\">";
        std::string_view rest = f.error;
        while (!rest.empty()) {
            const auto nl = rest.find('\n');
            out += "<p>" + esc(rest.substr(0, nl)) + "</p>";
            rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        }
        out += "</div>";
    }
    if (f.who != nullptr && f.who->access == role::reader)
        out += "<p class=\"readonly\">You are signed in as a reader: you can see everything and change nothing.</p>";
    out += main;
    out += "</main>";
    if (!flyout.empty()) out += "<aside class=\"flyout\" aria-label=\"Details\">" + std::string(flyout) + "</aside>";
    out += "</div></body></html>\n";
    return out;
}

std::string sign_in_page(std::string_view csrf, std::string_view user, std::string_view error) {
    page_frame f{"Sign in", "", nullptr, "", std::string(error)};
    const std::string main =
        "<section class=\"signin\"><h1>Sign in</h1>"
        "<form method=\"post\" action=\"/signin\"><input type=\"hidden\" name=\"csrf\" value=\"" + esc(csrf) + "\">"
        "<label>User name <input name=\"user\" autocomplete=\"username\" required value=\"" + esc(user) + "\"></label>"
        "<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>"
        "<button type=\"submit\" class=\"primary\" id=\"signin\">Sign in</button></form></section>";
    return render_page(f, main);
}

std::string users_main(const session& s, const policy::engine& engine, const conf::config& cfg,
                       const std::function<account_activity(std::string_view)>& activity, std::string_view search) {
    std::string rows;
    std::size_t shown = 0;
    const std::string needle = text::ascii_lower(search);
    for (const auto& m : engine.file().mailboxes) {
        if (!needle.empty() && text::ascii_lower(m.identity).find(needle) == std::string::npos) continue;
        ++shown;
        const auto d = engine.may_authenticate(m);
        const auto a = activity(m.identity);
        std::string upstream = engine.upstream_mailbox_for(m.identity);
        if (upstream.empty()) upstream = cfg.upstream.mailbox;
        const auto senders = m.allowed_senders.empty() ? std::vector<std::string>{m.identity} : m.allowed_senders;
        rows += "<tr><td><a class=\"name\" href=\"" + user_path(m.identity) + "\">" + esc(m.identity) + "</a></td>" +
                "<td class=\"state " + (d.allowed ? "on" : "off") + "\">" + (d.allowed ? "Enabled" : "Disabled") +
                "</td><td>" + source_name(d.source) + "</td><td>" + esc(joined(senders)) + "</td><td>" +
                esc(upstream.empty() ? "—" : upstream) + "</td><td>" + esc(when(a.last_sign_in)) + "</td><td>" +
                std::to_string(a.messages_today) + "</td></tr>";
    }
    std::string out = "<h1>Active users</h1><div class=\"commands\">";
    out += can_change(s) ? "<a class=\"command\" href=\"/users/new\">Add a user</a>"
                         : "<span class=\"command disabled\">Add a user</span>";
    out += "<a class=\"command\" href=\"/users\">Refresh</a>"
           "<form method=\"get\" action=\"/users\" class=\"search\" role=\"search\"><input name=\"search\" "
           "placeholder=\"Search active users list\" value=\"" + esc(search) + "\"><button type=\"submit\">Search</button></form></div>";
    out += "<table class=\"list\" id=\"users\"><thead><tr><th>Display name</th><th>Authenticated SMTP</th><th>Source</th>"
           "<th>Allowed senders</th><th>Upstream mailbox</th><th>Last sign-in</th><th>Messages today</th></tr></thead><tbody>" +
           rows + "</tbody></table>";
    if (shown == 0) out += "<p class=\"muted\">" + std::string(needle.empty() ? "No accounts yet." : "No account matches.") + "</p>";
    return out;
}

std::string account_flyout(const session& s, const policy::engine& engine, const conf::config& cfg,
                           const policy::mailbox& m, std::string_view tab) {
    const auto d = engine.may_authenticate(m);
    std::string out = flyout_head(m, d.allowed ? "Authenticated SMTP: Enabled" : "Authenticated SMTP: Disabled");
    const bool mail = tab == "mail";
    out += "<div class=\"tabs\" role=\"tablist\"><a role=\"tab\" href=\"" + user_path(m.identity) + "?tab=account\"" +
           (mail ? "" : " class=\"active\" aria-selected=\"true\"") + ">Account</a><a role=\"tab\" href=\"" +
           user_path(m.identity) + "?tab=mail\"" + (mail ? " class=\"active\" aria-selected=\"true\"" : "") + ">Mail</a></div>";
    if (mail) {
        out += "<section><h3>Email apps</h3><p>Authenticated SMTP: <strong>" +
               std::string(d.allowed ? "Enabled" : "Disabled") + "</strong></p><p class=\"muted\">" +
               esc(plain_explanation(engine, m)) + "</p><p><a id=\"manage-email-apps\" href=\"" + user_path(m.identity) +
               "/email-apps\">Manage email apps</a></p></section>";
        return out;
    }
    std::string upstream = engine.upstream_mailbox_for(m.identity);
    if (upstream.empty()) upstream = cfg.upstream.mailbox;
    const auto limits = engine.limits_for(m);
    const auto senders = m.allowed_senders.empty() ? std::vector<std::string>{m.identity} : m.allowed_senders;
    out += "<div class=\"commands\">";
    if (can_change(s)) {
        out += "<a class=\"command\" href=\"" + user_path(m.identity) + "/password\">Reset password</a>"
               "<a class=\"command\" href=\"" + user_path(m.identity) + "/settings\">Edit settings</a>"
               "<a class=\"command danger\" href=\"" + user_path(m.identity) + "/delete\">Delete user</a>";
    }
    out += "</div><dl class=\"props\">";
    auto prop = [&](std::string_view k, std::string_view v) { out += "<dt>" + esc(k) + "</dt><dd>" + esc(v) + "</dd>"; };
    prop("Username", m.identity);
    prop("Password", m.password_hash.empty() ? "none (bindings only)" : "set");
    prop("Allowed senders", joined(senders));
    prop("Allowed recipient domains", m.allowed_recipient_domains.empty() ? "any" : joined(m.allowed_recipient_domains));
    prop("Upstream mailbox", upstream.empty() ? "—" : upstream);
    prop("Authentication policy", m.authentication_policy.empty() ? "organization default" : m.authentication_policy);
    prop("Messages per minute", limit_text(limits.max_messages_per_minute));
    prop("Recipients per day", limit_text(limits.max_recipients_per_day));
    prop("Recipients per message", limit_text(limits.max_recipients_per_message));
    out += "</dl><h3>Network bindings</h3><p class=\"muted\">Devices on these networks send as this account "
           "without AUTH.</p><table class=\"list\" id=\"bindings\"><tbody>";
    for (const auto& b : engine.file().bindings) {
        if (!text::iequals(b.identity, m.identity)) continue;
        out += "<tr><td>" + esc(b.network_text) + "</td><td>" +
               esc(b.listeners.empty() ? std::string("every listener") : joined(b.listeners)) +
               "</td><td><form method=\"post\" action=\"" + user_path(m.identity) + "/bindings\" class=\"inline\">" +
               csrf_field(s) + "<input type=\"hidden\" name=\"network\" value=\"" + esc(b.network_text) + "\">" +
               button(s, "Remove", "small danger", "action", "remove") + "</form></td></tr>";
    }
    out += "</tbody></table><form method=\"post\" action=\"" + user_path(m.identity) +
           "/bindings\" class=\"inline\" id=\"add-binding\">" + csrf_field(s) +
           "<input name=\"network\" placeholder=\"10.1.20.0/24\"><input name=\"listeners\" "
           "placeholder=\"Listeners (empty: every one)\">" + button(s, "Add binding", "small", "action", "new") + "</form>";
    return out;
}

std::string email_apps_flyout(const session& s, const policy::engine& engine, const policy::mailbox& m) {
    const bool org_enabled = !engine.file().org.smtp_client_authentication_disabled;
    const auto& setting = m.smtp_client_authentication_disabled;
    const bool follows = !setting.has_value();
    // The checkbox shows the mailbox's own setting; following the
    // organization, it shows the organization's and is greyed out.
    const bool checked = follows ? org_enabled : !*setting;
    std::string out = flyout_head(m, "Manage email apps");
    out += back_link(m, "mail");
    out += "<form method=\"post\" action=\"" + user_path(m.identity) + "/email-apps\" id=\"email-apps\">" + csrf_field(s) +
           "<p>Choose the apps where " + esc(m.identity) + " can access email through this relay.</p>"
           "<label class=\"check\"><input type=\"checkbox\" id=\"smtp-auth\" name=\"smtp_auth\" value=\"on\"" +
           (checked ? " checked" : "") + (follows ? " disabled" : "") + "> Authenticated SMTP</label>"
           "<label class=\"check\"><input type=\"checkbox\" id=\"follow-org\" name=\"follow_org\" value=\"on\" data-org=\"" +
           (org_enabled ? "on" : "off") + "\"" + (follows ? " checked" : "") +
           "> Use the organization setting (the organization has Authenticated SMTP " +
           (org_enabled ? "enabled" : "disabled") + ")</label>"
           "<p class=\"explain\" id=\"explanation\">" + esc(plain_explanation(engine, m)) + "</p>"
           "<p class=\"muted\">Checked: SmtpClientAuthenticationDisabled $false. Unchecked: $true. "
           "The organization setting: $null.</p>" +
           button(s, "Save changes") + "</form>";
    return out;
}

std::string settings_flyout(const session& s, const policy::engine& engine, const policy::mailbox& m) {
    std::string out = flyout_head(m, "Edit settings");
    out += back_link(m, "account");
    auto number = [](const std::optional<std::uint32_t>& v) { return v ? std::to_string(*v) : std::string(); };
    std::string policies = "<option value=\"\">The organization default</option>";
    for (const auto& p : engine.file().authentication_policies)
        policies += "<option" + std::string(text::iequals(p.name, m.authentication_policy) ? " selected" : "") + ">" +
                    esc(p.name) + "</option>";
    out += "<form method=\"post\" action=\"" + user_path(m.identity) + "/settings\" id=\"settings\">" + csrf_field(s) +
           "<label>Allowed senders (one a line: an address or *@domain)<textarea name=\"allowed_senders\" rows=\"3\">" +
           esc(joined(m.allowed_senders, "\n")) + "</textarea></label>"
           "<label>Allowed recipient domains (one a line; empty: any)<textarea name=\"allowed_recipient_domains\" rows=\"3\">" +
           esc(joined(m.allowed_recipient_domains, "\n")) + "</textarea></label>"
           "<label>Upstream mailbox (empty: the default)<input name=\"upstream_mailbox\" value=\"" +
           esc(m.upstream_mailbox) + "\"></label>"
           "<label>Authentication policy<select name=\"authentication_policy\">" + policies + "</select></label>"
           "<fieldset><legend>Limits (empty: the organization's; 0: none)</legend>"
           "<label>Messages per minute<input name=\"max_messages_per_minute\" inputmode=\"numeric\" value=\"" +
           number(m.max_messages_per_minute) + "\"></label>"
           "<label>Recipients per day<input name=\"max_recipients_per_day\" inputmode=\"numeric\" value=\"" +
           number(m.max_recipients_per_day) + "\"></label>"
           "<label>Recipients per message<input name=\"max_recipients_per_message\" inputmode=\"numeric\" value=\"" +
           number(m.max_recipients_per_message) + "\"></label></fieldset>" +
           button(s, "Save changes") + "</form>";
    return out;
}

std::string password_flyout(const session& s, const policy::mailbox& m, std::string_view new_password) {
    std::string out = flyout_head(m, "Reset password");
    out += back_link(m, "account");
    if (!new_password.empty()) {
        out += "<p>The new password, shown only this once:</p><p class=\"secret\" id=\"new-password\">" +
               esc(new_password) + "</p><p class=\"muted\">Enter it in the device now; only its hash is kept.</p>";
        return out;
    }
    out += "<form method=\"post\" action=\"" + user_path(m.identity) + "/password\" id=\"password\">" + csrf_field(s) +
           "<label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"generate\" checked> Automatically create a password</label>"
           "<label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"typed\"> Let me create the password</label>"
           "<label>Password<input type=\"password\" name=\"password\" autocomplete=\"new-password\"></label>"
           "<label>Confirm password<input type=\"password\" name=\"password2\" autocomplete=\"new-password\"></label>" +
           button(s, "Reset password") + "</form>";
    return out;
}

std::string delete_flyout(const session& s, const policy::mailbox& m) {
    std::string out = flyout_head(m, "Delete user");
    out += back_link(m, "account");
    out += "<form method=\"post\" action=\"" + user_path(m.identity) + "/delete\" id=\"delete\">" + csrf_field(s) +
           "<p>Delete " + esc(m.identity) + "? Devices that sign in as it will be refused. Messages already "
           "queued are still delivered.</p>" +
           button(s, "Delete user", "danger") + "</form>";
    return out;
}

std::string add_user_main(const session& s, const form& previous) {
    const bool typed = previous.get("mode") == "typed";
    const bool follow = previous.has("follow_org");
    const bool smtp = !previous.has("csrf") || previous.has("smtp_auth");  // checked on a new form
    return "<h1>Add a user</h1><form method=\"post\" action=\"/users/new\" id=\"add-user\" class=\"wide\">" + csrf_field(s) +
           "<label>Username (an email address)<input name=\"identity\" required value=\"" + esc(previous.get("identity")) +
           "\"></label>"
           "<label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"generate\"" + (typed ? "" : " checked") +
           "> Automatically create a password</label>"
           "<label class=\"check\"><input type=\"radio\" name=\"mode\" value=\"typed\"" + (typed ? " checked" : "") +
           "> Let me create the password</label>"
           "<label>Password<input type=\"password\" name=\"password\" autocomplete=\"new-password\"></label>"
           "<label>Confirm password<input type=\"password\" name=\"password2\" autocomplete=\"new-password\"></label>"
           "<label>Allowed senders (one a line; empty: the username)<textarea name=\"allowed_senders\" rows=\"2\">" +
           esc(previous.get("allowed_senders")) + "</textarea></label>"
           "<label>Upstream mailbox (empty: the default)<input name=\"upstream_mailbox\" value=\"" +
           esc(previous.get("upstream_mailbox")) + "\"></label>"
           "<label class=\"check\"><input type=\"checkbox\" id=\"smtp-auth\" name=\"smtp_auth\" value=\"on\"" +
           (smtp ? " checked" : "") + "> Authenticated SMTP</label>"
           "<label class=\"check\"><input type=\"checkbox\" id=\"follow-org\" name=\"follow_org\" value=\"on\"" +
           (follow ? " checked" : "") + "> Use the organization setting</label>" +
           button(s, "Add user") + " <a href=\"/users\">Cancel</a></form>";
}

std::string user_added_main(std::string_view identity, std::string_view password) {
    std::string out = "<h1>" + esc(identity) + " added</h1>";
    if (!password.empty())
        out += "<p>The password, shown only this once:</p><p class=\"secret\" id=\"new-password\">" + esc(password) +
               "</p><p class=\"muted\">Enter it in the device now; only its hash is kept.</p>";
    out += "<p><a href=\"" + user_path(identity) + "\">Open " + esc(identity) + "</a> · <a href=\"/users\">Active users</a></p>";
    return out;
}

std::string org_main(const session& s, const policy::engine& engine) {
    const auto& org = engine.file().org;
    std::string out = "<h1>Org settings</h1>";
    out += "<section><h2>Authenticated SMTP</h2><form method=\"post\" action=\"/org/smtp-auth\" id=\"org-smtp\">" +
           csrf_field(s) +
           "<label class=\"check\"><input type=\"checkbox\" name=\"smtp_auth\" value=\"on\" id=\"org-smtp-auth\"" +
           (org.smtp_client_authentication_disabled ? "" : " checked") +
           "> Turn on Authenticated SMTP for the organization</label><p class=\"muted\">Set-TransportConfig "
           "-SmtpClientAuthenticationDisabled. Accounts set to use the organization setting follow it; the others "
           "keep their own.</p>" + button(s, "Save") + "</form></section>";
    out += "<section><h2>Security defaults</h2><form method=\"post\" action=\"/org/security-defaults\" id=\"org-security\">" +
           csrf_field(s) + "<label class=\"check\"><input type=\"checkbox\" name=\"security_defaults\" value=\"on\"" +
           (org.security_defaults ? " checked" : "") +
           "> Enable security defaults</label><p class=\"muted\">With security defaults on, SMTP AUTH is refused for "
           "every account, whatever its own setting.</p>" + button(s, "Save") + "</form></section>";
    std::string options = "<option value=\"\">None</option>";
    std::string rows;
    for (const auto& p : engine.file().authentication_policies) {
        options += "<option" + std::string(text::iequals(p.name, org.default_authentication_policy) ? " selected" : "") +
                   ">" + esc(p.name) + "</option>";
        rows += "<tr><td>" + esc(p.name) + "</td><td>" + (p.allow_basic_auth_smtp ? "True" : "False") +
                "</td><td><form method=\"post\" action=\"/org/policies\" class=\"inline\">" + csrf_field(s) +
                "<input type=\"hidden\" name=\"name\" value=\"" + esc(p.name) + "\">" +
                button(s, p.allow_basic_auth_smtp ? "Block SMTP" : "Allow SMTP", "small", "action",
                       p.allow_basic_auth_smtp ? "block" : "allow") +
                button(s, "Remove", "small danger", "action", "remove") + "</form></td></tr>";
    }
    out += "<section><h2>Authentication policies</h2><table class=\"list\"><thead><tr><th>Name</th>"
           "<th>AllowBasicAuthSmtp</th><th></th></tr></thead><tbody>" + rows + "</tbody></table>"
           "<form method=\"post\" action=\"/org/policies\" class=\"inline\">" + csrf_field(s) +
           "<input name=\"name\" placeholder=\"New policy name\"><label class=\"check\"><input type=\"checkbox\" "
           "name=\"allow_smtp\" value=\"on\"> AllowBasicAuthSmtp</label>" + button(s, "Add policy", "small", "action", "new") +
           "</form><form method=\"post\" action=\"/org/default-policy\" id=\"org-default-policy\">" + csrf_field(s) +
           "<label>Default authentication policy<select name=\"policy\">" + options + "</select></label>" +
           button(s, "Save") + "</form></section>";
    out += "<section><h2>Limits</h2><form method=\"post\" action=\"/org/limits\" id=\"org-limits\">" + csrf_field(s) +
           "<label>Messages per minute per account (0: none)<input name=\"max_messages_per_minute\" inputmode=\"numeric\" value=\"" +
           std::to_string(org.max_messages_per_minute) + "\"></label>"
           "<label>Recipients per day per account (0: none)<input name=\"max_recipients_per_day\" inputmode=\"numeric\" value=\"" +
           std::to_string(org.max_recipients_per_day) + "\"></label>"
           "<label>Recipients per message (0: none)<input name=\"max_recipients_per_message\" inputmode=\"numeric\" value=\"" +
           std::to_string(org.max_recipients_per_message) + "\"></label>"
           "<label class=\"check\"><input type=\"checkbox\" name=\"check_header_from\" value=\"on\"" +
           (org.check_header_from ? " checked" : "") + "> Check the From: and Sender: of each message against the allowed senders</label>" +
           button(s, "Save") + "</form></section>";
    return out;
}

std::string mail_flow_main(const session& s, const json::object& status, const json::object& tokens) {
    std::string out = "<h1>Mail flow</h1><section><h2>Queue</h2>";
    std::string rows;
    if (const auto* msgs = status.if_contains("messages"); msgs != nullptr && msgs->is_object()) {
        for (const auto& [id, v] : msgs->get_object()) {
            if (!v.is_object()) continue;
            const auto& m = v.get_object();
            const std::string key(id);
            rows += "<tr><td><label class=\"check\"><input type=\"checkbox\" name=\"id\" value=\"" + esc(key) + "\"> " +
                    "<a class=\"name\" href=\"/mailflow/" + url_encode(key) + "\">" + esc(key) + "</a></label></td><td>" + esc(text_in(m, "status")) + "</td><td>" +
                    esc(text_in(m, "upstream_mailbox")) + "</td><td>" + esc(when(number_in(m, "received_at"))) +
                    "</td><td>" + esc(when(number_in(m, "due"))) + "</td></tr>";
        }
    }
    out += "<form method=\"post\" action=\"/mailflow/queue\" id=\"queue\">" + csrf_field(s) +
           "<table class=\"list\"><thead><tr><th>Message</th><th>Status</th><th>Upstream mailbox</th><th>Received</th>"
           "<th>Next attempt</th></tr></thead><tbody>" + rows + "</tbody></table>";
    if (rows.empty()) out += "<p class=\"muted\">The queue is empty.</p>";
    out += "<div class=\"commands\">" + button(s, "Retry", "small", "action", "retry") +
           button(s, "Hold", "small", "action", "hold") + button(s, "Release", "small", "action", "release") +
           button(s, "Delete", "small danger", "action", "delete") + "</div></form></section>";
    std::string lanes;
    if (const auto* l = status.if_contains("lanes"); l != nullptr && l->is_array()) {
        for (const auto& v : l->get_array()) {
            if (!v.is_object()) continue;
            const auto& o = v.get_object();
            const auto* avail = o.if_contains("available");
            const bool up = avail != nullptr && avail->is_bool() && avail->get_bool();
            lanes += "<tr><td>" + esc(text_in(o, "upstream_mailbox")) + "</td><td>" + (up ? "Available" : "Unavailable") +
                     "</td><td>" + std::to_string(number_in(o, "connections").value_or(0)) + "</td><td>" +
                     esc(text_in(o, "reason")) + (text_in(o, "hint").empty() ? "" : "<br><span class=\"muted\">" +
                                                                                        esc(text_in(o, "hint")) + "</span>") +
                     "</td></tr>";
        }
    }
    out += "<section><h2>Upstream mailboxes</h2><table class=\"list\"><thead><tr><th>Mailbox</th><th>State</th>"
           "<th>Connections</th><th>Reason</th></tr></thead><tbody>" + lanes + "</tbody></table></section>";
    std::string sources;
    const auto* st = tokens.if_contains("status");
    const auto* list = st != nullptr && st->is_object() ? st->get_object().if_contains("sources") : nullptr;
    if (list != nullptr && list->is_array()) {
        for (const auto& v : list->get_array()) {
            if (!v.is_object()) continue;
            const auto& o = v.get_object();
            const auto expires = number_in(o, "expires_at");
            sources += "<tr><td>" + esc(text_in(o, "profile")) + "</td><td>" + esc(text_in(o, "mailbox")) + "</td><td>" +
                       esc(text_in(o, "grant")) + "</td><td>" + esc(expires && *expires > 0 ? when(expires) : "—") +
                       "</td><td>" + esc(text_in(o, "last_error")) +
                       (text_in(o, "hint").empty() ? "" : "<br><span class=\"muted\">" + esc(text_in(o, "hint")) + "</span>") +
                       "</td></tr>";
        }
    }
    out += "<section><h2>Tokens</h2><table class=\"list\" id=\"tokens\"><thead><tr><th>Profile</th><th>Mailbox</th>"
           "<th>Grant</th><th>Expires</th><th>Last error</th></tr></thead><tbody>" + sources + "</tbody></table>";
    if (sources.empty()) out += "<p class=\"muted\">No OAuth token source (the upstream needs none).</p>";
    out += "</section>";
    return out;
}

std::string message_flyout(const session& s, const queued_message_view& m) {
    std::string out = "<div class=\"flyout-head\"><a class=\"close\" href=\"/mailflow\" aria-label=\"Close\">×</a><h2>" +
                      esc(m.id) + "</h2><p class=\"muted\">" + (m.held ? "Held" : "Queued") + "</p></div>";
    out += "<dl class=\"props\" id=\"message\">";
    auto prop = [&](std::string_view k, std::string_view v) { out += "<dt>" + esc(k) + "</dt><dd>" + esc(v) + "</dd>"; };
    auto list = [&](std::string_view k, const std::vector<std::string>& v) {
        out += "<dt>" + esc(k) + "</dt><dd>" + (v.empty() ? std::string("none") : esc(joined(v, "\n"))) + "</dd>";
    };
    prop("Received", text::utc_date_time(m.received_at));
    prop("Sender", m.sender.empty() ? "<>" : m.sender);
    prop("Account", m.identity);
    prop("Upstream mailbox", m.upstream_mailbox);
    prop("Client", m.client);
    prop("Size", std::to_string(m.size) + " bytes");
    list("Recipients left", m.left);
    list("Delivered", m.delivered);
    std::vector<std::string> failed;
    for (const auto& [address, reply] : m.failed) failed.push_back(address + ": " + reply);
    list("Failed", failed);
    prop("Attempts", std::to_string(m.attempts));
    prop("Next attempt", m.held ? "held" : m.next_attempt == 0 ? "as soon as possible" : text::utc_date_time(m.next_attempt));
    if (!m.last_reply.empty()) prop("Last reply", m.last_reply);
    if (!m.hint.empty()) prop("Hint", m.hint);
    list("History", m.history);
    out += "</dl><h3>Header</h3><pre class=\"header\">" + esc(m.header) + "</pre>";
    out += "<form method=\"post\" action=\"/mailflow/queue\" class=\"commands\">" + csrf_field(s) +
           "<input type=\"hidden\" name=\"id\" value=\"" + esc(m.id) + "\">" + button(s, "Retry", "small", "action", "retry") +
           button(s, m.held ? "Release" : "Hold", "small", "action", m.held ? "release" : "hold") +
           button(s, "Delete", "small danger", "action", "delete") + "</form>";
    return out;
}

std::string audit_main(const std::vector<policy::audit_entry>& entries, std::string_view identity,
                       std::string_view since_text, std::int64_t since) {
    std::string out = "<h1>Audit log</h1><form method=\"get\" action=\"/audit\" class=\"search\" role=\"search\">"
                      "<input name=\"identity\" placeholder=\"Object\" value=\"" + esc(identity) + "\">"
                      "<input name=\"since\" placeholder=\"Since (2026-12-05)\" value=\"" + esc(since_text) + "\">"
                      "<button type=\"submit\">Filter</button></form>";
    std::string rows;
    const std::string needle = text::ascii_lower(identity);
    std::size_t shown = 0;
    for (auto it = entries.rbegin(); it != entries.rend() && shown < 1000; ++it) {
        if (it->time < since) continue;
        if (!needle.empty() && text::ascii_lower(it->change.identity).find(needle) == std::string::npos) continue;
        ++shown;
        rows += "<tr><td>" + esc(text::utc_date_time(it->time)) + "</td><td>" + esc(it->who) + "</td><td><code>" +
                esc(it->what) + "</code></td><td>" + esc(it->change.identity) + "</td></tr>";
    }
    out += "<table class=\"list\" id=\"audit\"><thead><tr><th>Date (UTC)</th><th>Caller</th><th>Command</th>"
           "<th>Object</th></tr></thead><tbody>" + rows + "</tbody></table>";
    if (shown == 0) out += "<p class=\"muted\">No change recorded" + std::string(needle.empty() && since == 0 ? "" : " matches") + ".</p>";
    return out;
}

std::string message_main(std::string_view heading, std::string_view text) {
    return "<h1>" + esc(heading) + "</h1><p>" + esc(text) + "</p><p><a href=\"/users\">Active users</a></p>";
}

std::string_view stylesheet() {
    return R"CSS(*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "Segoe UI",system-ui,sans-serif;color:#242424;background:#faf9f8}
header.top{display:flex;justify-content:space-between;align-items:center;height:48px;padding:0 16px;background:#0f6cbd;color:#fff}
header.top .brand{font-weight:600}
header.top .who{display:flex;gap:8px;align-items:center}
header.top button.link{background:none;border:0;color:#fff;text-decoration:underline;cursor:pointer;font:inherit}
.body{display:flex;min-height:calc(100vh - 48px)}
nav{width:220px;background:#f0f0f0;padding:8px 0}
nav ul{list-style:none;margin:0;padding:0}
nav li a{display:block;padding:6px 20px;color:#242424;text-decoration:none}
nav li.group{padding:10px 12px 2px;font-size:12px;color:#616161;text-transform:uppercase}
nav li.active a{background:#fff;border-left:3px solid #0f6cbd;font-weight:600}
main{flex:1;padding:20px 32px;min-width:0}
h1{font-size:24px;font-weight:600;margin:0 0 16px}
h2{font-size:18px;font-weight:600}
.commands{display:flex;gap:12px;align-items:center;margin:8px 0 12px;flex-wrap:wrap}
.command{color:#0f6cbd;text-decoration:none}
.command.disabled{color:#a0a0a0}
.command.danger,button.danger{color:#c50f1f}
form.search{margin-left:auto;display:flex;gap:4px}
table.list{border-collapse:collapse;width:100%;background:#fff}
table.list th,table.list td{text-align:left;padding:8px 10px;border-bottom:1px solid #e0e0e0;vertical-align:top}
table.list th{font-weight:600;color:#424242}
td.state.on{color:#0e700e}td.state.off{color:#c50f1f}
a.name{color:#0f6cbd;text-decoration:none;font-weight:600}
aside.flyout{width:480px;background:#fff;border-left:1px solid #d1d1d1;box-shadow:-4px 0 16px rgba(0,0,0,.12);padding:16px 24px}
.flyout-head{position:relative}.flyout-head h2{margin:0 0 2px}
.close{position:absolute;right:0;top:0;font-size:22px;text-decoration:none;color:#424242}
.tabs{display:flex;gap:20px;border-bottom:1px solid #e0e0e0;margin:12px 0}
.tabs a{padding:6px 0;color:#424242;text-decoration:none}
.tabs a.active{border-bottom:2px solid #0f6cbd;font-weight:600}
dl.props dt{font-weight:600;margin-top:10px}dl.props dd{margin:0}
label{display:block;margin:10px 0}
label.check{display:flex;gap:8px;align-items:center}
input:not([type=checkbox]):not([type=radio]),select,textarea{display:block;width:100%;max-width:420px;padding:5px 8px;border:1px solid #8a8a8a;border-radius:4px;font:inherit}
form.search input{display:inline-block;width:220px}
form.inline{display:inline-flex;gap:6px;align-items:center;flex-wrap:wrap}
form.inline input{width:180px}
button{padding:5px 14px;border-radius:4px;border:1px solid #8a8a8a;background:#fff;font:inherit;cursor:pointer}
button.primary{background:#0f6cbd;border-color:#0f6cbd;color:#fff}
button:disabled{opacity:.5;cursor:not-allowed}
button.small{padding:2px 10px}
.notice{background:#f1faf1;border:1px solid #9fd89f;padding:8px 12px;margin-bottom:12px}
.error{background:#fdf3f4;border:1px solid #eeacb2;padding:8px 12px;margin-bottom:12px}
.error p{margin:2px 0}
.readonly{background:#fff9f5;border:1px solid #fdcfb4;padding:6px 12px}
.muted{color:#616161}
.explain{background:#f5f5f5;padding:8px 12px;border-radius:4px}
.secret{font:18px monospace;background:#f5f5f5;padding:8px 12px;display:inline-block}
section.signin{max-width:360px;margin:40px auto;background:#fff;padding:24px 32px;box-shadow:0 2px 8px rgba(0,0,0,.15)}
code{font-size:12px}
pre.header{background:#f5f5f5;padding:8px;font-size:12px;white-space:pre-wrap;word-break:break-all}
dl.props dd{white-space:pre-line}
)CSS";
}

std::string_view script() {
    // The Manage email apps flyout: following the organization greys the
    // Authenticated SMTP box out and shows the organization's value in it.
    return R"JS(document.addEventListener('DOMContentLoaded', function () {
  var follow = document.getElementById('follow-org');
  var box = document.getElementById('smtp-auth');
  if (!follow || !box) return;
  var own = box.checked;
  function update() {
    if (follow.checked) {
      if (!box.disabled) own = box.checked;
      if (follow.dataset.org) box.checked = follow.dataset.org === 'on';
      box.disabled = true;
    } else {
      box.disabled = false;
      box.checked = own;
    }
  }
  follow.addEventListener('change', update);
});
)JS";
}

}  // namespace subrelay::console
