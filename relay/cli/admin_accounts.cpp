// Relay accounts, the mailboxes devices authenticate as:
// New-/Set-/Remove-/Get-RelayAccount.
#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"
#include "smtp/address.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr const char* o_allowed_senders = "allowedsenders";
constexpr const char* o_allowed_recipient_domains = "allowedrecipientdomains";
constexpr const char* o_upstream_mailbox = "upstreammailbox";
constexpr const char* o_authentication_policy = "authenticationpolicy";
constexpr const char* o_null_sender = "nullsender";

std::string null_sender_name(policy::null_sender_mode mode) {
    return mode == policy::null_sender_mode::rewrite ? "rewrite" : "refuse";
}

// The account settings an option list can change (not the identity or password).
bool has_account_settings(const context& c) {
    for (const char* name :
         {o_disabled, o_allowed_senders, o_allowed_recipient_domains, o_upstream_mailbox, o_authentication_policy,
          o_max_messages_per_minute, o_max_recipients_per_day, o_max_recipients_per_message, o_null_sender,
          o_check_header_from}) {
        if (c.opts.has(name)) return true;
    }
    return false;
}

std::string apply_account_settings(const context& c, policy::policy_file& p, policy::mailbox& m) {
    const auto& o = c.opts;
    if (o.has(o_disabled)) m.smtp_client_authentication_disabled = o.tristate(o_disabled);
    if (o.has(o_allowed_senders)) m.allowed_senders = o.list(o_allowed_senders);
    if (o.has(o_allowed_recipient_domains)) m.allowed_recipient_domains = o.list(o_allowed_recipient_domains);
    if (o.has(o_upstream_mailbox)) m.upstream_mailbox = o.nullable_text(o_upstream_mailbox);
    if (o.has(o_authentication_policy)) {
        const auto name = o.nullable_text(o_authentication_policy);
        if (name.empty()) {
            m.authentication_policy.clear();
        } else {
            const auto* ap = find_auth_policy(p, name);
            if (ap == nullptr) return not_found(name);
            m.authentication_policy = ap->name;
        }
    }
    if (o.has(o_max_messages_per_minute)) m.max_messages_per_minute = o.nullable_count(o_max_messages_per_minute);
    if (o.has(o_max_recipients_per_day)) m.max_recipients_per_day = o.nullable_count(o_max_recipients_per_day);
    if (o.has(o_max_recipients_per_message)) {
        m.max_recipients_per_message = o.nullable_count(o_max_recipients_per_message);
    }
    if (o.has(o_null_sender)) {
        const auto mode = o.value(o_null_sender);
        if (text::iequals(mode, "rewrite")) {
            m.null_sender = policy::null_sender_mode::rewrite;
        } else if (text::iequals(mode, "refuse")) {
            m.null_sender = policy::null_sender_mode::refuse;
        } else {
            return "NullSender must be rewrite or refuse, not '" + mode + "'.";
        }
    }
    if (o.has(o_check_header_from)) m.check_header_from = o.tristate(o_check_header_from);
    return "";
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
    std::string password_hash;
    if (!read_new_password(c, password, generated, password_hash)) return 1;
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
    if (!password.empty() && !hash_password(c, password, password_hash)) return 1;
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

int get_relayaccount(context& c) {
    using policy::mailbox;
    static const property_table<mailbox> properties = {
        prop<mailbox>("Identity", [](const mailbox& m) { return m.identity; }),
        prop<mailbox>("PasswordSet", [](const mailbox& m) { return !m.password_hash.empty(); }),
        prop<mailbox>("SmtpClientAuthenticationDisabled",
                      [](const mailbox& m) { return m.smtp_client_authentication_disabled; }),
        // Empty in the file means the identity alone.
        prop<mailbox>("AllowedSenders",
                      [](const mailbox& m) {
                          return m.allowed_senders.empty() ? std::vector<std::string>{m.identity} : m.allowed_senders;
                      }),
        prop<mailbox>("AllowedRecipientDomains", [](const mailbox& m) { return m.allowed_recipient_domains; }),
        prop<mailbox>("UpstreamMailbox", [](const mailbox& m) { return unless_empty(m.upstream_mailbox); }),
        prop<mailbox>("AuthenticationPolicy", [](const mailbox& m) { return unless_empty(m.authentication_policy); }),
        prop<mailbox>("MaxMessagesPerMinute", [](const mailbox& m) { return m.max_messages_per_minute; }),
        prop<mailbox>("MaxRecipientsPerDay", [](const mailbox& m) { return m.max_recipients_per_day; }),
        prop<mailbox>("MaxRecipientsPerMessage", [](const mailbox& m) { return m.max_recipients_per_message; }),
        prop<mailbox>("NullSender", [](const mailbox& m) { return null_sender_name(m.null_sender); }),
        // Blank: the organization's CheckHeaderFrom decides.
        prop<mailbox>("CheckHeaderFrom", [](const mailbox& m) { return m.check_header_from; }),
    };
    auto p = load_policy(c);
    if (!p) return 1;
    std::vector<const mailbox*> selected;
    if (!select_objects(c, p->mailboxes, &mailbox::identity, selected)) return 1;
    show(c, properties, selected);
    return 0;
}

}  // namespace subrelay::relay::admin
