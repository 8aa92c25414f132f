#pragma once
// The local policy: which accounts may submit, as which senders, through
// which upstream mailbox; decided exactly as Exchange Online decides
// SmtpClientAuthenticationDisabled (organization default, mailbox wins).
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.hpp"
#include "conf/network.hpp"
#include "smtp/reply.hpp"

namespace subrelay::policy {

// What MAIL FROM:<> (devices send status reports with it) becomes.
enum class null_sender_mode {
    rewrite,  // accepted; the envelope sender becomes the account's identity
              // before it goes upstream (Exchange relays no null sender from a client)
    refuse,   // 550 5.7.60, like a sender the account may not use
};

struct mailbox {
    std::string identity;                       // stored as written; compared case-insensitively
    std::string password_hash;                  // crypt(3); may be empty for an account used only by bindings
    std::optional<bool> smtp_client_authentication_disabled;  // nullopt = $null
    std::vector<std::string> allowed_senders;   // exact addresses or "*@domain"; empty in file => [identity]
    std::vector<std::string> allowed_recipient_domains;       // empty => any recipient
    std::string upstream_mailbox;               // empty => upstream.mailbox
    std::string authentication_policy;          // name of an [[authentication_policy]]; "" => the organization default
    // Per-account limits; nullopt => the organization's value; 0 => no limit.
    std::optional<std::uint32_t> max_messages_per_minute;
    std::optional<std::uint32_t> max_recipients_per_day;
    std::optional<std::uint32_t> max_recipients_per_message;
    null_sender_mode null_sender = null_sender_mode::rewrite;
    // The From: and Sender: of a message must be allowed_senders too;
    // nullopt => the organization's check_header_from.
    std::optional<bool> check_header_from;

    friend bool operator==(const mailbox&, const mailbox&) = default;
};

struct organization {
    bool smtp_client_authentication_disabled = true;  // Microsoft's recommendation
    bool security_defaults = false;                   // true => SMTP AUTH off for everyone
    std::string default_authentication_policy;        // like Set-OrganizationConfig -DefaultAuthenticationPolicy
    // Per account; 0 => no limit. Exchange's 30 a minute belongs to the
    // upstream mailbox, and the queue already paces each one to it: a scanner
    // that sends a message per page must not be refused at page 31.
    std::uint32_t max_messages_per_minute = 0;
    // Exchange Online's limits; 0 => no limit.
    std::uint32_t max_recipients_per_day = 10000;
    std::uint32_t max_recipients_per_message = 500;
    // Exchange refuses a message whose From: the mailbox may not send as
    // (550 5.7.60), whatever the envelope says: so does the relay, before
    // the message is queued.
    bool check_header_from = true;

    friend bool operator==(const organization&, const organization&) = default;
};

// Like New-AuthenticationPolicy: only the SMTP switch matters here.
struct authentication_policy {
    std::string name;                               // unique, case-insensitive
    bool allow_basic_auth_smtp = false;             // Exchange's default for a new policy

    friend bool operator==(const authentication_policy&, const authentication_policy&) = default;
};

using conf::network;

// A device that cannot authenticate: clients from `network` submit as `identity` without AUTH.
struct binding {
    std::string network_text;                       // as written in the file
    network net;
    std::string identity;                           // must name a [[mailbox]]
    std::vector<std::string> listeners;             // listener names ("submission", "submissions" or "host:port"); empty => all

    friend bool operator==(const binding&, const binding&) = default;
};

struct policy_file {
    organization org;
    std::vector<mailbox> mailboxes;
    std::vector<authentication_policy> authentication_policies;
    std::vector<binding> bindings;

    friend bool operator==(const policy_file&, const policy_file&) = default;
};

struct load_error {
    std::filesystem::path file;
    std::string key;                             // "mailbox[2].identity"
    std::string message;
    [[nodiscard]] std::string to_string() const; // "FILE: key: message"
};

struct load_result {
    policy_file policy;
    std::vector<load_error> errors;
    // The text ends with a complete last table: its last line with content
    // has its line end (a file cut in the middle of a line has not). See
    // check_reload in policy/reload.hpp.
    bool ends_complete = false;
    [[nodiscard]] bool ok() const { return errors.empty(); }
};

// Errors, besides those of the keys: a file that is empty (or only
// comments), a directory or anything else that is not a regular file.
load_result load_file(const std::filesystem::path& file);
load_result load_text(std::string_view text, const std::filesystem::path& file);
// What load_result::ends_complete says of a text.
bool ends_with_complete_table(std::string_view text);

// The canonical TOML text of a policy (what CLI edits write). load_text of
// the result gives back an equal policy_file.
std::string to_toml(const policy_file& p);

// Why SMTP AUTH is enabled or disabled for one account.
enum class auth_source { security_defaults, authentication_policy, mailbox, organization };

struct auth_decision {
    bool allowed = false;
    auth_source source = auth_source::organization;
    std::optional<smtp::reply> refusal;          // the 535 5.7.139 reply when !allowed
    // The reasoning, one line per step in Exchange's order (every step is
    // listed, even after the one that decides), e.g.
    //   "SecurityDefaults: False"
    //   "AuthenticationPolicy: none"
    //   "Organization: SmtpClientAuthenticationDisabled = True"
    //   "Mailbox: SmtpClientAuthenticationDisabled = False (overrides the organization)"
    //   "Effective: enabled"
    std::vector<std::string> steps;
};

// The limits in force for one account (organization defaults applied); 0 => no limit.
struct effective_limits {
    std::uint32_t max_messages_per_minute = 0;
    std::uint32_t max_recipients_per_day = 0;
    std::uint32_t max_recipients_per_message = 0;
};

// Why a message was refused for its From: or Sender: header.
struct header_from_refusal {
    smtp::reply reply;    // 550 5.7.60, as for an envelope sender the account may not use
    std::string address;  // the address the account may not send as; "" when the reason is elsewhere
    std::string reason;   // when address is "": why the header could not be checked
};

// Exchange's replies for the policy's refusals (text in one place).
namespace replies {
smtp::reply security_defaults();      // 535 5.7.139 ... user is locked by your organization's security defaults policy. ...
smtp::reply basic_auth_disabled();    // 535 5.7.139 Authentication unsuccessful, basic authentication is disabled.
smtp::reply recipient_domain_not_allowed(std::string_view domain);  // 550 5.7.1 ...
smtp::reply message_rate_exceeded();  // 421 4.4.2 Message submission rate for this client has exceeded the configured limit
smtp::reply daily_recipients_exceeded();  // 554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; ...
smtp::reply too_many_recipients();    // 452 4.5.3 Too many recipients
}  // namespace replies

// Evaluates a loaded policy. Immutable; share with std::shared_ptr and
// swap a new one in on reload.
class engine {
public:
    explicit engine(policy_file p);

