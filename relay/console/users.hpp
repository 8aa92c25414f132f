#pragma once
// The web console's users ([admin] users_file): who may sign in to the
// console, with a crypt(3) hash and a role. A TOML file, like the policy:
//
//   [[user]]
//   name = "alice"
//   password_hash = '$y$j9T$...'
//   role = "admin"            # admin (the default) or reader
//
// Mode 0600 (it holds hashes). Edits (subrelay new-adminuser,
// set-adminuser, remove-adminuser) take a lock, re-read, change, validate
// and replace the file atomically, as policy edits do.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/audit.hpp"

namespace subrelay::console {

// admin: sees and changes everything; reader: sees everything, changes nothing.
enum class role { admin, reader };
std::string_view role_name(role r);                  // "admin", "reader"
std::optional<role> parse_role(std::string_view s);  // any case

struct console_user {
    std::string name;           // unique, compared case-insensitively
    std::string password_hash;  // crypt(3)
    role access = role::admin;
    friend bool operator==(const console_user&, const console_user&) = default;
};

struct users_file {
    std::vector<console_user> users;
    // The user named `name` (any case), or nullptr.
    [[nodiscard]] const console_user* find(std::string_view name) const;
    [[nodiscard]] console_user* find(std::string_view name);
    friend bool operator==(const users_file&, const users_file&) = default;
};

// Why a name cannot be a console user's: "" when it can (1 to 64 letters,
// digits, '.', '_', '-', '@').
std::string check_user_name(std::string_view name);

struct users_load_result {
    users_file users;
    std::vector<std::string> errors;  // "FILE: user[2].role: what is wrong"
    [[nodiscard]] bool ok() const { return errors.empty(); }
};

// A missing file is no users (ok). Errors name the file and the key.
users_load_result load_users(const std::filesystem::path& file);
users_load_result load_users_text(std::string_view text, const std::filesystem::path& file);

// The file's text; load_users_text of it gives back an equal users_file.
std::string to_toml(const users_file& u);

struct users_edit_result {
    bool ok = false;
    bool changed = false;
    std::vector<std::string> errors;  // the change's refusal, or what is wrong with the file
};

// "" to go on, or why not (nothing is written).
using users_change = std::function<std::string(users_file&)>;

// Called with the users before and after a change that is valid and about
// to be written, under the lock: the audit trail records it before anyone
// can read the new file. "" to go on, or why not (nothing is written).
using users_record = std::function<std::string(const users_file& before, const users_file& after)>;

// Takes the file's lock, re-reads it (a missing file: no users), applies
// `change`, validates (unique names, valid names, hashes present), and
// writes it atomically with mode 0600 (0640 when it was group-readable; an
// existing file keeps its owner, a new file is owned like its directory
// when run by root). `reader_group`: a new file made by root is
// root:reader_group 0640 instead, so that the relay (running as a user of
// that group) reads it, as the package sets the policy file. A file that
// does not load is not changed; nothing is written when the change leaves
// the users as they were (changed = false).
users_edit_result edit_users(const std::filesystem::path& file, const users_change& change,
                             const users_record& record = {}, std::optional<gid_t> reader_group = std::nullopt);

// What differs between two users files, user by user, for the audit trail:
// kind "AdminUser", the name as identity, {"Name", "Role", "HasPassword"}
// before and after (null when created or removed) and "PasswordChanged":
// true when the hash changed. Never a hash.
std::vector<policy::object_change> user_changes(const users_file& before, const users_file& after);

}  // namespace subrelay::console
