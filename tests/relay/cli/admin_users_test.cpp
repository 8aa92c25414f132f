// The web console's users verbs (new-/set-/remove-/get-adminuser) end to end
// through run_cli, on a temporary config and users file, with their audit
// trail.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/password.hpp"
#include "policy/audit.hpp"
#include "relay/cli/cli.hpp"
#include "relay/console/users.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
namespace console = subrelay::console;
namespace policy = subrelay::policy;

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct result {
    int status;
    std::string out;
    std::string err;
};

constexpr const char* head = "[server]\n"
                             "submission = [\"127.0.0.1:2587\"]\n"
                             "[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n"
                             "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n";

class admin_users : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-admin-users");
        config_ = (dir_ / "relay.toml").string();
        users_ = dir_ / "console-users.toml";
        std::ofstream(config_) << head << "[admin]\nusers_file = \"console-users.toml\"\n";
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Runs a verb with --config appended.
    result run(std::vector<std::string> args, const std::string& input = "") {
        args.push_back("--config");
        args.push_back(config_);
        std::istringstream in(input);
        std::ostringstream out, err;
        const int status = subrelay::relay::run_cli(args, in, out, err);
        return {status, out.str(), err.str()};
    }

    console::users_file users() const {
        auto r = console::load_users(users_);
        EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
        return r.users;
    }

    std::string users_text() const {
        std::ifstream in(users_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    fs::path audit_path() const { return policy::audit_log_path(dir_ / "spool"); }

    std::vector<policy::audit_entry> audit() const { return policy::read_audit_log(audit_path()); }

    std::string audit_text() const {
        std::ifstream in(audit_path());
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    fs::path dir_;
    std::string config_;
    fs::path users_;
};

// The one password --generate-password printed.
std::string printed_password(const std::string& out) {
    EXPECT_FALSE(out.empty());
    EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
    return out.substr(0, out.size() - 1);
}

TEST_F(admin_users, every_verb_has_help_and_the_main_usage_lists_them) {
    const auto main = run({"--help"});
    for (const char* verb : {"new-adminuser", "set-adminuser", "remove-adminuser", "get-adminuser"}) {
        const auto r = run({verb, "--help"});
        EXPECT_EQ(r.status, 0) << verb;
        EXPECT_THAT(r.out, StartsWith(std::string("usage: subrelay ") + verb)) << verb;
        EXPECT_THAT(main.out, HasSubstr(std::string("  ") + verb + " ")) << verb;
    }
}

TEST_F(admin_users, without_users_file_each_verb_names_the_config_and_the_key) {
    std::ofstream(config_) << head;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"new-adminuser", "-Identity", "alice", "--generate-password"},
          std::vector<std::string>{"set-adminuser", "-Identity", "alice", "-Role", "reader"},
          std::vector<std::string>{"remove-adminuser", "-Identity", "alice"},
          std::vector<std::string>{"get-adminuser"}}) {
        const auto r = run(args);
        EXPECT_EQ(r.status, 1) << args[0];
        EXPECT_EQ(r.out, "") << args[0];
        EXPECT_THAT(r.err, StartsWith(config_ + ": admin.users_file: not set; ")) << args[0];
    }
    // Nothing was made: no users file, no spool, no audit log.
    EXPECT_FALSE(fs::exists(users_));
    EXPECT_FALSE(fs::exists(dir_ / "spool"));
}

