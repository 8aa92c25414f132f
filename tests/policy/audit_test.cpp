// The audit trail: which objects an edit changed (before and after, never a
// hash), its JSON lines, and the log file they are appended to.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "policy/audit.hpp"

namespace subrelay::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace json = boost::json;

mailbox account(std::string identity) {
    mailbox m;
    m.identity = std::move(identity);
    m.password_hash = "$y$j9T$someSalt$someHashValue0123456789";
    return m;
}

TEST(audit_changes, nothing_changed_is_no_entry) {
    policy_file p;
    p.mailboxes.push_back(account("scanner@contoso.com"));
    EXPECT_TRUE(policy_changes(p, p).empty());
}

TEST(audit_changes, an_account_setting_shows_before_and_after) {
    policy_file before;
    before.mailboxes.push_back(account("scanner@contoso.com"));
    policy_file after = before;
    after.mailboxes[0].smtp_client_authentication_disabled = false;
    const auto changes = policy_changes(before, after);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].kind, "Mailbox");
    EXPECT_EQ(changes[0].identity, "scanner@contoso.com");
    EXPECT_TRUE(changes[0].before.at("SmtpClientAuthenticationDisabled").is_null());
    EXPECT_EQ(changes[0].after.at("SmtpClientAuthenticationDisabled"), json::value(false));
    EXPECT_EQ(changes[0].after.at("HasPassword"), json::value(true));
    EXPECT_EQ(changes[0].after.as_object().if_contains("PasswordChanged"), nullptr);
}

TEST(audit_changes, a_new_password_is_said_never_shown) {
    policy_file before;
    before.mailboxes.push_back(account("scanner@contoso.com"));
    policy_file after = before;
    after.mailboxes[0].password_hash = "$y$j9T$otherSalt$otherHashValue987";
    const auto changes = policy_changes(before, after);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(changes[0].after.at("PasswordChanged"), json::value(true));
    audit_entry e{1, "alice", "Set-RelayAccount -Identity scanner@contoso.com -PasswordStdin", changes[0]};
    const std::string line = to_json_line(e);
    EXPECT_THAT(line, Not(HasSubstr("$y$")));
    EXPECT_THAT(line, Not(HasSubstr("someHashValue")));
    EXPECT_THAT(line, Not(HasSubstr("otherHashValue")));
}

TEST(audit_changes, created_and_removed_objects_of_every_kind) {
    policy_file before;
    before.mailboxes.push_back(account("old@contoso.com"));
    authentication_policy gone;
    gone.name = "Block Basic";
    before.authentication_policies.push_back(gone);
    policy_file after;
    after.org.smtp_client_authentication_disabled = false;
    after.org.max_recipients_per_day = 100;
    after.mailboxes.push_back(account("new@contoso.com"));
    binding b;
    b.network_text = "10.1.20.0/24";
    b.identity = "new@contoso.com";
    after.bindings.push_back(b);
    const auto changes = policy_changes(before, after);
    ASSERT_EQ(changes.size(), 6U);
    EXPECT_EQ(changes[0].kind, "TransportConfig");
    EXPECT_EQ(changes[0].after.at("SmtpClientAuthenticationDisabled"), json::value(false));
    EXPECT_EQ(changes[1].kind, "OrganizationConfig");
    EXPECT_EQ(changes[1].after.at("MaxRecipientsPerDay"), json::value(100));
    EXPECT_EQ(changes[2].identity, "old@contoso.com");
    EXPECT_TRUE(changes[2].after.is_null());
    EXPECT_EQ(changes[3].identity, "new@contoso.com");
    EXPECT_TRUE(changes[3].before.is_null());
    EXPECT_EQ(changes[4].kind, "AuthenticationPolicy");
    EXPECT_TRUE(changes[4].after.is_null());
    EXPECT_EQ(changes[5].kind, "RelayBinding");
    EXPECT_EQ(changes[5].identity, "10.1.20.0/24");
    EXPECT_EQ(changes[5].after.at("Identity"), json::value("new@contoso.com"));
}

TEST(audit_lines, a_line_reads_back_as_written) {
    policy_file before;
    policy_file after;
    after.mailboxes.push_back(account("scanner@contoso.com"));
    const audit_entry e{1764936000, "alice (sudo)", "New-RelayAccount -Identity scanner@contoso.com -PasswordStdin",
                        policy_changes(before, after).at(0)};
    const auto back = parse_audit_line(to_json_line(e));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->time, e.time);
    EXPECT_EQ(back->who, e.who);
    EXPECT_EQ(back->what, e.what);
    EXPECT_EQ(back->change.kind, "Mailbox");
    EXPECT_EQ(back->change.identity, "scanner@contoso.com");
    EXPECT_TRUE(back->change.before.is_null());
    EXPECT_EQ(back->change.after, e.change.after);
    EXPECT_FALSE(parse_audit_line("{\"time\": 1, \"who\": \"a\"").has_value());  // a torn line
    EXPECT_FALSE(parse_audit_line("not json").has_value());
}

