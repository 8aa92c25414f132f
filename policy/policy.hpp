#pragma once
// The local policy: which accounts may submit, as which senders, through
// which upstream mailbox; decided exactly as Exchange Online decides
// SmtpClientAuthenticationDisabled (organization default, mailbox wins).
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "smtp/reply.hpp"

namespace subrelay::policy {

struct mailbox {
    std::string identity;                       // stored as written; compared case-insensitively
    std::string password_hash;                  // crypt(3)
    std::optional<bool> smtp_client_authentication_disabled;  // nullopt = $null
    std::vector<std::string> allowed_senders;   // empty in file => [identity]
    std::string upstream_mailbox;               // empty => upstream.mailbox
};

struct organization {
    bool smtp_client_authentication_disabled = true;  // Microsoft's recommendation
};

struct policy_file {
    organization org;
    std::vector<mailbox> mailboxes;
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
    [[nodiscard]] bool ok() const { return errors.empty(); }
};

load_result load_file(const std::filesystem::path& file);
load_result load_text(std::string_view text, const std::filesystem::path& file);

// Why SMTP AUTH is enabled or disabled for one account.
enum class auth_source { organization, mailbox };

struct auth_decision {
    bool allowed = false;
    auth_source source = auth_source::organization;
    std::optional<smtp::reply> refusal;          // the 535 5.7.139 reply when !allowed
};

// Evaluates a loaded policy. Immutable; share with std::shared_ptr and
// swap a new one in on reload.
class engine {
public:
    explicit engine(policy_file p);

    // nullptr if no such account (case-insensitive).
    [[nodiscard]] const mailbox* find(std::string_view identity) const;

    // Precedence: mailbox true -> disabled (Mailbox reply), mailbox false ->
    // enabled, unset -> organization (Tenant reply when disabled).
    [[nodiscard]] auth_decision may_authenticate(const mailbox& m) const;

    // nullopt: the account may send as `address`; else 550 5.7.60.
    [[nodiscard]] std::optional<smtp::reply> check_sender(std::string_view identity, std::string_view address) const;

    // The upstream mailbox for an account ("" => the default upstream.mailbox).
    [[nodiscard]] std::string upstream_mailbox_for(std::string_view identity) const;

    [[nodiscard]] const policy_file& file() const { return policy_; }

private:
    policy_file policy_;
    std::unordered_map<std::string, std::size_t> index_;  // lower-cased identity -> mailboxes index
};

}  // namespace subrelay::policy
