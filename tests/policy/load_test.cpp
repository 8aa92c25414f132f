#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "policy/policy.hpp"

namespace subrelay::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view hash = "$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg";

std::vector<std::string> messages(const load_result& r) {
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    return out;
}

// A [[mailbox]] entry with a valid hash plus `extra` lines.
std::string account(std::string_view identity, std::string_view extra = "") {
    return "[[mailbox]]\nidentity = \"" + std::string(identity) + "\"\npassword_hash = \"" + std::string(hash) + "\"\n" +
           std::string(extra) + "\n";
}

TEST(policy_load, full_file) {
    const auto r = load_text(R"(
[organization]
smtp_client_authentication_disabled = false

[[mailbox]]
identity = "scanner@contoso.com"
password_hash = "$y$j9T$salt$hash"
smtp_client_authentication_disabled = true
allowed_senders = ["scanner@contoso.com", "noreply@contoso.com"]
upstream_mailbox = "relay@contoso.com"

[[mailbox]]
identity = "Printer@Contoso.com"
password_hash = "$6$salt$hash"
)",
                             "policy.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_FALSE(r.policy.org.smtp_client_authentication_disabled);
    ASSERT_EQ(r.policy.mailboxes.size(), 2U);
    const auto& a = r.policy.mailboxes[0];
    EXPECT_EQ(a.identity, "scanner@contoso.com");
    EXPECT_EQ(a.password_hash, "$y$j9T$salt$hash");
    EXPECT_EQ(a.smtp_client_authentication_disabled, std::optional<bool>(true));
    EXPECT_THAT(a.allowed_senders, ElementsAre("scanner@contoso.com", "noreply@contoso.com"));
    EXPECT_EQ(a.upstream_mailbox, "relay@contoso.com");
    const auto& b = r.policy.mailboxes[1];
    EXPECT_EQ(b.identity, "Printer@Contoso.com") << "stored as written";
    EXPECT_FALSE(b.smtp_client_authentication_disabled.has_value());
    EXPECT_TRUE(b.allowed_senders.empty());
    EXPECT_TRUE(b.upstream_mailbox.empty());
}

TEST(policy_load, defaults) {
    const auto empty = load_text("[organization]\n", "policy.toml");
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty.policy.org.smtp_client_authentication_disabled) << "Microsoft's recommendation";
    EXPECT_TRUE(empty.policy.mailboxes.empty());
    const auto no_org = load_text(account("a@contoso.com"), "policy.toml");
    ASSERT_TRUE(no_org.ok()) << ::testing::PrintToString(messages(no_org));
    EXPECT_TRUE(no_org.policy.org.smtp_client_authentication_disabled);
}

// An empty file is one that was truncated or never written, not a policy
// that refuses every account.
TEST(policy_load, an_empty_file_is_an_error) {
    for (std::string_view text : {"", "\n\n", "   \n\t\n", "# only a comment\n# and another\n"}) {
        const auto r = load_text(text, "policy.toml");
        EXPECT_THAT(messages(r), ElementsAre("policy.toml: the file is empty (no [organization], [[mailbox]] or "
                                             "[[binding]]); an empty policy would refuse every account"))
            << ::testing::PrintToString(text);
    }
    // A file with only [organization] is a policy (no accounts yet).
    EXPECT_TRUE(load_text("[organization]\nsmtp_client_authentication_disabled = true\n", "policy.toml").ok());
}

