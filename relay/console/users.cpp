#include "relay/console/users.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include <boost/json.hpp>

#include "conf/toml_reader/toml_reader.hpp"
#include "relay/spool/durable_file.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::console {

namespace {

using toml_reader::problem;
using toml_reader::table_reader;
using toml_reader::toml_string;

constexpr std::size_t max_name_length = 64;

// A name as messages show it: quoted, its control characters escaped.
std::string quote(std::string_view s) { return toml_string(s); }

// A crypt(3) hash: "$id$...", printable ASCII without spaces. The value is
// never echoed in a message: it is a secret.
bool looks_like_crypt_hash(std::string_view h) {
    if (h.size() < 4 || h.front() != '$') return false;
    return std::all_of(h.begin(), h.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
    });
}

void read_user(const toml::table& t, const std::string& prefix, console_user& u, std::vector<problem>& problems) {
    table_reader r(t, prefix, problems);
    if (r.read("name", u.name)) {
        if (auto why = check_user_name(u.name); !why.empty()) r.error("name", std::move(why));
    } else if (!r.has("name")) {
        r.error("name", "is required");
    }
    if (r.read("password_hash", u.password_hash)) {
        if (u.password_hash.empty()) {
            r.error("password_hash", "must not be empty (subrelay set-adminuser --password-stdin sets one)");
        } else if (!looks_like_crypt_hash(u.password_hash)) {
            r.error("password_hash", "must be a crypt(3) hash such as subrelay hash-password prints");
            u.password_hash.clear();
        }
    } else if (!r.has("password_hash")) {
        r.error("password_hash", "is required");
    }
    std::string role_text;
    if (r.read("role", role_text)) {
        if (const auto parsed = parse_role(role_text)) {
            u.access = *parsed;
        } else {
            r.error("role", "expected \"admin\" or \"reader\", got " + quote(role_text));
        }
    }
    r.finish();
}

std::string system_error(const std::filesystem::path& file, std::string_view what, int err) {
    return file.string() + ": " + std::string(what) + ": " + relay::errno_text(err);
}


// The audit trail's view of a user: everything but the hash.
boost::json::object user_view(const console_user& u) {
    return {{"Name", u.name}, {"Role", std::string(role_name(u.access))}, {"HasPassword", !u.password_hash.empty()}};
}

template <class Users>
auto find_in(Users& users, std::string_view name) -> decltype(&users.front()) {
    for (auto& u : users)
        if (text::iequals(u.name, name)) return &u;
    return nullptr;
}

}  // namespace

std::string_view role_name(role r) { return r == role::reader ? "reader" : "admin"; }

std::optional<role> parse_role(std::string_view s) {
    if (text::iequals(s, "admin")) return role::admin;
    if (text::iequals(s, "reader")) return role::reader;
    return std::nullopt;
}

const console_user* users_file::find(std::string_view name) const { return find_in(users, name); }

console_user* users_file::find(std::string_view name) { return find_in(users, name); }

std::string check_user_name(std::string_view name) {
    if (name.empty()) return "must not be empty";
    const bool valid = name.size() <= max_name_length && std::all_of(name.begin(), name.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                  c == '.' || c == '_' || c == '-' || c == '@';
                       });
    if (valid) return {};
    return quote(name) + " is not a valid name: 1 to 64 letters, digits, '.', '_', '-' or '@'";
}

users_load_result load_users_text(std::string_view text, const std::filesystem::path& file) {
    users_load_result result;
    std::string syntax_error;
    const auto root = toml_reader::parse_document(text, file, syntax_error);
    if (!root) {
        result.errors.push_back(file.string() + ": " + syntax_error);
        return result;
    }
    // An empty file (or one with only comments) is no users: nobody signs in.
    std::vector<problem> problems;
    table_reader r(*root, "", problems);
    std::vector<std::size_t> at;  // at[i]: the index in the file of users[i]
    if (const auto* node = r.get("user")) {
        const auto* arr = node->as_array();
        if (arr == nullptr) {
            r.error("user", toml_reader::type_mismatch("an array of tables ([[user]])", *node));
        } else {
            for (std::size_t i = 0; i < arr->size(); ++i) {
                const auto& element = *arr->get(i);
                const auto prefix = toml_reader::index_key("user", i);
                const auto* t = element.as_table();
                if (t == nullptr) {
                    problems.push_back({prefix, toml_reader::type_mismatch("a table", element)});
                    continue;
                }
                console_user u;
                read_user(*t, prefix, u, problems);
                result.users.users.push_back(std::move(u));
                at.push_back(i);
            }
        }
    }
    r.finish();

    const auto& users = result.users.users;
    for (std::size_t i = 0; i < users.size(); ++i) {
        if (users[i].name.empty()) continue;
        for (std::size_t j = 0; j < i; ++j) {
            if (text::iequals(users[j].name, users[i].name)) {
                problems.push_back({toml_reader::index_key("user", at[i]) + ".name",
                                    quote(users[i].name) + " is already used by " +
                                        toml_reader::index_key("user", at[j])});
                break;
            }
        }
    }
    for (auto& p : problems) {
        result.errors.push_back(file.string() + ": " + (p.key.empty() ? "" : p.key + ": ") + p.message);
    }
    return result;
}

