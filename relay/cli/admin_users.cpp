// The web console's users ([admin] users_file, relay/console/users.hpp):
// New-/Set-/Remove-/Get-AdminUser. Each change is recorded in the audit log
// like the policy's, as kind "AdminUser", without the hash.
#include <sys/stat.h>

#include <ostream>

#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"
#include "relay/console/users.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr const char* o_role = "role";

// The users file the configuration names; empty after saying it names none.
std::filesystem::path users_file(const context& c) {
    const auto& file = c.cfg.admin.users_file;
    if (file.empty()) {
        c.err << c.cfg.source.string()
              << ": admin.users_file: not set; name the web console's users file there (for example "
                 "users_file = \"console-users.toml\" under [admin]) to have console users\n";
    }
    return file;
}

// The name -Identity gives, checked; empty after saying what is wrong.
std::string user_name(const context& c) {
    auto name = c.opts.value(o_identity);
    if (name.empty()) {
        c.fail() << "-Identity is required\n";
        return {};
    }
    if (auto why = console::check_user_name(name); !why.empty()) {
        c.fail() << why << '\n';
        return {};
    }
    return name;
}

// -Role, when given: false after saying what is wrong.
bool read_role(const context& c, std::optional<console::role>& out) {
    if (!c.opts.has(o_role)) return true;
    const auto text = c.opts.value(o_role);
    out = console::parse_role(text);
    if (!out) c.fail() << "-Role must be admin or reader, not '" << text << "'.\n";
    return out.has_value();
}

// Runs one atomic edit of the users file (console::edit_users), recorded in
// the audit log under the file's lock before the new file is in place. A
// refusal from `change` is printed as "subrelay VERB: reason". Returns the
// exit status.
int apply_users_edit(const context& c, const std::filesystem::path& file, const console::users_change& change) {
    // The audit log first: a change that cannot be recorded is not made.
    const auto audit = open_audit_log(c);
    if (!audit) return 1;
    std::string refusal;
    const auto record = [&](const console::users_file& before, const console::users_file& after) {
        return record_changes(c, *audit, console::user_changes(before, after));
    };
    // A file root makes is the relay's to read, as the policy file is: its
    // group is the group of the relay's user (the spool's owner).
    std::optional<gid_t> reader_group;
    struct stat spool {};
    if (::stat(c.cfg.spool.dir.c_str(), &spool) == 0 && spool.st_uid != 0) reader_group = spool.st_gid;
    const auto result = console::edit_users(
        file,
        [&](console::users_file& u) {
            refusal = change(u);
            return refusal;
        },
        record, reader_group);
    if (result.ok) return 0;
    if (!refusal.empty()) {
        c.fail() << refusal << '\n';
    } else {
        for (const auto& e : result.errors) c.err << e << '\n';
        if (result.errors.empty()) c.fail() << "the users file was not changed\n";
    }
    return 1;
}

}  // namespace

int new_adminuser(context& c) {
    const auto file = users_file(c);
    if (file.empty()) return 1;
    const auto name = user_name(c);
    if (name.empty()) return 1;
    std::optional<console::role> access;
    if (!read_role(c, access)) return 1;
    std::string password;
    bool generated = false;
    std::string password_hash;
    if (!read_new_password(c, password, generated, password_hash)) return 1;
    const int status = apply_users_edit(c, file, [&](console::users_file& u) -> std::string {
        if (const auto* existing = u.find(name)) {
            return "An admin user with identity '" + existing->name + "' already exists.";
        }
        u.users.push_back({name, password_hash, access.value_or(console::role::admin)});
        return "";
    });
    if (status == 0 && generated) c.out << password << '\n';
    return status;
}

int set_adminuser(context& c) {
    const auto file = users_file(c);
    if (file.empty()) return 1;
    const auto name = c.opts.value(o_identity);
    if (name.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    std::optional<console::role> access;
    if (!read_role(c, access)) return 1;
    std::string password;
    bool generated = false;
    if (!read_password(c, password, generated)) return 1;
    if (!access && password.empty()) {
        return nothing_to_change(c, "-Role or a new password (--password-stdin or --generate-password)");
    }
    std::string password_hash;
    if (!password.empty() && !hash_password(c, password, password_hash)) return 1;
    const int status = apply_users_edit(c, file, [&](console::users_file& u) -> std::string {
        auto* user = u.find(name);
        if (user == nullptr) return not_found(name);
        if (access) user->access = *access;
        if (!password_hash.empty()) user->password_hash = password_hash;
        return "";
    });
    if (status == 0 && generated) c.out << password << '\n';
    return status;
}

int remove_adminuser(context& c) {
    const auto file = users_file(c);
    if (file.empty()) return 1;
    const auto name = c.opts.value(o_identity);
    if (name.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    return apply_users_edit(c, file, [&](console::users_file& u) -> std::string {
        const auto it = std::find_if(u.users.begin(), u.users.end(),
                                     [&](const console::console_user& x) { return text::iequals(x.name, name); });
        if (it == u.users.end()) return not_found(name);
        u.users.erase(it);
        return "";
    });
}

int get_adminuser(context& c) {
    using console::console_user;
    // Never the hash: whether there is one is all that is shown.
    static const property_table<console_user> properties = {
        prop<console_user>("Name", [](const console_user& u) { return u.name; }),
        prop<console_user>("Role", [](const console_user& u) { return std::string(console::role_name(u.access)); }),
        prop<console_user>("HasPassword", [](const console_user& u) { return !u.password_hash.empty(); }),
    };
    const auto file = users_file(c);
    if (file.empty()) return 1;
    auto loaded = console::load_users(file);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) c.err << e << '\n';
        return 1;
    }
    std::vector<const console_user*> selected;
    if (!select_objects(c, loaded.users.users, &console_user::name, selected)) return 1;
    show(c, properties, selected);
    return 0;
}

}  // namespace subrelay::relay::admin
