// The web console's users file: reading it (every problem as FILE: key:
// what), writing it back, and edits (lock, re-read, validate, atomic write
// with mode 0600).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "relay/console/users.hpp"
#include "tests/relay/temp_dir.hpp"

namespace subrelay::console {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* alice_hash = "$y$j9T$abcdefghijklmnop$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
constexpr const char* bob_hash = "$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyz./ABCDEFGHIJ";

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

users_file two_users() {
    users_file u;
    u.users.push_back({"alice", alice_hash, role::admin});
    u.users.push_back({"bob@contoso.com", bob_hash, role::reader});
    return u;
}

std::vector<std::string> errors_of(std::string_view text) { return load_users_text(text, "users.toml").errors; }

// One error expected; its text.
std::string only_error(std::string_view text) {
    const auto errors = errors_of(text);
    EXPECT_EQ(errors.size(), 1U) << ::testing::PrintToString(errors);
    return errors.empty() ? std::string() : errors.front();
}

users_change add_user(std::string name, role r = role::admin) {
    return [name = std::move(name), r](users_file& u) -> std::string {
        if (u.find(name) != nullptr) return "user " + name + " already exists";
        u.users.push_back({name, alice_hash, r});
        return {};
    };
}

// ---- roles and names ----------------------------------------------------------

TEST(console_users, roles_have_names_and_parse_in_any_case) {
    EXPECT_EQ(role_name(role::admin), "admin");
    EXPECT_EQ(role_name(role::reader), "reader");
    EXPECT_EQ(parse_role("admin"), role::admin);
    EXPECT_EQ(parse_role("Reader"), role::reader);
    EXPECT_EQ(parse_role("ADMIN"), role::admin);
    EXPECT_EQ(parse_role("owner"), std::nullopt);
    EXPECT_EQ(parse_role(""), std::nullopt);
}

TEST(console_users, names_are_letters_digits_and_a_few_marks) {
    for (const char* good : {"alice", "Bob.Smith", "ops_team-2", "admin@contoso.com", "a"}) {
        EXPECT_EQ(check_user_name(good), "") << good;
    }
    EXPECT_EQ(check_user_name(std::string(64, 'x')), "");
    EXPECT_EQ(check_user_name(""), "must not be empty");
    for (const std::string& bad : {std::string(65, 'x'), std::string("al ice"), std::string("a/b"),
                                  std::string("a:b"), std::string("caf\xc3\xa9"), std::string("a\nb"),
                                  std::string("a\"b")}) {
        EXPECT_THAT(check_user_name(bad), HasSubstr("is not a valid name: 1 to 64 letters, digits")) << bad;
    }
    // A control character is shown escaped, never raw.
    EXPECT_THAT(check_user_name("a\nb"), StartsWith("\"a\\nb\" "));
}

TEST(console_users, find_ignores_case) {
    auto u = two_users();
    ASSERT_NE(u.find("ALICE"), nullptr);
    EXPECT_EQ(u.find("ALICE")->name, "alice");
    const auto& c = u;
    ASSERT_NE(c.find("Bob@Contoso.com"), nullptr);
    EXPECT_EQ(c.find("Bob@Contoso.com")->access, role::reader);
    EXPECT_EQ(c.find("carol"), nullptr);
    u.find("alice")->access = role::reader;
    EXPECT_EQ(u.users[0].access, role::reader);
}

// ---- reading ----------------------------------------------------------------------

TEST(console_users, a_file_is_read_with_admin_as_the_default_role) {
    const auto r = load_users_text("# the console's users\n"
                                   "[[user]]\nname = \"alice\"\npassword_hash = '" +
                                       std::string(alice_hash) +
                                       "'\n\n"
                                       "[[user]]\nname = \"bob@contoso.com\"\npassword_hash = \"" +
                                       bob_hash + "\"\nrole = \"Reader\"\n",
                                   "users.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
    EXPECT_EQ(r.users, two_users());
}

TEST(console_users, empty_and_comment_only_files_are_no_users) {
    for (const char* text : {"", "\n", "# nobody yet\n"}) {
        const auto r = load_users_text(text, "users.toml");
        EXPECT_TRUE(r.ok()) << text << ::testing::PrintToString(r.errors);
        EXPECT_TRUE(r.users.users.empty()) << text;
    }
}

TEST(console_users, a_missing_file_is_no_users) {
    const auto dir = test_support::make_temp_dir("subrelay-users");
    const auto r = load_users(dir / "absent.toml");
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
    EXPECT_TRUE(r.users.users.empty());
    std::filesystem::remove_all(dir);
}

TEST(console_users, a_directory_is_not_a_users_file) {
    const auto dir = test_support::make_temp_dir("subrelay-users");
    const auto r = load_users(dir);
    EXPECT_THAT(r.errors, ElementsAre(dir.string() + ": is a directory, not a users file"));
    std::filesystem::remove_all(dir);
}

TEST(console_users, unknown_keys_are_errors) {
    const std::string user = "[[user]]\nname = \"alice\"\npassword_hash = \"" + std::string(alice_hash) + "\"\n";
    EXPECT_EQ(only_error(user + "colour = \"blue\"\n"), "users.toml: user[0].colour: unknown key");
    EXPECT_EQ(only_error("colour = 1\n" + user), "users.toml: colour: unknown key");
    EXPECT_EQ(only_error(user + "[settings]\n"), "users.toml: settings: unknown key");
}

TEST(console_users, each_problem_names_the_file_and_the_key) {
    const std::string h = alice_hash;
    const auto errors = errors_of("[[user]]\nname = \"alice\"\npassword_hash = \"" + h +
                                  "\"\n"
                                  "[[user]]\npassword_hash = \"" + h +
                                  "\"\n"
                                  "[[user]]\nname = \"ALICE\"\npassword_hash = \"" + h +
                                  "\"\n"
                                  "[[user]]\nname = \"carol\"\npassword_hash = \"" + h +
                                  "\"\nrole = \"owner\"\n"
                                  "[[user]]\nname = \"dave\"\npassword_hash = \"\"\n"
                                  "[[user]]\nname = \"eve\"\n"
                                  "[[user]]\nname = \"not valid\"\npassword_hash = \"" + h +
                                  "\"\n"
                                  "[[user]]\nname = \"frank\"\npassword_hash = \"plain-text-secret\"\n"
                                  "[[user]]\nname = 7\npassword_hash = \"" + h + "\"\nrole = true\n");
    EXPECT_THAT(errors,
                ElementsAre("users.toml: user[1].name: is required",
                            "users.toml: user[3].role: expected \"admin\" or \"reader\", got \"owner\"",
                            "users.toml: user[4].password_hash: must not be empty (subrelay set-adminuser "
                            "--password-stdin sets one)",
                            "users.toml: user[5].password_hash: is required",
                            "users.toml: user[6].name: \"not valid\" is not a valid name: 1 to 64 letters, digits, "
                            "'.', '_', '-' or '@'",
                            "users.toml: user[7].password_hash: must be a crypt(3) hash such as subrelay "
                            "hash-password prints",
                            "users.toml: user[8].name: expected a string, got an integer",
                            "users.toml: user[8].role: expected a string, got a boolean",
                            "users.toml: user[2].name: \"ALICE\" is already used by user[0]"));
    for (const auto& e : errors) EXPECT_THAT(e, Not(HasSubstr("plain-text-secret")));
}

TEST(console_users, user_must_be_an_array_of_tables) {
    EXPECT_EQ(only_error("user = \"alice\"\n"),
              "users.toml: user: expected an array of tables ([[user]]), got a string");
    EXPECT_EQ(only_error("user = [1]\n"), "users.toml: user[0]: expected a table, got an integer");
}

TEST(console_users, a_syntax_error_names_the_file_and_the_line) {
    EXPECT_THAT(only_error("[[user]]\nname = \"alice\npassword_hash = \"x\"\n"),
                StartsWith("users.toml: syntax error at line 2"));
}

// ---- writing ------------------------------------------------------------------------

TEST(console_users, to_toml_reads_back_equal) {
    auto u = two_users();
    u.users.push_back(
        {"x_y.z-1@example.org", "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", role::admin});
    const auto text = to_toml(u);
    EXPECT_THAT(text, StartsWith("# subrelay web console users."));
    EXPECT_THAT(text, HasSubstr("[[user]]\nname = \"bob@contoso.com\"\npassword_hash = \"" + std::string(bob_hash) +
                                "\"\nrole = \"reader\"\n"));
    const auto r = load_users_text(text, "users.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
    EXPECT_EQ(r.users, u);
    const auto none = load_users_text(to_toml(users_file{}), "users.toml");
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none.users.users.empty());
}

// ---- the audit trail's view ---------------------------------------------------------

TEST(console_users, changes_are_listed_per_user_without_the_hash) {
    const auto before = two_users();
    auto after = before;
    after.users[0].access = role::reader;                // alice: role
    after.users[1].password_hash = alice_hash;           // bob: password
    after.users.push_back({"carol", bob_hash, role::admin});  // carol: created
    auto changes = user_changes(before, after);
    ASSERT_EQ(changes.size(), 3U);
    EXPECT_EQ(changes[0].kind, "AdminUser");
    EXPECT_EQ(changes[0].identity, "alice");
    EXPECT_EQ(changes[0].before, boost::json::parse(R"({"Name":"alice","Role":"admin","HasPassword":true})"));
    EXPECT_EQ(changes[0].after, boost::json::parse(R"({"Name":"alice","Role":"reader","HasPassword":true})"));
    EXPECT_EQ(changes[1].identity, "bob@contoso.com");
    EXPECT_EQ(changes[1].after,
              boost::json::parse(R"({"Name":"bob@contoso.com","Role":"reader","HasPassword":true,)"
                                 R"("PasswordChanged":true})"));
    EXPECT_EQ(changes[2].identity, "carol");
    EXPECT_TRUE(changes[2].before.is_null());
    EXPECT_EQ(changes[2].after, boost::json::parse(R"({"Name":"carol","Role":"admin","HasPassword":true})"));

    const auto removed = user_changes(after, users_file{});
    ASSERT_EQ(removed.size(), 3U);
    EXPECT_TRUE(removed[0].after.is_null());
    EXPECT_EQ(removed[0].before.at("Name"), "alice");
    EXPECT_TRUE(user_changes(before, before).empty());

    for (const auto& c : changes) {
        const auto text = boost::json::serialize(c.before) + boost::json::serialize(c.after);
        EXPECT_THAT(text, Not(HasSubstr("$y$")));
        EXPECT_THAT(text, Not(HasSubstr("$6$")));
    }
}

// ---- edits --------------------------------------------------------------------------

class users_edit : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test_support::make_temp_dir("subrelay-users-edit");
        file_ = dir_ / "users.toml";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    void write(std::string_view text, mode_t mode = 0600) {
        std::ofstream(file_, std::ios::binary) << text;
        ::chmod(file_.c_str(), mode);
    }

    // Everything in the directory but the users file and its lock.
    std::vector<std::string> leftovers() const {
        std::vector<std::string> out;
        for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
            const auto name = entry.path().filename().string();
            if (name != "users.toml" && name != "users.toml.lock") out.push_back(name);
        }
        return out;
    }

