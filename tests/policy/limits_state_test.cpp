#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "policy/limits_state.hpp"
#include "tests/relay/temp_dir.hpp"

namespace subrelay::policy {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using sys_time = std::chrono::system_clock::time_point;

// 2026-01-01 12:00:00 UTC: 1767268800 s since the epoch.
const sys_time noon = sys_time(std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)) + 12h;

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The error parse_limits_state throws for `text` (empty when it throws none).
std::string parse_error(std::string_view text) {
    try {
        (void)parse_limits_state(text);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

TEST(limits_state_format, written_as_documented) {
    const limiter_snapshot s{{
        {"scanner@contoso.com", {noon, noon + 1500ms}, {{noon, 3}}},
        {"odd name%\n@contoso.com", {}, {{noon - 1h, 1}}},
    }};
    EXPECT_EQ(format_limits_state(s),
              "subrelay-limits 1\n"
              "account scanner@contoso.com\n"
              "message 1767268800000\n"
              "message 1767268801500\n"
              "recipients 1767268800000 3\n"
              "account odd%20name%25%0A@contoso.com\n"
              "recipients 1767265200000 1\n"
              "end\n");
    EXPECT_EQ(format_limits_state({}), "subrelay-limits 1\nend\n");
}

TEST(limits_state_format, round_trip) {
    const limiter_snapshot s{{
        {"a@contoso.com", {noon - 59s, noon - 1ms, noon}, {{noon - 23h, 2}, {noon, 500}}},
        {"b@contoso.com", {}, {{noon - 2h, 1}}},
        {"c\t%@contoso.com \x7f\xc3\xbc", {noon}, {}},
    }};
    EXPECT_EQ(parse_limits_state(format_limits_state(s)), s);
    EXPECT_EQ(parse_limits_state(format_limits_state({})), limiter_snapshot{});
}

// Times are kept to the millisecond; out of range ones are written as the
// nearest time a file may hold (long past, or far ahead: the same to the
// reader, who drops or clamps them).
TEST(limits_state_format, times_to_the_millisecond) {
    const limiter_snapshot s{{{"a@contoso.com", {noon + 1500us, sys_time::min(), sys_time::max()}, {}}}};
    const auto back = parse_limits_state(format_limits_state(s));
    ASSERT_EQ(back.accounts.size(), 1U);
    EXPECT_EQ(back.accounts[0].messages[0], noon + 1ms);
    EXPECT_EQ(back.accounts[0].messages[1], sys_time{});
    EXPECT_GT(back.accounts[0].messages[2], noon + 24h * 365 * 200);
}

TEST(limits_state_format, damaged_contents_are_named) {
    const std::string head = "subrelay-limits 1\naccount a@contoso.com\n";
    const struct {
        std::string text;
        std::string error;
    } cases[] = {
        {"", "line 1: the file is empty"},
        {"\n", "line 1: not a subrelay limits state file"},
        {"subrelay-state 1\nend\n", "line 1: not a subrelay limits state file"},
        {"subrelay-limits 2\nend\n", "line 1: unknown version \"2\""},
        {"subrelay-limits x\nend\n", "line 1: unknown version \"x\""},
        {"subrelay-limits 1\n", "line 1: the file is cut short (no end line)"},
        {head + "message 1767268800000\n", "line 3: the file is cut short (no end line)"},
        {head + "message 17672688", "line 3: the file is cut short (no newline at its end)"},
        {head + "end", "line 3: the file is cut short (no newline at its end)"},
        {head + "end\nmessage 1\n", "line 4: text after the end line"},
        {"subrelay-limits 1\nmessage 1767268800000\nend\n", "line 2: message before any account line"},
        {"subrelay-limits 1\nrecipients 1767268800000 1\nend\n", "line 2: recipients before any account line"},
        {head + "message yesterday\nend\n", "line 3: \"yesterday\" is not a time (milliseconds since 1970)"},
        {head + "message -5\nend\n", "line 3: \"-5\" is not a time"},
        {head + "message \nend\n", "line 3: \"\" is not a time"},
        {head + "message 99999999999999999\nend\n", "line 3: time \"99999999999999999\" is out of range"},
        {head + "message 1767268800000 3\nend\n", "line 3: \"1767268800000 3\" is not a time"},
        {head + "recipients 1767268800000\nend\n", "line 3: recipients without a count"},
        {head + "recipients 1767268800000 0\nend\n", "line 3: \"0\" is not a count of recipients"},
        {head + "recipients 1767268800000 many\nend\n", "line 3: \"many\" is not a count of recipients"},
        {head + "recipients 1767268800000 1000000001\nend\n", "line 3: \"1000000001\" is not a count"},
        {"subrelay-limits 1\naccount \nend\n", "line 2: bad account identity"},
        {"subrelay-limits 1\naccount a%4\nend\n", "line 2: bad account identity"},
        {"subrelay-limits 1\naccount a%zz\nend\n", "line 2: bad account identity"},
        {"subrelay-limits 1\naccount a b\nend\n", "line 2: bad account identity"},
        {head + "message 1767268800000\r\nend\n", "line 3: \"1767268800000?\" is not a time"},
        {head + "\nend\n", "line 3: unknown line \"\""},
        {head + "messages 1767268800000\nend\n", "line 3: unknown line \"messages 1767268800000\""},
        {"subrelay-limits 1\n" + std::string(4, '\0') + "\nend\n", "line 2: unknown line \"????\""},
    };
    for (const auto& c : cases) {
        EXPECT_THAT(parse_error(c.text), HasSubstr(c.error)) << "text: " << c.text;
    }
    EXPECT_EQ(parse_error(head + "message 1767268800000\nrecipients 1767268800000 3\nend\n"), "");
}

class limits_state_file_test : public ::testing::Test {
protected:
    void SetUp() override { dir_ = test_support::make_temp_dir("subrelay-limits-state-test"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::filesystem::path dir_;
};

TEST_F(limits_state_file_test, no_file_is_no_counters) {
    EXPECT_EQ(load_limits_state(dir_ / "limits.state"), std::nullopt);
}

TEST_F(limits_state_file_test, saved_atomically_and_private) {
    const auto file = dir_ / "limits.state";
    const limiter_snapshot s{{{"a@contoso.com", {noon}, {{noon, 4}}}}};
    save_limits_state(file, s);
    EXPECT_EQ(load_limits_state(file), s);
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600U);
    // Replaced as a whole; no temporary file is left.
    save_limits_state(file, {});
    EXPECT_EQ(load_limits_state(file), limiter_snapshot{});
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    EXPECT_THAT(names, ::testing::ElementsAre("limits.state"));
}

TEST_F(limits_state_file_test, a_damaged_file_is_named_with_what_is_wrong) {
    const auto file = dir_ / "limits.state";
    save_limits_state(file, {{{"a@contoso.com", {noon}, {}}}});
    std::string text = slurp(file);
    text.resize(text.size() - 2);  // cut off in the middle of the end line
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    try {
        (void)load_limits_state(file);
        FAIL() << "a damaged file was read";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), file.string() + ": line 4: the file is cut short (no newline at its end)");
    }
    std::ofstream(file, std::ios::binary | std::ios::trunc) << "garbage\n";
    EXPECT_THROW((void)load_limits_state(file), std::runtime_error);
}

TEST_F(limits_state_file_test, an_unreadable_file_is_named) {
    const auto file = dir_ / "limits.state";
    std::filesystem::create_directory(file);  // read(2) fails: EISDIR
    try {
        (void)load_limits_state(file);
        FAIL() << "a directory was read as a state file";
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("cannot read " + file.string() + ": "));
    }
    std::filesystem::remove(file);
    std::filesystem::create_symlink(dir_ / "elsewhere", file);  // never followed
    EXPECT_THROW((void)load_limits_state(file), std::runtime_error);
}

}  // namespace
}  // namespace subrelay::policy