users_load_result load_users(const std::filesystem::path& file) {
    users_load_result result;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        if (errno == ENOENT) return result;  // no users
        result.errors.push_back(system_error(file, "cannot read file", errno));
        return result;
    }
    // A directory reads as an empty text, a FIFO would block.
    if (!S_ISREG(st.st_mode)) {
        result.errors.push_back(file.string() + ": " +
                                (S_ISDIR(st.st_mode) ? "is a directory, not a users file" : "is not a regular file"));
        return result;
    }
    std::string read_error;
    const auto text = toml_reader::read_file(file, read_error);
    if (!text) {
        result.errors.push_back(file.string() + ": " + read_error);
        return result;
    }
    return load_users_text(*text, file);
}

std::string to_toml(const users_file& u) {
    std::string out =
        "# subrelay web console users. Maintained by `subrelay new-adminuser`,\n"
        "# `set-adminuser` and `remove-adminuser`; hand edits are fine too (an edit\n"
        "# rewrites the file in this form, without comments). role: admin or reader.\n";
    for (const auto& user : u.users) {
        out += "\n[[user]]\n";
        out += "name = " + toml_string(user.name) + "\n";
        out += "password_hash = " + toml_string(user.password_hash) + "\n";
        out += "role = " + toml_string(role_name(user.access)) + "\n";
    }
    return out;
}

users_edit_result edit_users(const std::filesystem::path& file, const users_change& change,
                             const users_record& record, std::optional<gid_t> reader_group) {
    users_edit_result result;

    relay::fd_guard lock(-1);
    if (auto error = relay::lock_beside(file, lock); !error.empty()) {
        result.errors.push_back(std::move(error));
        return result;
    }

    // Re-read under the lock: the change applies to the latest file.
    struct stat st {};
    bool exists = false;
    if (::stat(file.c_str(), &st) == 0) {
        exists = true;
    } else if (errno != ENOENT) {
        result.errors.push_back(system_error(file, "cannot read file", errno));
        return result;
    }
    auto loaded = load_users(file);
    if (!loaded.ok()) {
        result.errors = std::move(loaded.errors);
        return result;
    }
    const users_file before = std::move(loaded.users);

    users_file after = before;
    if (auto reason = change(after); !reason.empty()) {
        result.errors.push_back(std::move(reason));
        return result;
    }
    if (after == before) {
        result.ok = true;
        return result;
    }

    const auto text = to_toml(after);
    const auto check = load_users_text(text, file);
    if (!check.ok()) {
        result.errors = check.errors;
        return result;
    }
    if (!(check.users == after)) {
        result.errors.push_back(file.string() + ": the edited users do not read back as written; nothing was changed");
        return result;
    }

    if (record) {
        if (auto why = record(before, after); !why.empty()) {
            result.errors.push_back(std::move(why));
            return result;
        }
    }
    // Hashes: the owner reads and writes it; a group that could read it (the
    // relay's, for a file root owns) still can; others never.
    mode_t mode = exists ? ((st.st_mode & 0640) | 0600) : 0600;
    const struct stat* owner = nullptr;
    struct stat dir {};
    if (exists) {
        owner = &st;
    } else if (::geteuid() == 0 && reader_group) {
        dir.st_uid = 0;
        dir.st_gid = *reader_group;
        owner = &dir;
        mode = 0640;
    } else if (::geteuid() == 0) {
        const auto parent = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
        if (::stat(parent.c_str(), &dir) == 0) owner = &dir;
    }
    if (auto error = relay::replace_file_as(file, text, mode, owner); !error.empty()) {
        result.errors.push_back(std::move(error));
        return result;
    }
    result.ok = true;
    result.changed = true;
    return result;
}

std::vector<policy::object_change> user_changes(const users_file& before, const users_file& after) {
    std::vector<policy::object_change> out;
    for (const auto& b : before.users) {
        const console_user* a = after.find(b.name);
        if (a == nullptr) {
            out.push_back({"AdminUser", b.name, user_view(b), nullptr});
        } else if (!(*a == b)) {
            boost::json::object now = user_view(*a);
            if (a->password_hash != b.password_hash && !a->password_hash.empty()) now["PasswordChanged"] = true;
            out.push_back({"AdminUser", a->name, user_view(b), std::move(now)});
        }
    }
    for (const auto& a : after.users)
        if (before.find(a.name) == nullptr) out.push_back({"AdminUser", a.name, nullptr, user_view(a)});
    return out;
}

}  // namespace subrelay::console
