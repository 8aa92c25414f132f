// When a running relay takes in a changed policy file: the stamp must be
// the same at two polls in a row, and a reload that removes most accounts
// needs a file that ends with a complete table.
#include "policy/reload.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace subrelay::policy {
namespace {

using verdict = change_watch::verdict;

file_stamp stamp(off_t size, std::int64_t mtime_ns = 1, ino_t inode = 7) {
    file_stamp s;
    s.exists = true;
    s.inode = inode;
    s.mtime_ns = mtime_ns;
    s.ctime_ns = mtime_ns;
    s.size = size;
    return s;
}

TEST(change_watch, reads_a_change_only_once_it_is_the_same_at_two_polls) {
    change_watch w(stamp(100));
    EXPECT_EQ(w.poll(stamp(100)), verdict::unchanged);
    EXPECT_EQ(w.poll(stamp(40, 2)), verdict::settling);
    EXPECT_EQ(w.poll(stamp(40, 2)), verdict::read);
    w.read_at(stamp(40, 2));
    EXPECT_EQ(w.poll(stamp(40, 2)), verdict::unchanged);
}

// A file written in place in two steps with a poll between them: the
// half-way version is seen once, never twice in a row, so it is never read.
TEST(change_watch, a_torn_write_is_never_read_half_way) {
    change_watch w(stamp(100));
    EXPECT_EQ(w.poll(stamp(0, 2)), verdict::settling);     // truncated
    EXPECT_EQ(w.poll(stamp(60, 3)), verdict::settling);    // first half written
    EXPECT_EQ(w.poll(stamp(120, 4)), verdict::settling);   // all written
    EXPECT_EQ(w.poll(stamp(120, 4)), verdict::read);
}

TEST(change_watch, a_change_back_to_the_version_read_is_no_change) {
    change_watch w(stamp(100));
    EXPECT_EQ(w.poll(stamp(50, 2)), verdict::settling);
    EXPECT_EQ(w.poll(stamp(100)), verdict::unchanged);
    EXPECT_EQ(w.poll(stamp(50, 2)), verdict::settling) << "seen before the unchanged poll: not twice in a row";
}

TEST(change_watch, a_rename_and_a_removal_are_changes) {
    change_watch w(stamp(100));
    EXPECT_EQ(w.poll(stamp(100, 1, 8)), verdict::settling);
    EXPECT_EQ(w.poll(stamp(100, 1, 8)), verdict::read);
    w.read_at(stamp(100, 1, 8));
    EXPECT_EQ(w.poll(file_stamp{}), verdict::settling);
    EXPECT_EQ(w.poll(file_stamp{}), verdict::read);
}

TEST(stamp_of, follows_edits_in_place_and_by_rename) {
    const auto dir = std::filesystem::temp_directory_path() / ("subrelay-reload-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const auto file = dir / "policy.toml";
    EXPECT_FALSE(stamp_of(file).exists);
    std::ofstream(file) << "[organization]\n";
    const auto first = stamp_of(file);
    EXPECT_TRUE(first.exists);
    EXPECT_EQ(first.size, 15);
    std::ofstream(file, std::ios::app) << "security_defaults = false\n";
    EXPECT_NE(stamp_of(file), first);
    const auto second = stamp_of(file);
    std::ofstream(dir / "new") << "[organization]\n";
    std::filesystem::rename(dir / "new", file);
    EXPECT_NE(stamp_of(file).inode, second.inode);
    std::filesystem::remove_all(dir);
}

constexpr std::string_view hash = "$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg";

std::string accounts(int from, int to) {
    std::string out = "[organization]\nsmtp_client_authentication_disabled = false\n";
    for (int i = from; i < to; ++i) {
        out += "\n[[mailbox]]\nidentity = \"dev" + std::to_string(i) + "@contoso.com\"\npassword_hash = \"" +
               std::string(hash) + "\"\nsmtp_client_authentication_disabled = true\n";
    }
    return out;
}

policy_file in_force(int n) {
    auto r = load_text(accounts(0, n), "policy.toml");
    EXPECT_TRUE(r.ok());
    return r.policy;
}

TEST(check_reload, half_or_fewer_removed_is_applied_quietly) {
    const auto r = load_text(accounts(0, 5), "policy.toml");
    const auto c = check_reload(in_force(10), r, "policy.toml");
    EXPECT_TRUE(c.apply);
    EXPECT_FALSE(c.warn);
    EXPECT_EQ(c.removed, 5U);
    const auto more = check_reload(in_force(2), load_text(accounts(0, 12), "policy.toml"), "policy.toml");
    EXPECT_TRUE(more.apply);
    EXPECT_FALSE(more.warn);
}

TEST(check_reload, more_than_half_removed_with_a_complete_file_is_applied_with_a_warning) {
    const auto c = check_reload(in_force(10), load_text(accounts(0, 4), "policy.toml"), "policy.toml");
    EXPECT_TRUE(c.apply);
    EXPECT_TRUE(c.warn);
    EXPECT_EQ(c.before, 10U);
    EXPECT_EQ(c.after, 4U);
    EXPECT_EQ(c.message, "policy.toml: more than half of the accounts were removed: 10 account(s) before, 4 after");
    // Renamed accounts count as removed, whatever the count after.
    const auto renamed = check_reload(in_force(4), load_text(accounts(10, 14), "policy.toml"), "policy.toml");
    EXPECT_TRUE(renamed.warn);
    EXPECT_EQ(renamed.removed, 4U);
}

// A file cut short while it is written: valid TOML up to the cut, but its
// last line has no line end.
TEST(check_reload, more_than_half_removed_by_a_file_cut_short_is_not_applied) {
    std::string text = accounts(0, 3);
    text.pop_back();  // "...smtp_client_authentication_disabled = true" without its line end
    const auto loaded = load_text(text, "policy.toml");
    ASSERT_TRUE(loaded.ok());
    const auto c = check_reload(in_force(10), loaded, "policy.toml");
    EXPECT_FALSE(c.apply);
    EXPECT_THAT(c.message, ::testing::StartsWith("policy.toml: would remove 7 of the 10 accounts in force and does "
                                                 "not end with a complete last table"));
    // Removing few accounts needs no such proof.
    EXPECT_TRUE(check_reload(in_force(4), loaded, "policy.toml").apply);
}

TEST(check_reload, case_of_an_identity_does_not_make_it_another_account) {
    auto upper = load_text(accounts(0, 3), "policy.toml");
    for (auto& m : upper.policy.mailboxes) m.identity[0] = 'D';
    const auto c = check_reload(in_force(3), upper, "policy.toml");
    EXPECT_EQ(c.removed, 0U);
    EXPECT_FALSE(c.warn);
}

}  // namespace
}  // namespace subrelay::policy