TEST(audit_cmdlets, a_hand_edit_is_named_by_the_cmdlet_that_makes_it) {
    policy_file before;
    before.mailboxes.push_back(account("scanner@contoso.com"));
    before.mailboxes.push_back(account("old@contoso.com"));
    policy_file after = before;
    after.org.smtp_client_authentication_disabled = false;
    after.org.max_recipients_per_day = 100;
    after.mailboxes[0].smtp_client_authentication_disabled = false;
    after.mailboxes.erase(after.mailboxes.begin() + 1);
    mailbox added = account("new@contoso.com");
    added.allowed_senders = {"new@contoso.com", "*@contoso.com"};
    after.mailboxes.push_back(added);
    binding b;
    b.network_text = "10.1.20.0/24";
    b.identity = "new@contoso.com";
    after.bindings.push_back(b);
    std::vector<std::string> cmdlets;
    for (const auto& c : policy_changes(before, after)) cmdlets.push_back(cmdlet_for(c));
    EXPECT_THAT(cmdlets, ::testing::ElementsAre(
                             "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
                             "Set-OrganizationConfig -MaxRecipientsPerDay 100",
                             "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false",
                             "Remove-RelayAccount -Identity old@contoso.com",
                             "New-RelayAccount -Identity new@contoso.com -PasswordStdin -AllowedSenders "
                             "new@contoso.com,*@contoso.com -NullSender rewrite",
                             "New-RelayBinding -Network 10.1.20.0/24 -Identity new@contoso.com"));
}

TEST(audit_cmdlets, other_account_settings_and_a_password_are_set_relayaccount) {
    policy_file before;
    before.mailboxes.push_back(account("scanner@contoso.com"));
    policy_file after = before;
    after.mailboxes[0].password_hash = "$y$j9T$new$hash";
    after.mailboxes[0].upstream_mailbox = "relay two@contoso.com";
    const auto changes = policy_changes(before, after);
    ASSERT_EQ(changes.size(), 1U);
    EXPECT_EQ(cmdlet_for(changes[0]),
              "Set-RelayAccount -Identity scanner@contoso.com -PasswordStdin -UpstreamMailbox 'relay two@contoso.com'");
}

TEST(audit_cmdlets, powershell_values) {
    EXPECT_EQ(powershell_value(json::value(true)), "$true");
    EXPECT_EQ(powershell_value(json::value(nullptr)), "$null");
    EXPECT_EQ(powershell_value(json::value(42)), "42");
    EXPECT_EQ(powershell_value(json::value("plain@contoso.com")), "plain@contoso.com");
    EXPECT_EQ(powershell_value(json::value("Block Basic Auth")), "'Block Basic Auth'");
    EXPECT_EQ(powershell_value(json::value("it's")), "'it''s'");
    EXPECT_EQ(powershell_value(json::value("$null")), "$null");
    EXPECT_EQ(powershell_value(json::array{"a@x", "*@y"}), "a@x,*@y");
    EXPECT_EQ(powershell_value(json::array{}), "$null");
}

TEST(audit_cmdlets, changes_an_admin_verb_recorded_are_not_the_files) {
    policy_file before;
    before.mailboxes.push_back(account("scanner@contoso.com"));
    before.mailboxes.push_back(account("fax@contoso.com"));
    policy_file after = before;
    after.mailboxes[0].smtp_client_authentication_disabled = false;
    after.mailboxes[1].smtp_client_authentication_disabled = true;
    const auto changes = policy_changes(before, after);
    ASSERT_EQ(changes.size(), 2U);
    // The verb recorded the scanner's change (its identity in another case); the fax's is the file's.
    object_change cli = changes[0];
    cli.identity = "SCANNER@contoso.com";
    std::vector<audit_entry> recorded{{1, "alice", "Set-CASMailbox ...", cli}};
    const auto left = unrecorded(changes, recorded);
    ASSERT_EQ(left.size(), 1U);
    EXPECT_EQ(left[0].identity, "fax@contoso.com");
    EXPECT_TRUE(recorded.empty()) << "a record covers one change, once";
    EXPECT_EQ(unrecorded(changes, recorded).size(), 2U);
    // A recorded change to other values does not cover this one, and stays.
    object_change other = changes[1];
    other.after.as_object()["SmtpClientAuthenticationDisabled"] = false;
    std::vector<audit_entry> two{{1, "alice", "x", other}, {1, "alice", "y", cli}};
    EXPECT_EQ(unrecorded(changes, two).size(), 1U);
    ASSERT_EQ(two.size(), 1U);
    EXPECT_EQ(two[0].what, "x");
}

