#pragma once
// What every admin verb shares (admin_*.cpp, not a public interface): its
// invocation with the configuration, the option names they read, and the
// policy file read and edited the one way.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "policy/audit.hpp"
#include "policy/edit.hpp"
#include "policy/policy.hpp"
#include "relay/cli/admin.hpp"
#include "relay/cli/verb.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay::admin {

// An admin verb's invocation, with the configuration it works on.
struct context : invocation {
    conf::config cfg;
};

// Normalised names of the options more than one noun reads.
inline constexpr const char* o_identity = "identity";
inline constexpr const char* o_json = "json";
inline constexpr const char* o_disabled = "smtpclientauthenticationdisabled";
inline constexpr const char* o_max_messages_per_minute = "maxmessagesperminute";
inline constexpr const char* o_max_recipients_per_day = "maxrecipientsperday";
inline constexpr const char* o_max_recipients_per_message = "maxrecipientspermessage";
inline constexpr const char* o_check_header_from = "checkheaderfrom";
inline constexpr const char* o_password_stdin = "passwordstdin";
inline constexpr const char* o_generate_password = "generatepassword";

// Exchange's words for an identity that names nothing.
std::string not_found(std::string_view identity);

// The policy file the configuration names; its problems go to standard error.
std::optional<policy::policy_file> load_policy(const context& c);

// Runs one atomic edit (policy::edit_file). A refusal from `change` is printed
// as "subrelay VERB: reason"; validation errors as edit_file reports them.
// Returns the exit status.
int apply_edit(const context& c, const policy::policy_change& change, bool create_missing);

// "nothing to change" for a set-* verb given no setting. Returns 1.
int nothing_to_change(const context& c, std::string_view settings);

// The audit log of the configuration's spool (made 0700 when it does not
// exist yet), opened before an edit: a change that cannot be recorded is
// not made. nullptr after saying why.
std::unique_ptr<policy::audit_log> open_audit_log(const context& c);

// Appends one entry per changed object to `audit` (now, the Unix caller,
// cmdlet_text): "" when recorded, else why (and nothing is to be changed).
std::string record_changes(const context& c, policy::audit_log& audit, std::vector<policy::object_change> changes);

// The command as a cmdlet, for the audit log: "Set-CASMailbox -Identity X
// -SmtpClientAuthenticationDisabled $false" (the options given, in the
// command table's order). With --from-file, one command per object, naming it.
std::string cmdlet_text(const context& c, const std::string& object);

// The password options: --password-stdin (one line) or --generate-password.
// `password` stays empty when neither was given; `generated` says it is to
// be printed once. False after saying what is wrong.
bool read_password(const context& c, std::string& password, bool& generated);

// auth::hash_password; false after saying what is wrong.
bool hash_password(const context& c, const std::string& password, std::string& out);

// A new object's password (new-relayaccount, new-adminuser): read_password,
// which must give one, then its hash. False after saying what is wrong.
bool read_new_password(const context& c, std::string& password, bool& generated, std::string& hash);

// The item whose `field` equals `key` (any case), or nullptr.
template <class T>
T* find_by(std::vector<T>& items, std::string_view key, std::string T::*field) {
    auto it = std::find_if(items.begin(), items.end(), [&](const T& x) { return text::iequals(x.*field, key); });
    return it == items.end() ? nullptr : &*it;
}

inline policy::mailbox* find_mailbox(policy::policy_file& p, std::string_view identity) {
    return find_by(p.mailboxes, identity, &policy::mailbox::identity);
}

inline policy::authentication_policy* find_auth_policy(policy::policy_file& p, std::string_view name) {
    return find_by(p.authentication_policies, name, &policy::authentication_policy::name);
}

// What a get-* verb shows: the one object -Identity names, or all of them.
// False (after saying so) when -Identity names nothing.
template <class T>
bool select_objects(const context& c, std::vector<T>& items, std::string T::*key, std::vector<const T*>& out) {
    if (!c.opts.has(o_identity)) {
        for (const auto& x : items) out.push_back(&x);
        return true;
    }
    const T* one = find_by(items, c.opts.value(o_identity), key);
    if (one == nullptr) {
        c.fail() << not_found(c.opts.value(o_identity)) << '\n';
        return false;
    }
    out.push_back(one);
    return true;
}

}  // namespace subrelay::relay::admin