TEST_F(admin_users, new_adminuser_with_a_generated_password_is_an_admin) {
    const auto r = run({"new-adminuser", "-Identity", "alice", "--generate-password"});
    ASSERT_EQ(r.status, 0) << r.err;
    const auto password = printed_password(r.out);
    EXPECT_EQ(password.size(), 24U);
    const auto u = users();
    ASSERT_EQ(u.users.size(), 1U);
    EXPECT_EQ(u.users[0].name, "alice");
    EXPECT_EQ(u.users[0].access, console::role::admin);
    EXPECT_TRUE(subrelay::auth::verify_password(password, u.users[0].password_hash));
    EXPECT_THAT(users_text(), Not(HasSubstr(password)));
    EXPECT_THAT(r.err, Not(HasSubstr(password)));
    struct stat st {};
    ASSERT_EQ(::stat(users_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600U);

    // The same name in another case is refused, and no password is printed.
    const auto text = users_text();
    const auto dup = run({"new-adminuser", "ALICE", "--generate-password"});
    EXPECT_EQ(dup.status, 1);
    EXPECT_EQ(dup.out, "");
    EXPECT_THAT(dup.err, HasSubstr("subrelay new-adminuser: An admin user with identity 'alice' already exists."));
    EXPECT_EQ(users_text(), text);
}

TEST_F(admin_users, new_adminuser_with_a_password_on_stdin_and_a_role) {
    const auto r = run({"new-adminuser", "--identity", "bob@contoso.com", "--role", "Reader", "--password-stdin"},
                       "Console pass 1\r\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    const auto u = users();
    ASSERT_EQ(u.users.size(), 1U);
    EXPECT_EQ(u.users[0].access, console::role::reader);
    EXPECT_TRUE(subrelay::auth::verify_password("Console pass 1", u.users[0].password_hash));
}

TEST_F(admin_users, new_adminuser_errors_change_nothing) {
    const auto refused = [this](std::vector<std::string> args, const std::string& input, const std::string& why) {
        const auto r = run(args, input);
        EXPECT_EQ(r.status, 1) << args[1];
        EXPECT_EQ(r.out, "");
        EXPECT_THAT(r.err, HasSubstr(why));
    };
    refused({"new-adminuser", "--generate-password"}, "", "subrelay new-adminuser: -Identity is required");
    refused({"new-adminuser", "-Identity", "al ice", "--generate-password"}, "",
            "\"al ice\" is not a valid name: 1 to 64 letters, digits, '.', '_', '-' or '@'");
    refused({"new-adminuser", "-Identity", "alice", "-Role", "owner", "--generate-password"}, "",
            "-Role must be admin or reader, not 'owner'.");
    refused({"new-adminuser", "-Identity", "alice"}, "",
            "give --password-stdin (read one line) or --generate-password");
    refused({"new-adminuser", "-Identity", "alice", "--password-stdin"}, "", "no password on standard input");
    refused({"new-adminuser", "-Identity", "alice", "--password-stdin"}, "\n", "the password is empty");
    refused({"new-adminuser", "-Identity", "alice", "--password-stdin", "--generate-password"}, "pw\n",
            "give --password-stdin or --generate-password, not both");
    EXPECT_FALSE(fs::exists(users_));
    EXPECT_TRUE(audit().empty());
}

TEST_F(admin_users, set_adminuser_changes_the_role_and_the_password) {
    ASSERT_EQ(run({"new-adminuser", "-Identity", "alice", "--password-stdin"}, "first\n").status, 0);
    auto r = run({"set-adminuser", "-Identity", "ALICE", "-Role", "reader"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(users().users.at(0).access, console::role::reader);
    EXPECT_TRUE(subrelay::auth::verify_password("first", users().users.at(0).password_hash));

    r = run({"set-adminuser", "alice", "--password-stdin"}, "second\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(subrelay::auth::verify_password("second", users().users.at(0).password_hash));
    EXPECT_EQ(users().users.at(0).access, console::role::reader);

    r = run({"set-adminuser", "alice", "--generate-password", "-Role", "admin"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(subrelay::auth::verify_password(printed_password(r.out), users().users.at(0).password_hash));
    EXPECT_EQ(users().users.at(0).access, console::role::admin);

    const auto text = users_text();
    const auto nothing = run({"set-adminuser", "-Identity", "alice"});
    EXPECT_EQ(nothing.status, 1);
    EXPECT_THAT(nothing.err, HasSubstr("subrelay set-adminuser: nothing to change: give -Role or a new password"));
    const auto missing = run({"set-adminuser", "-Identity", "carol", "--generate-password"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_EQ(missing.out, "");
    EXPECT_THAT(missing.err,
                HasSubstr("The operation couldn't be performed because object 'carol' couldn't be found."));
    EXPECT_EQ(users_text(), text);
}

TEST_F(admin_users, remove_adminuser) {
    ASSERT_EQ(run({"new-adminuser", "-Identity", "alice", "--generate-password"}).status, 0);
    ASSERT_EQ(run({"new-adminuser", "-Identity", "bob", "--generate-password"}).status, 0);
    ASSERT_EQ(run({"remove-adminuser", "-Identity", "Alice"}).status, 0);
    const auto u = users();
    ASSERT_EQ(u.users.size(), 1U);
    EXPECT_EQ(u.users[0].name, "bob");
    const auto again = run({"remove-adminuser", "alice"});
    EXPECT_EQ(again.status, 1);
    EXPECT_THAT(again.err, HasSubstr("object 'alice' couldn't be found"));
}

TEST_F(admin_users, get_adminuser_shows_name_role_and_has_password_never_the_hash) {
    // No file yet: no users.
    auto none = run({"get-adminuser"});
    EXPECT_EQ(none.status, 0) << none.err;
    EXPECT_EQ(none.out, "");
    EXPECT_EQ(run({"get-adminuser", "--json"}).out, "[]\n");

    ASSERT_EQ(run({"new-adminuser", "-Identity", "alice", "--generate-password"}).status, 0);
    ASSERT_EQ(run({"new-adminuser", "-Identity", "bob", "-Role", "reader", "--generate-password"}).status, 0);
    const auto all = run({"get-adminuser"});
    ASSERT_EQ(all.status, 0) << all.err;
    EXPECT_EQ(all.out,
              "Name        : alice\n"
              "Role        : admin\n"
              "HasPassword : True\n"
              "\n"
              "Name        : bob\n"
              "Role        : reader\n"
              "HasPassword : True\n");
    const auto one = run({"get-adminuser", "-Identity", "BOB"});
    ASSERT_EQ(one.status, 0) << one.err;
    EXPECT_THAT(one.out, StartsWith("Name        : bob\n"));
    const auto j = run({"get-adminuser", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    EXPECT_EQ(boost::json::parse(j.out),
              boost::json::parse(R"([{"Name":"alice","Role":"admin","HasPassword":true},)"
                                 R"({"Name":"bob","Role":"reader","HasPassword":true}])"));
    for (const auto& out : {all.out, one.out, j.out}) EXPECT_THAT(out, Not(HasSubstr("$y$")));
    const auto missing = run({"get-adminuser", "-Identity", "carol"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_THAT(missing.err, HasSubstr("object 'carol' couldn't be found"));
}

TEST_F(admin_users, a_users_file_that_does_not_load_is_reported_and_not_changed) {
    std::ofstream(users_) << "[[user]]\nname = \"alice\"\npassword_hash = \"$y$j9T$x$y\"\nrole = \"owner\"\n";
    const auto text = users_text();
    const auto get = run({"get-adminuser"});
    EXPECT_EQ(get.status, 1);
    EXPECT_EQ(get.err, users_.string() + ": user[0].role: expected \"admin\" or \"reader\", got \"owner\"\n");
    const auto add = run({"new-adminuser", "-Identity", "bob", "--generate-password"});
    EXPECT_EQ(add.status, 1);
    EXPECT_EQ(add.out, "");
    EXPECT_THAT(add.err, HasSubstr(users_.string() + ": user[0].role: "));
    EXPECT_EQ(users_text(), text);
    EXPECT_TRUE(audit().empty());
}

TEST_F(admin_users, an_absolute_users_file_is_used_as_given) {
    const auto elsewhere = dir_ / "private" / "users.toml";
    fs::create_directories(elsewhere.parent_path());
    std::ofstream(config_) << head << "[admin]\nusers_file = \"" << elsewhere.string() << "\"\n";
    ASSERT_EQ(run({"new-adminuser", "-Identity", "alice", "--generate-password"}).status, 0);
    EXPECT_TRUE(fs::exists(elsewhere));
    EXPECT_FALSE(fs::exists(users_));
}

TEST_F(admin_users, each_change_is_recorded_in_the_audit_log_without_a_hash) {
    ASSERT_EQ(run({"new-adminuser", "-Identity", "alice", "-Role", "admin", "--password-stdin"}, "Secret-1\n").status,
              0);
    ASSERT_EQ(run({"set-adminuser", "-Identity", "alice", "-Role", "reader"}).status, 0);
    ASSERT_EQ(run({"set-adminuser", "-Identity", "alice", "--password-stdin"}, "Secret-2\n").status, 0);
    ASSERT_EQ(run({"set-adminuser", "-Identity", "alice", "-Role", "reader"}).status, 0);  // no change: no entry
    ASSERT_EQ(run({"remove-adminuser", "alice"}).status, 0);
    ASSERT_EQ(run({"remove-adminuser", "alice"}).status, 1);  // refused: no entry

    const auto entries = audit();
    ASSERT_EQ(entries.size(), 4U);
    std::vector<std::string> what;
    for (const auto& e : entries) {
        what.push_back(e.what);
        EXPECT_EQ(e.change.kind, "AdminUser");
        EXPECT_EQ(e.change.identity, "alice");
        EXPECT_EQ(e.who, policy::unix_caller());
        EXPECT_GT(e.time, 1700000000);
    }
    EXPECT_EQ(what, (std::vector<std::string>{"New-AdminUser -Identity alice -Role admin -PasswordStdin",
                                              "Set-AdminUser -Identity alice -Role reader",
                                              "Set-AdminUser -Identity alice -PasswordStdin",
                                              "Remove-AdminUser -Identity alice"}));
    EXPECT_TRUE(entries[0].change.before.is_null());
    EXPECT_EQ(entries[0].change.after,
              boost::json::parse(R"({"Name":"alice","Role":"admin","HasPassword":true})"));
    EXPECT_EQ(entries[1].change.after.at("Role"), "reader");
    EXPECT_FALSE(entries[1].change.after.as_object().contains("PasswordChanged"));
    EXPECT_EQ(entries[2].change.after.at("PasswordChanged"), true);
    EXPECT_TRUE(entries[3].change.after.is_null());

    const auto text = audit_text();
    for (const char* secret : {"Secret-1", "Secret-2", "$y$", "password_hash"}) {
        EXPECT_THAT(text, Not(HasSubstr(secret))) << secret;
    }

    // search-adminauditlog shows them as it shows the policy's.
    const auto search = run({"search-adminauditlog", "-Identity", "ALICE"});
    ASSERT_EQ(search.status, 0) << search.err;
    EXPECT_THAT(search.out, HasSubstr("CmdletName         : New-AdminUser\n"));
    EXPECT_THAT(search.out, HasSubstr("CmdletParameters   : -Identity alice -Role reader\n"));
    EXPECT_THAT(search.out, HasSubstr("ObjectKind         : AdminUser\n"));
    EXPECT_THAT(search.out, HasSubstr("ModifiedProperties : Role: \"admin\" -> \"reader\"\n"));
    EXPECT_THAT(search.out, HasSubstr("ModifiedProperties : PasswordChanged: null -> true\n"));
    EXPECT_THAT(search.out, HasSubstr("ModifiedProperties : (removed)\n"));
}

TEST_F(admin_users, a_change_that_cannot_be_recorded_is_not_made) {
    std::ofstream(dir_ / "spool") << "not a directory\n";
    const auto r = run({"new-adminuser", "-Identity", "alice", "--generate-password"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, HasSubstr("audit log"));
    EXPECT_FALSE(fs::exists(users_));
}

}  // namespace