class audit_log_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("audit-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(audit_log_test, entries_are_appended_and_read_oldest_first) {
    const auto file = audit_log_path(dir_);
    EXPECT_TRUE(read_audit_log(file).empty()) << "a missing log is an empty one";
    policy_file before;
    policy_file after;
    after.org.smtp_client_authentication_disabled = false;
    const auto change = policy_changes(before, after).at(0);
    {
        audit_log log(file);
        log.append({{10, "alice", "Set-TransportConfig -SmtpClientAuthenticationDisabled $false", change}});
    }
    {
        audit_log log(file);
        log.append({{20, "bob", "Set-TransportConfig -SmtpClientAuthenticationDisabled $false", change}});
    }
    std::ofstream(file, std::ios::app) << "{\"time\": 30, \"who\"";  // a write cut short
    const auto entries = read_audit_log(file);
    ASSERT_EQ(entries.size(), 2U);
    EXPECT_EQ(entries[0].who, "alice");
    EXPECT_EQ(entries[1].who, "bob");
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640U & ~static_cast<unsigned>(::umask(::umask(0))));
}

TEST_F(audit_log_test, reading_from_an_offset_gives_what_was_added_since) {
    const auto file = audit_log_path(dir_);
    std::uintmax_t offset = 0;
    EXPECT_TRUE(read_audit_log_from(file, offset).empty());
    EXPECT_EQ(offset, 0U);
    policy_file before;
    policy_file after;
    after.org.smtp_client_authentication_disabled = false;
    const auto change = policy_changes(before, after).at(0);
    audit_log(file).append({{10, "alice", "one", change}});
    EXPECT_EQ(read_audit_log_from(file, offset).size(), 1U);
    EXPECT_EQ(offset, std::filesystem::file_size(file));
    audit_log(file).append({{20, "bob", "two", change}});
    const auto added = read_audit_log_from(file, offset);
    ASSERT_EQ(added.size(), 1U);
    EXPECT_EQ(added[0].what, "two");
    EXPECT_TRUE(read_audit_log_from(file, offset).empty());
}

TEST_F(audit_log_test, a_log_that_cannot_be_opened_says_so) {
    const auto file = dir_ / "missing-directory" / "audit.log";
    try {
        audit_log log(file);
        FAIL() << "opened " << file;
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(e.what(), HasSubstr(file.string()));
        EXPECT_THAT(e.what(), HasSubstr("a change that cannot be recorded is not made"));
    }
}

}  // namespace
}  // namespace subrelay::policy

namespace subrelay::policy {
namespace {

class hand_edit_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("hand-edit-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(hand_edit_test, what_no_verb_recorded_is_the_files_and_is_recorded_once) {
    const auto file = audit_log_path(dir_);
    policy_file before;
    policy_file after = before;
    after.org.smtp_client_authentication_disabled = false;
    const auto change = policy_changes(before, after).at(0);
    // An entry from before the recorder started is not matched.
    audit_log(file).append({{100, "alice", "Set-TransportConfig -SmtpClientAuthenticationDisabled $false", change}});
    hand_edit_recorder recorder(file);
    auto recorded = recorder.record({change}, 200);
    ASSERT_EQ(recorded.size(), 1U);
    EXPECT_EQ(recorded[0].who, "file");
    EXPECT_EQ(recorded[0].what, "Set-TransportConfig -SmtpClientAuthenticationDisabled $false");
    // A verb's record written after the recorder started covers its change.
    audit_log(file).append({{300, "bob", "Set-TransportConfig -SmtpClientAuthenticationDisabled $false", change}});
    EXPECT_TRUE(recorder.record({change}, 301).empty());
    EXPECT_EQ(recorder.record({change}, 302).size(), 1U) << "a verb's record covers one change, not every later one";
    EXPECT_EQ(read_audit_log(file).size(), 4U);
    EXPECT_TRUE(recorder.record({}, 400).empty());
}

}  // namespace
}  // namespace subrelay::policy
