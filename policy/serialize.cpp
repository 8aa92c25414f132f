// The canonical TOML text of a policy: what CLI edits write. Keys are
// written only when they differ from their default (a mailbox value that
// is unset stays unset), in a fixed order, so that an edit changes only
// the lines it is about.
#include <string>

#include "conf/toml_reader/toml_reader.hpp"
#include "policy/policy.hpp"

namespace subrelay::policy {

namespace {

using toml_reader::toml_string;

std::string toml_array(const std::vector<std::string>& values) {
    std::string out = "[";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ", ";
        out += toml_string(values[i]);
    }
    out += ']';
    return out;
}

const char* toml_bool(bool b) { return b ? "true" : "false"; }

void key(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    out += " = ";
    out += value;
    out += '\n';
}

void string_key(std::string& out, std::string_view name, std::string_view value) { key(out, name, toml_string(value)); }

void number_key(std::string& out, std::string_view name, std::uint32_t value) { key(out, name, std::to_string(value)); }

}  // namespace

std::string to_toml(const policy_file& p) {
    std::string out =
        "# subrelay policy. Maintained by `subrelay` CLI edits; hand edits are fine too\n"
        "# (a CLI edit rewrites the file in this canonical form, without comments).\n";

    const organization defaults;
    const auto& org = p.org;
    out += "\n[organization]\n";
    // The central switch is always written, even at its default.
    key(out, "smtp_client_authentication_disabled", toml_bool(org.smtp_client_authentication_disabled));
    if (org.security_defaults != defaults.security_defaults) key(out, "security_defaults", toml_bool(org.security_defaults));
    if (!org.default_authentication_policy.empty()) {
        string_key(out, "default_authentication_policy", org.default_authentication_policy);
    }
    if (org.max_messages_per_minute != defaults.max_messages_per_minute) {
        number_key(out, "max_messages_per_minute", org.max_messages_per_minute);
    }
    if (org.max_recipients_per_day != defaults.max_recipients_per_day) {
        number_key(out, "max_recipients_per_day", org.max_recipients_per_day);
    }
    if (org.max_recipients_per_message != defaults.max_recipients_per_message) {
        number_key(out, "max_recipients_per_message", org.max_recipients_per_message);
    }
    if (org.check_header_from != defaults.check_header_from) {
        key(out, "check_header_from", toml_bool(org.check_header_from));
    }

    for (const auto& a : p.authentication_policies) {
        out += "\n[[authentication_policy]]\n";
        string_key(out, "name", a.name);
        if (a.allow_basic_auth_smtp) key(out, "allow_basic_auth_smtp", "true");
    }

    for (const auto& m : p.mailboxes) {
        out += "\n[[mailbox]]\n";
        string_key(out, "identity", m.identity);
        if (!m.password_hash.empty()) string_key(out, "password_hash", m.password_hash);
        if (m.smtp_client_authentication_disabled) {
            key(out, "smtp_client_authentication_disabled", toml_bool(*m.smtp_client_authentication_disabled));
        }
        if (!m.allowed_senders.empty()) key(out, "allowed_senders", toml_array(m.allowed_senders));
        if (!m.allowed_recipient_domains.empty()) {
            key(out, "allowed_recipient_domains", toml_array(m.allowed_recipient_domains));
        }
        if (!m.upstream_mailbox.empty()) string_key(out, "upstream_mailbox", m.upstream_mailbox);
        if (!m.authentication_policy.empty()) string_key(out, "authentication_policy", m.authentication_policy);
        if (m.max_messages_per_minute) number_key(out, "max_messages_per_minute", *m.max_messages_per_minute);
        if (m.max_recipients_per_day) number_key(out, "max_recipients_per_day", *m.max_recipients_per_day);
        if (m.max_recipients_per_message) number_key(out, "max_recipients_per_message", *m.max_recipients_per_message);
        if (m.null_sender == null_sender_mode::refuse) string_key(out, "null_sender", "refuse");
        if (m.check_header_from) key(out, "check_header_from", toml_bool(*m.check_header_from));
    }

    for (const auto& b : p.bindings) {
        out += "\n[[binding]]\n";
        string_key(out, "network", b.network_text.empty() ? b.net.to_string() : b.network_text);
        string_key(out, "identity", b.identity);
        if (!b.listeners.empty()) key(out, "listeners", toml_array(b.listeners));
    }
    return out;
}

}  // namespace subrelay::policy
