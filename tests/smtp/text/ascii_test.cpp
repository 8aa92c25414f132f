#include "smtp/text/ascii.hpp"

#include <gtest/gtest.h>

namespace subrelay::text {
namespace {

TEST(ascii, lower_and_upper_change_letters_only) {
    EXPECT_EQ(ascii_lower("Alice@Example.COM"), "alice@example.com");
    EXPECT_EQ(ascii_upper("auth=Bearer x-1_z"), "AUTH=BEARER X-1_Z");
    EXPECT_EQ(ascii_lower(""), "");
    // Bytes outside ASCII are kept as they are, whatever the locale.
    EXPECT_EQ(ascii_lower("J\xC3\x96RG@B\xC3\x9C"), "j\xC3\x96rg@b\xC3\x9C");
    EXPECT_EQ(ascii_upper("\xC3\xB6@[]\x7F"), "\xC3\xB6@[]\x7F");
}

TEST(ascii, iequals) {
    EXPECT_TRUE(iequals("Alice@Example.com", "aLICE@example.COM"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("alice", "alic"));
    EXPECT_FALSE(iequals("alice", "alicf"));
    EXPECT_FALSE(iequals("@", "`"));   // 0x40 and 0x60 differ by the case bit but are not letters
    EXPECT_FALSE(iequals("[", "{"));
    EXPECT_FALSE(iequals("\xC3\x96", "\xC3\xB6"));  // no case folding beyond ASCII
}

TEST(ascii, trim_blanks) {
    EXPECT_EQ(trim("  \tMAIL FROM:<a@b> \t"), "MAIL FROM:<a@b>");
    EXPECT_EQ(trim("inner  space"), "inner  space");
    EXPECT_EQ(trim(" \t "), "");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("x\r\n"), "x\r\n");  // CR and LF are not blanks by default
}

TEST(ascii, trim_chosen_characters) {
    EXPECT_EQ(trim(" value\r\n", " \t\r\n"), "value");
    EXPECT_EQ(trim("\r\n\r\n", " \t\r\n"), "");
    EXPECT_EQ(trim("--x--", "-"), "x");
}

TEST(ascii, trim_returns_a_view_into_the_input) {
    const std::string s = "  abc  ";
    const auto t = trim(s);
    EXPECT_EQ(t.data(), s.data() + 2);
    EXPECT_EQ(t.size(), 3u);
}

}  // namespace
}  // namespace subrelay::text