    users_file read() const {
        auto r = load_users(file_);
        EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
        return r.users;
    }

    std::filesystem::path dir_;
    std::filesystem::path file_;
};

TEST_F(users_edit, a_missing_file_is_made_with_mode_0600) {
    const mode_t old_umask = ::umask(0);  // the mode must not depend on the umask
    const auto r = edit_users(file_, add_user("alice"));
    ::umask(old_umask);
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(mode_of(file_), 0600U);
    EXPECT_EQ(mode_of(dir_ / "users.toml.lock"), 0600U);
    ASSERT_EQ(read().users.size(), 1U);
    EXPECT_EQ(read().users[0], (console_user{"alice", alice_hash, role::admin}));
    EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

TEST_F(users_edit, an_edit_keeps_0600_and_never_lets_others_read) {
    write(to_toml(two_users()), 0600);
    ASSERT_TRUE(edit_users(file_, add_user("carol")).changed);
    EXPECT_EQ(mode_of(file_), 0600U);
    // A file its group may read (the relay's, for a file root owns) stays so;
    // others and write bits beyond the owner's are taken away.
    ::chmod(file_.c_str(), 0640);
    ASSERT_TRUE(edit_users(file_, add_user("dave")).changed);
    EXPECT_EQ(mode_of(file_), 0640U);
    ::chmod(file_.c_str(), 0666);
    ASSERT_TRUE(edit_users(file_, add_user("erin")).changed);
    EXPECT_EQ(mode_of(file_), 0640U);
    EXPECT_EQ(read().users.size(), 5U);
}

TEST_F(users_edit, the_file_keeps_its_owner_and_group) {
    write(to_toml(two_users()));
    struct stat before {};
    ASSERT_EQ(::stat(file_.c_str(), &before), 0);
    if (::geteuid() != 0) GTEST_SKIP() << "giving the file to another user needs root";
    ASSERT_EQ(::chown(file_.c_str(), 65534, 65534), 0);
    const auto r = edit_users(file_, add_user("carol"));
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    struct stat after {};
    ASSERT_EQ(::stat(file_.c_str(), &after), 0);
    EXPECT_EQ(after.st_uid, 65534U);
    EXPECT_EQ(after.st_gid, 65534U);
}

TEST_F(users_edit, a_new_file_made_by_root_belongs_to_the_directorys_owner) {
    if (::geteuid() != 0) GTEST_SKIP() << "only root's new files are given away";
    ASSERT_EQ(::chown(dir_.c_str(), 65534, 65534), 0);
    const auto r = edit_users(file_, add_user("alice"));
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    struct stat after {};
    ASSERT_EQ(::stat(file_.c_str(), &after), 0);
    EXPECT_EQ(after.st_uid, 65534U);
    EXPECT_EQ(after.st_gid, 65534U);
    EXPECT_EQ(after.st_mode & 07777, 0600U);
}

TEST_F(users_edit, a_new_file_made_by_root_for_a_reader_group_is_root_and_that_groups_0640) {
    const auto r = edit_users(file_, add_user("alice"), {}, gid_t{65534});
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    struct stat after {};
    ASSERT_EQ(::stat(file_.c_str(), &after), 0);
    if (::geteuid() == 0) {
        EXPECT_EQ(after.st_uid, 0U);
        EXPECT_EQ(after.st_gid, 65534U);
        EXPECT_EQ(after.st_mode & 07777, 0640U);
    } else {
        EXPECT_EQ(after.st_uid, ::geteuid());  // only root gives a file away
        EXPECT_EQ(after.st_mode & 07777, 0600U);
    }
    // An edit keeps them.
    ASSERT_TRUE(edit_users(file_, add_user("bob"), {}, gid_t{1}).changed);
    struct stat again {};
    ASSERT_EQ(::stat(file_.c_str(), &again), 0);
    EXPECT_EQ(again.st_gid, after.st_gid);
    EXPECT_EQ(again.st_mode & 07777, after.st_mode & 07777);
}

TEST_F(users_edit, no_change_leaves_the_file_untouched) {
    const std::string original = "# hand-written\n[[user]]\nname = \"alice\"\npassword_hash = \"" +
                                 std::string(alice_hash) + "\"\n";
    write(original);
    int recorded = 0;
    const auto r = edit_users(
        file_,
        [](users_file& u) {
            u.find("alice")->access = role::admin;
            return std::string();
        },
        [&](const users_file&, const users_file&) {
            ++recorded;
            return std::string();
        });
    EXPECT_TRUE(r.ok);
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(recorded, 0);
    EXPECT_EQ(slurp(file_), original);

    // Nothing to write for a missing file either.
    std::filesystem::remove(file_);
    const auto none = edit_users(file_, [](users_file&) { return std::string(); });
    EXPECT_TRUE(none.ok);
    EXPECT_FALSE(none.changed);
    EXPECT_FALSE(std::filesystem::exists(file_));
}

TEST_F(users_edit, a_refused_change_leaves_the_file_untouched) {
    write(to_toml(two_users()));
    const auto before = slurp(file_);
    const auto r = edit_users(file_, add_user("ALICE"));
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.changed);
    EXPECT_THAT(r.errors, ElementsAre("user ALICE already exists"));
    EXPECT_EQ(slurp(file_), before);
    EXPECT_TRUE(leftovers().empty());
}

