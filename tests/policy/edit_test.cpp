#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "policy/edit.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
}

policy_change add_mailbox(std::string identity) {
    return [identity = std::move(identity)](policy_file& p) -> std::string {
        for (const auto& m : p.mailboxes) {
            if (text::iequals(m.identity, identity)) return "mailbox " + identity + " already exists";
        }
        mailbox m;
        m.identity = identity;
        m.password_hash = "$y$j9T$salt$hash/with.dots";
        p.mailboxes.push_back(std::move(m));
        return {};
    };
}

class edit_file_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("subrelay-edit-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        file_ = dir_ / "policy.toml";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    void write(std::string_view text) { std::ofstream(file_, std::ios::binary) << text; }

    // Everything in the directory but the policy file and its lock.
    std::vector<std::string> leftovers() const {
        std::vector<std::string> out;
        for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
            const auto name = entry.path().filename().string();
            if (name != "policy.toml" && name != "policy.toml.lock") out.push_back(name);
        }
        return out;
    }

    std::filesystem::path dir_;
    std::filesystem::path file_;
};

TEST_F(edit_file_test, basic_edit) {
    write("[organization]\nsmtp_client_authentication_disabled = true\n"
          "[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"$6$salt$hash\"\n");
    ::chmod(file_.c_str(), 0640);
    const auto r = edit_file(file_, [](policy_file& p) {
        p.mailboxes.at(0).smtp_client_authentication_disabled = false;
        return std::string();
    });
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    EXPECT_TRUE(r.changed);
    EXPECT_TRUE(r.errors.empty());
    const auto text = slurp(file_);
    EXPECT_THAT(text, StartsWith("# subrelay policy. Maintained by `subrelay` CLI edits; hand edits are fine"));
    const auto loaded = load_file(file_);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded.policy.mailboxes.at(0).smtp_client_authentication_disabled, std::optional<bool>(false));
    EXPECT_EQ(loaded.policy.mailboxes.at(0).password_hash, "$6$salt$hash");
    EXPECT_EQ(mode_of(file_), 0640U) << "the file keeps its mode";
    EXPECT_EQ(mode_of(dir_ / "policy.toml.lock"), 0600U);
    EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

// The Debian package installs the policy root:subrelay 0640 so that the
// relay, running as subrelay, can read it. An edit by root must not hand
// the file to root's group: the relay could no longer read its policy.
TEST_F(edit_file_test, the_file_keeps_its_owner_and_group) {
    write("[[mailbox]]\nidentity = \"a@contoso.com\"\n");
    ::chmod(file_.c_str(), 0640);
    struct stat before {};
    ASSERT_EQ(::stat(file_.c_str(), &before), 0);
    // Another group than the editor's: any group when root, else one of ours.
    gid_t other = ::getegid();
    if (::geteuid() == 0) {
        other = before.st_gid == 65534 ? 65533 : 65534;
    } else {
        std::vector<gid_t> groups(static_cast<std::size_t>(::getgroups(0, nullptr)));
        groups.resize(static_cast<std::size_t>(::getgroups(static_cast<int>(groups.size()), groups.data())));
        for (gid_t g : groups) {
            if (g != before.st_gid) other = g;
        }
        if (other == before.st_gid) GTEST_SKIP() << "this user is in one group only";
    }
    ASSERT_EQ(::chown(file_.c_str(), static_cast<uid_t>(-1), other), 0);
    const auto r = edit_file(file_, add_mailbox("b@contoso.com"));
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    ASSERT_TRUE(r.changed);
    struct stat after {};
    ASSERT_EQ(::stat(file_.c_str(), &after), 0);
    EXPECT_EQ(after.st_gid, other);
    EXPECT_EQ(after.st_uid, before.st_uid);
    EXPECT_EQ(after.st_mode & 07777, 0640U);
}

TEST_F(edit_file_test, no_change_leaves_the_file_untouched) {
    const std::string original = "# hand-written, with comments\n[[mailbox]]\nidentity = \"a@contoso.com\"\n";
    write(original);
    const auto r = edit_file(file_, [](policy_file& p) {
        p.mailboxes.at(0).identity = "a@contoso.com";
        return std::string();
    });
    EXPECT_TRUE(r.ok);
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(slurp(file_), original);
}

TEST_F(edit_file_test, a_refused_change_leaves_the_file_untouched) {
    const std::string original = "[[mailbox]]\nidentity = \"a@contoso.com\"\n";
    write(original);
    const auto r = edit_file(file_, [](policy_file& p) {
        p.mailboxes.clear();  // changed in memory, then refused: nothing is written
        return std::string("mailbox b@contoso.com does not exist");
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.changed);
    EXPECT_THAT(r.errors, ElementsAre("mailbox b@contoso.com does not exist"));
    EXPECT_EQ(slurp(file_), original);
    EXPECT_TRUE(leftovers().empty());
}

TEST_F(edit_file_test, an_edit_that_makes_the_file_invalid_is_refused) {
    const std::string original = "[[mailbox]]\nidentity = \"a@contoso.com\"\n"
                                 "[[binding]]\nnetwork = \"10.0.0.0/8\"\nidentity = \"a@contoso.com\"\n";
    write(original);
    const auto r = edit_file(file_, [](policy_file& p) {
        p.mailboxes.clear();  // the binding now names no mailbox
        p.org.default_authentication_policy = "Missing";
        return std::string();
    });
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.errors,
                ElementsAre(file_.string() + R"(: organization.default_authentication_policy: "Missing" is not the name of any [[authentication_policy]])",
                            file_.string() + R"(: binding[0].identity: "a@contoso.com" is not the identity of any [[mailbox]])"));
    EXPECT_EQ(slurp(file_), original);
    EXPECT_TRUE(leftovers().empty());
}