    // nullptr if no such account (case-insensitive).
    [[nodiscard]] const mailbox* find(std::string_view identity) const;
    // The account an AUTH user name means: as given, else, when it has no
    // domain and `default_domain` is set, name@default_domain (Postfix's
    // smtpd_sasl_local_domain). nullptr if none.
    [[nodiscard]] const mailbox* find_login(std::string_view name, std::string_view default_domain) const;

    // The full precedence, in Exchange's order: security defaults on =>
    // refused (security defaults reply); else the account's authentication
    // policy (its own, or the organization default) with
    // allow_basic_auth_smtp = false => refused (basic authentication reply);
    // else mailbox true => refused (Mailbox reply), mailbox false => allowed,
    // unset => the organization (Tenant reply when disabled).
    [[nodiscard]] auth_decision may_authenticate(const mailbox& m) const;

    // At each MAIL of a session that authenticated (or is bound) earlier:
    // the account's decision again, so that revoking an account reaches the
    // sessions already open. nullopt: it may still send; else the 5.7.139
    // text of may_authenticate with code 550 (535 answers AUTH only).
    [[nodiscard]] std::optional<smtp::reply> recheck_at_mail(const mailbox& m) const;

    // nullopt: the account may send as `address` (exact, case-insensitive,
    // or "*@domain"); else 550 5.7.60. The null sender is accepted unless
    // the account's null_sender is "refuse".
    [[nodiscard]] std::optional<smtp::reply> check_sender(std::string_view identity, std::string_view address) const;

    // Whether the From:/Sender: check applies to an account: its own
    // check_header_from, else the organization's.
    [[nodiscard]] bool checks_header_from(const mailbox& m) const;

    // At the end of DATA, before the message is queued: nullopt when it may
    // go, else the refusal. `header_section` is the message's header section
    // as smtp::header_collector keeps it; `truncated` when it went on past
    // what was kept. When the check applies to the account, every address
    // of every From: and Sender: field must pass check_sender; a field that
    // cannot be read, or a header section longer than what was kept (a
    // From: after it would go unseen), is refused too. A message without
    // From: or Sender: passes. An unknown account is refused.
    [[nodiscard]] std::optional<header_from_refusal> check_header_from(std::string_view identity,
                                                                      std::string_view header_section,
                                                                      bool truncated) const;

    // nullopt: the account may send to `address` (allowed_recipient_domains
    // empty, or the domain is listed, case-insensitive); else 550 5.7.1.
    [[nodiscard]] std::optional<smtp::reply> check_recipient(std::string_view identity, std::string_view address) const;

    // The binding for a client address on a listener ("submission" or
    // "submissions", and its "host:port"), or nullptr. The most specific
    // (longest prefix) binding wins.
    [[nodiscard]] const binding* binding_for(std::string_view client_ip, std::string_view listener_kind,
                                             std::string_view listener_address) const;

    [[nodiscard]] effective_limits limits_for(const mailbox& m) const;

    // The upstream mailbox for an account ("" => the default upstream.mailbox).
    [[nodiscard]] std::string upstream_mailbox_for(std::string_view identity) const;

    // The envelope sender to relay for an accepted MAIL FROM: the null
    // sender becomes the account's identity (null_sender = "rewrite").
    [[nodiscard]] std::string envelope_sender(std::string_view identity, std::string_view sender) const;

    [[nodiscard]] const policy_file& file() const { return policy_; }

private:
    policy_file policy_;
    std::unordered_map<std::string, std::size_t> index_;  // lower-cased identity -> mailboxes index
};

// Whether this node is set up to deliver through an upstream mailbox: it is
// upstream.mailbox, an OAuth profile lists it (or acts as it), or an account
// of `policy` (may be null) names it as its upstream_mailbox. Any mailbox
// is when nothing depends on it (upstream.kind = "directory", or
// upstream.auth = "none"); so is "" (upstream.mailbox). A message for
// another one (imported from another node's spool) is still tried, through
// the default OAuth profile.
bool upstream_mailbox_configured(const conf::config& cfg, const engine* policy, std::string_view upstream);

}  // namespace subrelay::policy