TEST_F(users_edit, an_edit_that_makes_the_file_invalid_is_refused) {
    write(to_toml(two_users()));
    const auto before = slurp(file_);
    const auto duplicate = edit_users(file_, [](users_file& u) {
        u.users.push_back({"Alice", bob_hash, role::reader});
        return std::string();
    });
    EXPECT_FALSE(duplicate.ok);
    EXPECT_THAT(duplicate.errors, ElementsAre(file_.string() + ": user[2].name: \"Alice\" is already used by user[0]"));
    const auto bad_name = edit_users(file_, [](users_file& u) {
        u.users.push_back({"a b", bob_hash, role::reader});
        return std::string();
    });
    EXPECT_FALSE(bad_name.ok);
    ASSERT_EQ(bad_name.errors.size(), 1U);
    EXPECT_THAT(bad_name.errors[0], StartsWith(file_.string() + ": user[2].name: \"a b\" is not a valid name"));
    const auto no_hash = edit_users(file_, [](users_file& u) {
        u.users[1].password_hash.clear();
        return std::string();
    });
    EXPECT_FALSE(no_hash.ok);
    ASSERT_EQ(no_hash.errors.size(), 1U);
    EXPECT_THAT(no_hash.errors[0], StartsWith(file_.string() + ": user[1].password_hash: must not be empty"));
    EXPECT_EQ(slurp(file_), before);
    EXPECT_TRUE(leftovers().empty());
}