TEST(policy_load, ends_complete_when_its_last_line_has_a_line_end) {
    const std::string whole = account("a@contoso.com", "smtp_client_authentication_disabled = true");
    EXPECT_TRUE(load_text(whole, "policy.toml").ends_complete);
    EXPECT_TRUE(load_text(whole + "\n\n  \n", "policy.toml").ends_complete);
    EXPECT_TRUE(load_text("[organization]\r\nsmtp_client_authentication_disabled = true\r\n", "policy.toml").ends_complete);
    // Cut inside the last line ("max_messages_per_minute = 10" as "= 1"):
    // still valid TOML, but not a complete table.
    const std::string without_end = account("a@contoso.com") + "max_messages_per_minute = 1";
    const auto r = load_text(without_end, "policy.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_FALSE(r.ends_complete);
    EXPECT_FALSE(ends_with_complete_table(""));
    EXPECT_FALSE(ends_with_complete_table("[organization]"));
    EXPECT_TRUE(ends_with_complete_table("[organization]\n"));
}

TEST(policy_load, every_accepted_hash_method) {
    for (std::string_view prefix : {"$y$", "$2b$", "$2a$", "$2y$", "$6$", "$5$", "$7$", "$gy$"}) {
        const std::string text = "[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"" + std::string(prefix) +
                                 "rest$of$hash\"\n";
        EXPECT_TRUE(load_text(text, "policy.toml").ok()) << prefix;
    }
}

TEST(policy_load_errors, required_fields) {
    const auto r = load_text("[[mailbox]]\nallowed_senders = []\n", "policy.toml");
    EXPECT_THAT(messages(r), ElementsAre("policy.toml: mailbox[0].identity: is required"));
}

TEST(policy_load, password_hash_may_be_absent_or_empty) {
    // An account used only through bindings: AUTH always fails for it.
    const auto r = load_text("[[mailbox]]\nidentity = \"a@contoso.com\"\n"
                             "[[mailbox]]\nidentity = \"b@contoso.com\"\npassword_hash = \"\"\n",
                             "policy.toml");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.policy.mailboxes.size(), 2U);
    EXPECT_TRUE(r.policy.mailboxes[0].password_hash.empty());
    EXPECT_TRUE(r.policy.mailboxes[1].password_hash.empty());
}

TEST(policy_load_errors, invalid_identity) {
    const auto r = load_text(account("scanner") + account("a b@contoso.com"), "policy.toml");
    EXPECT_THAT(messages(r), ElementsAre(R"(policy.toml: mailbox[0].identity: "scanner" is not a valid address)",
                                         R"(policy.toml: mailbox[1].identity: "a b@contoso.com" is not a valid address)"));
}

TEST(policy_load_errors, duplicate_identity_case_insensitive) {
    const auto r = load_text(account("scanner@contoso.com") + account("b@contoso.com") + account("SCANNER@Contoso.COM"),
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre(R"(policy.toml: mailbox[2].identity: "SCANNER@Contoso.COM" is already used by mailbox[0])"));
}

TEST(policy_load_errors, bad_hash_is_reported_without_echoing_it) {
    const auto r = load_text("[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"hunter2-plain\"\n", "policy.toml");
    ASSERT_EQ(r.errors.size(), 1U);
    EXPECT_THAT(r.errors[0].to_string(), StartsWith("policy.toml: mailbox[0].password_hash: must be a crypt(3) hash"));
    EXPECT_THAT(r.errors[0].to_string(), Not(HasSubstr("hunter2")));
    // A bare prefix is not a hash either.
    EXPECT_FALSE(load_text("[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"$6$\"\n", "policy.toml").ok());
    // Neither is a DES or MD5 hash.
    EXPECT_FALSE(load_text("[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"$1$salt$hash\"\n", "policy.toml").ok());
}

TEST(policy_load_errors, wrong_types) {
    const auto r = load_text(account("a@contoso.com", R"(smtp_client_authentication_disabled = "$null"
allowed_senders = "a@contoso.com")") + account("b@contoso.com", R"(allowed_senders = ["b@contoso.com", 7])"),
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre("policy.toml: mailbox[0].smtp_client_authentication_disabled: expected a boolean, got a string",
                            "policy.toml: mailbox[0].allowed_senders: expected an array, got a string",
                            "policy.toml: mailbox[1].allowed_senders[1]: expected a string, got an integer"));
}

TEST(policy_load_errors, invalid_senders_and_upstream_mailbox) {
    const auto r = load_text(account("a@contoso.com", R"(allowed_senders = ["a@contoso.com", "not-an-address"]
upstream_mailbox = "relay@")"),
                             "policy.toml");
    EXPECT_THAT(messages(r), ElementsAre(R"(policy.toml: mailbox[0].allowed_senders[1]: "not-an-address" is not a valid address)",
                                         R"(policy.toml: mailbox[0].upstream_mailbox: "relay@" is not a valid address)"));
}

TEST(policy_load_errors, unknown_keys) {
    const auto r = load_text("[organization]\nsmtp_client_authentication_disabled = true\nsmtp_auth = false\n"
                             "[limits]\nrate = 30\n" +
                                 account("a@contoso.com", "password = \"x\""),
                             "policy.toml");
    EXPECT_THAT(messages(r), ::testing::UnorderedElementsAre("policy.toml: organization.smtp_auth: unknown key",
                                                             "policy.toml: limits: unknown key",
                                                             "policy.toml: mailbox[0].password: unknown key"));
}

