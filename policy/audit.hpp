#pragma once
// The audit trail of policy changes: audit.log in the spool directory, one
// JSON object a line, appended for every change made through the CLI (and,
// later, the console or a reload of a hand-edited file). Each line is one
// changed object:
//   {"time": unix seconds, "who": "alice" | "file" | console user,
//    "what": "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false",
//    "object": "scanner@contoso.com", "kind": "Mailbox",
//    "before": {...} | null, "after": {...} | null}
// Never a password or a hash: an account shows only whether it has one and,
// when it changed, "PasswordChanged": true.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "policy/edit.hpp"
#include "policy/policy.hpp"

namespace subrelay::policy {

// One object an edit changed: created (before null), removed (after null) or changed.
struct object_change {
    std::string kind;       // "TransportConfig", "OrganizationConfig", "Mailbox", "AuthenticationPolicy", "RelayBinding"
    std::string identity;   // "Organization", the account, the policy's name, the network
    boost::json::value before;
    boost::json::value after;
};

// What differs between two policies, object by object, in a stable order
// (organization, accounts, authentication policies, bindings).
std::vector<object_change> policy_changes(const policy_file& before, const policy_file& after);

struct audit_entry {
    std::int64_t time = 0;
    std::string who;
    std::string what;
    object_change change;
};

std::string to_json_line(const audit_entry& e);  // without the newline
// A line of audit.log; nullopt when it is not one (a torn last line).
std::optional<audit_entry> parse_audit_line(const std::string& line);

// audit.log in a spool directory.
std::filesystem::path audit_log_path(const std::filesystem::path& spool_dir);

// An open audit log: opened (created 0640, owned like the spool directory
// when created by root) before a change is made, so that a change that
// cannot be recorded is not made. Throws std::runtime_error naming the file.
class audit_log {
public:
    explicit audit_log(const std::filesystem::path& file);
    ~audit_log();
    audit_log(const audit_log&) = delete;
    audit_log& operator=(const audit_log&) = delete;

    // Appends the entries in one write and syncs them. Throws std::runtime_error.
    void append(const std::vector<audit_entry>& entries);
    [[nodiscard]] const std::filesystem::path& file() const { return file_; }

private:
    std::filesystem::path file_;
    int fd_ = -1;
};

// Every entry of the log, oldest first (lines that are no entry are skipped).
// A missing file is an empty log. Throws std::runtime_error when it cannot be read.
std::vector<audit_entry> read_audit_log(const std::filesystem::path& file);

// Who runs this process, for "who": the Unix user, or the user sudo was
// started by ("alice (sudo)").
std::string unix_caller();

// A value as PowerShell takes it: $true, $false, $null, a number, a list
// as a,b, a string bare when it is one plain word, else in single quotes.
std::string powershell_value(const boost::json::value& v);

// The cmdlet that makes `change` (for a hand edit of the file, which names
// none): "Set-CASMailbox -Identity X -SmtpClientAuthenticationDisabled $false",
// "New-RelayAccount -Identity X ...", "Remove-RelayBinding -Network N", ...
std::string cmdlet_for(const object_change& change);

// The entries appended from byte `offset` on, and the size the log had
// then (the next offset). A missing file: none, offset 0.
std::vector<audit_entry> read_audit_log_from(const std::filesystem::path& file, std::uintmax_t& offset);

// A reload of a hand-edited file: its changes that no admin verb recorded
// among `recorded` (the same object, kind and properties after), which the
// relay records as the file's. The entries that matched leave `recorded`.
std::vector<object_change> unrecorded(std::vector<object_change> changes, std::vector<audit_entry>& recorded);

// The changes a reload of a hand-edited file (the policy, the console's
// users) made that no admin verb recorded (they record theirs before the new
// file is in place), recorded as the file's: who "file", with the cmdlet
// that makes the same change. Remembers the verbs' records it has read for
// ten minutes, so a record written before one reload and taken in by the
// next still matches. Entries in the log before it was made are not matched.
class hand_edit_recorder {
public:
    explicit hand_edit_recorder(std::filesystem::path log);
    // Appends the unrecorded ones and returns them. Throws std::runtime_error.
    std::vector<audit_entry> record(std::vector<object_change> changes, std::int64_t now);

private:
    std::filesystem::path log_;
    std::uintmax_t offset_ = 0;
    std::vector<audit_entry> recorded_;
};

// A time to search the log from: "2026-12-05" or "2026-12-05T10:30:00Z"
// (UTC). False when it is neither.
bool parse_audit_since(const std::string& text, std::int64_t& out);

// One edit of the policy file (edit_file) recorded in `log` as `who`'s at
// `now`: each object it changes with the cmdlet `what` gives for it, written
// under the policy's lock before the new file is in place. An edit that
// cannot be recorded is not made (the error says why).
edit_result recorded_edit(const std::filesystem::path& file, audit_log& log, const std::string& who,
                          std::int64_t now, const policy_change& change,
                          const std::function<std::string(const object_change&)>& what = cmdlet_for);

}  // namespace subrelay::policy