TEST_F(users_edit, a_file_that_does_not_load_is_not_changed) {
    const std::string broken = "[[user]]\nname = \"alice\"\npassword_hash = \"" + std::string(alice_hash) +
                               "\"\nrole = \"owner\"\n";
    write(broken);
    bool called = false;
    const auto r = edit_users(file_, [&](users_file& u) {
        called = true;
        return add_user("bob")(u);
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(called);
    EXPECT_THAT(r.errors,
                ElementsAre(file_.string() + ": user[0].role: expected \"admin\" or \"reader\", got \"owner\""));
    EXPECT_EQ(slurp(file_), broken);

    write("[[user]\nname = \"alice\"\n");
    const auto syntax = edit_users(file_, add_user("bob"));
    EXPECT_FALSE(syntax.ok);
    ASSERT_EQ(syntax.errors.size(), 1U);
    EXPECT_THAT(syntax.errors[0], StartsWith(file_.string() + ": syntax error"));
    EXPECT_EQ(slurp(file_), "[[user]\nname = \"alice\"\n");
}

TEST_F(users_edit, the_record_hook_sees_the_change_under_the_lock_and_can_stop_it) {
    write(to_toml(two_users()));
    const auto before = slurp(file_);
    std::vector<policy::object_change> seen;
    const auto r = edit_users(file_, add_user("carol", role::reader),
                              [&](const users_file& b, const users_file& a) {
                                  seen = user_changes(b, a);
                                  // Under the lock, before the new file is in place.
                                  EXPECT_EQ(slurp(file_), before);
                                  return std::string();
                              });
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].identity, "carol");
    EXPECT_EQ(read().users.size(), 3U);

    const auto after_carol = slurp(file_);
    const auto refused = edit_users(file_, add_user("dave"), [](const users_file&, const users_file&) {
        return std::string("cannot write the audit log; nothing was changed");
    });
    EXPECT_FALSE(refused.ok);
    EXPECT_THAT(refused.errors, ElementsAre("cannot write the audit log; nothing was changed"));
    EXPECT_EQ(slurp(file_), after_carol);
    EXPECT_TRUE(leftovers().empty());
}