TEST(policy_load_errors, mailbox_must_be_an_array_of_tables) {
    const auto r = load_text("[mailbox]\nidentity = \"a@contoso.com\"\n", "policy.toml");
    EXPECT_THAT(messages(r), ElementsAre("policy.toml: mailbox: expected an array of tables ([[mailbox]]), got a table"));
    const auto elements = load_text("mailbox = [1]\n", "policy.toml");
    EXPECT_THAT(messages(elements), ElementsAre("policy.toml: mailbox[0]: expected a table, got an integer"));
    const auto org = load_text("organization = true\n", "policy.toml");
    EXPECT_THAT(messages(org), ElementsAre("policy.toml: organization: expected a table, got a boolean"));
}

TEST(policy_load_errors, every_problem_is_reported) {
    const auto r = load_text(R"(
[organization]
smtp_client_authentication_disabled = 1

[[mailbox]]
identity = "ok@contoso.com"
password_hash = "plain"

[[mailbox]]
password_hash = "$6$x$y"
colour = "red"
)",
                             "policy.toml");
    EXPECT_THAT(messages(r),
                ElementsAre("policy.toml: organization.smtp_client_authentication_disabled: expected a boolean, got an integer",
                            StartsWith("policy.toml: mailbox[0].password_hash: must be a crypt(3) hash"),
                            "policy.toml: mailbox[1].identity: is required", "policy.toml: mailbox[1].colour: unknown key"));
}

TEST(policy_load_errors, syntax_error_gives_one_error_with_the_line) {
    const auto r = load_text("[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"$6$x\n", "policy.toml");
    ASSERT_EQ(r.errors.size(), 1U);
    EXPECT_THAT(r.errors[0].to_string(), StartsWith("policy.toml: syntax error at line 3"));
}

class policy_file_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("subrelay-policy-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(policy_file_test, missing_file_is_an_error) {
    const auto file = dir_ / "policy.toml";
    const auto r = load_file(file);
    ASSERT_EQ(r.errors.size(), 1U);
    EXPECT_TRUE(r.errors[0].key.empty());
    EXPECT_THAT(r.errors[0].to_string(), StartsWith(file.string() + ": cannot read file"));
}

TEST_F(policy_file_test, an_empty_file_is_an_error_naming_the_file) {
    const auto file = dir_ / "policy.toml";
    std::ofstream(file).close();
    const auto r = load_file(file);
    EXPECT_THAT(messages(r), ElementsAre(StartsWith(file.string() + ": the file is empty")));
}

TEST_F(policy_file_test, a_directory_is_an_error) {
    const auto file = dir_ / "policy.toml";
    std::filesystem::create_directory(file);
    const auto r = load_file(file);
    EXPECT_THAT(messages(r), ElementsAre(file.string() + ": is a directory, not a policy file"));
}

TEST_F(policy_file_test, a_fifo_is_an_error_and_is_not_opened) {
    const auto file = dir_ / "policy.toml";
    ASSERT_EQ(::mkfifo(file.c_str(), 0600), 0);
    const auto r = load_file(file);  // opening it would block: no writer
    EXPECT_THAT(messages(r), ElementsAre(file.string() + ": is not a regular file"));
}

TEST_F(policy_file_test, reads_a_file_and_names_it_in_errors) {
    const auto file = dir_ / "policy.toml";
    std::ofstream(file) << account("a@contoso.com") << "[[mailbox]]\nidentity = 5\npassword_hash = \"$6$a$b\"\n";
    const auto r = load_file(file);
    EXPECT_THAT(messages(r), ElementsAre(file.string() + ": mailbox[1].identity: expected a string, got an integer"));
    ASSERT_GE(r.policy.mailboxes.size(), 1U);
    EXPECT_EQ(r.policy.mailboxes[0].identity, "a@contoso.com");
}

TEST(policy_load_errors, error_format) {
    load_error e{"policy.toml", "mailbox[2].identity", "is required"};
    EXPECT_EQ(e.to_string(), "policy.toml: mailbox[2].identity: is required");
    load_error f{"policy.toml", "", "cannot read file"};
    EXPECT_EQ(f.to_string(), "policy.toml: cannot read file");
}

}  // namespace
}  // namespace subrelay::policy