TEST_F(edit_file_test, an_invalid_current_file_is_refused) {
    const std::string original = "[[mailbox]]\nidentity = \"a@contoso.com\"\ncolour = \"red\"\n";
    write(original);
    bool called = false;
    const auto r = edit_file(file_, [&](policy_file&) {
        called = true;
        return std::string();
    });
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(called) << "hand edits must be fixed first";
    EXPECT_THAT(r.errors, ElementsAre(file_.string() + ": mailbox[0].colour: unknown key"));
    EXPECT_EQ(slurp(file_), original);

    write("[[mailbox]\n");
    const auto syntax = edit_file(file_, add_mailbox("b@contoso.com"));
    EXPECT_FALSE(syntax.ok);
    ASSERT_EQ(syntax.errors.size(), 1U);
    EXPECT_THAT(syntax.errors[0], StartsWith(file_.string() + ": syntax error"));
}

TEST_F(edit_file_test, a_missing_file_is_created_only_when_asked) {
    const auto refused = edit_file(file_, add_mailbox("a@contoso.com"));
    EXPECT_FALSE(refused.ok);
    ASSERT_EQ(refused.errors.size(), 1U);
    EXPECT_THAT(refused.errors[0], StartsWith(file_.string() + ": cannot read file"));
    EXPECT_FALSE(std::filesystem::exists(file_));

    const auto created = edit_file(file_, add_mailbox("a@contoso.com"), true);
    ASSERT_TRUE(created.ok) << ::testing::PrintToString(created.errors);
    EXPECT_TRUE(created.changed);
    EXPECT_EQ(mode_of(file_), 0600U);
    const auto loaded = load_file(file_);
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded.policy.mailboxes.size(), 1U);
    EXPECT_EQ(loaded.policy.mailboxes[0].identity, "a@contoso.com");
}

TEST_F(edit_file_test, bindings_may_be_given_by_text_or_by_network) {
    write("[[mailbox]]\nidentity = \"a@contoso.com\"\n");
    const auto r = edit_file(file_, [](policy_file& p) {
        binding by_text;
        by_text.network_text = "10.1.20.0/24";
        by_text.identity = "a@contoso.com";
        p.bindings.push_back(by_text);
        binding by_net;
        std::string why;
        EXPECT_TRUE(network::parse("2001:db8::/48", by_net.net, why));
        by_net.identity = "a@contoso.com";
        p.bindings.push_back(by_net);
        return std::string();
    });
    ASSERT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    const auto loaded = load_file(file_);
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded.policy.bindings.size(), 2U);
    EXPECT_EQ(loaded.policy.bindings[0].net.prefix, 120U);
    EXPECT_EQ(loaded.policy.bindings[1].network_text, "2001:db8::/48");
}

TEST_F(edit_file_test, concurrent_threads_lose_no_edit) {
    write("[organization]\n");
    constexpr int n = 8;
    std::vector<std::thread> threads;
    std::vector<edit_result> results(n);
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([this, i, &results] {
            results[static_cast<std::size_t>(i)] =
                edit_file(file_, add_mailbox("device" + std::to_string(i) + "@contoso.com"));
        });
    }
    for (auto& t : threads) t.join();
    for (const auto& r : results) EXPECT_TRUE(r.ok) << ::testing::PrintToString(r.errors);
    const auto loaded = load_file(file_);
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded.policy.mailboxes.size(), static_cast<std::size_t>(n));
    engine e(loaded.policy);
    for (int i = 0; i < n; ++i) EXPECT_NE(e.find("device" + std::to_string(i) + "@contoso.com"), nullptr) << i;
    EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

TEST_F(edit_file_test, concurrent_processes_lose_no_edit) {
    write("[organization]\n");
    constexpr int n = 8;
    constexpr int per_process = 3;
    std::vector<pid_t> children;
    for (int i = 0; i < n; ++i) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int failures = 0;
            for (int j = 0; j < per_process; ++j) {
                const auto r = edit_file(file_, add_mailbox("p" + std::to_string(i) + "-" + std::to_string(j) + "@contoso.com"));
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
    const auto loaded = load_file(file_);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded.policy.mailboxes.size(), static_cast<std::size_t>(n * per_process));
    EXPECT_TRUE(leftovers().empty()) << ::testing::PrintToString(leftovers());
}

}  // namespace
}  // namespace subrelay::policy