TEST_F(users_edit, a_lock_that_cannot_be_made_is_an_error) {
    const auto r = edit_users(dir_ / "absent-dir" / "users.toml", add_user("alice"));
    EXPECT_FALSE(r.ok);
    ASSERT_EQ(r.errors.size(), 1U);
    EXPECT_THAT(r.errors[0], HasSubstr("users.toml.lock: cannot open lock file: "));
}

TEST_F(users_edit, concurrent_threads_lose_no_edit) {
    constexpr int n = 8;
    std::vector<std::thread> threads;
    std::vector<users_edit_result> results(n);
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([this, i, &results] {
            results[static_cast<std::size_t>(i)] = edit_users(file_, add_user("user" + std::to_string(i)));
        });
    }
    for (auto& t : threads) t.join();
    for (const auto& r : results) EXPECT_TRUE(r.ok && r.changed) << ::testing::PrintToString(r.errors);
    const auto u = read();
    ASSERT_EQ(u.users.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_NE(u.find("user" + std::to_string(i)), nullptr) << i;
    EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

TEST_F(users_edit, concurrent_processes_lose_no_edit) {
    constexpr int n = 6;
    constexpr int per_process = 3;
    std::vector<pid_t> children;
    for (int i = 0; i < n; ++i) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int failures = 0;
            for (int j = 0; j < per_process; ++j) {
                const auto r = edit_users(file_, add_user("p" + std::to_string(i) + "-" + std::to_string(j)));
                if (!r.ok || !r.changed) ++failures;
            }
            ::_exit(failures);
        }
        children.push_back(pid);
    }
    for (const pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status));
        EXPECT_EQ(WEXITSTATUS(status), 0);
    }
    EXPECT_EQ(read().users.size(), static_cast<std::size_t>(n * per_process));
    EXPECT_EQ(mode_of(file_), 0600U);
    EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

}  // namespace
}  // namespace subrelay::console
