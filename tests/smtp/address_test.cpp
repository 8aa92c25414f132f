#include "smtp/address.hpp"

#include <gtest/gtest.h>

namespace subrelay::smtp {
namespace {

TEST(address, valid_mailboxes) {
    for (const char* ok : {"alice@example.com", "a.b+tag@sub.example.co.uk", "x@localhost", "\"john doe\"@example.com",
                           "\"a\\\"b\"@example.com", "!#$%&'*+-/=?^_`{|}~@example.com", "user@[192.0.2.1]",
                           "user@[IPv6:2001:db8::1]", "user@[IPv6:::1]", "user@[IPv6:1:2:3:4:5:6:7:8]",
                           "user@[IPv6:::ffff:192.0.2.1]", "user@[tag:something]", "a@b-c.d"}) {
        EXPECT_TRUE(valid_mailbox(ok)) << ok;
    }
}

TEST(address, invalid_mailboxes) {
    for (const char* bad : {"", "alice", "@example.com", "alice@", "a..b@example.com", ".a@example.com",
                            "a.@example.com", "a b@example.com", "a@exa mple.com", "a@-example.com", "a@example-.com",
                            "a@example..com", "a@[300.1.1.1]", "a@[1.2.3]", "a@[IPv6:1:2:3]", "a@[IPv6:1::2::3]",
                            "\"unterminated@example.com", "a@b@c", "a<b@example.com", "a@ex_ample.com",
                            "a\r\n@example.com"}) {
        EXPECT_FALSE(valid_mailbox(bad)) << bad;
    }
}

// Found by the address fuzz target: a general address literal may hold ">"
// or a quote by RFC 5321's grammar, but a path ends at the first ">" outside
// quotes, so the address was valid yet "MAIL FROM:<user@[IP:a>b]>" was
// refused as a bad address.
TEST(address, general_literal_without_angle_brackets_or_quotes) {
    EXPECT_FALSE(valid_mailbox("user@[IP:o1:d*.com>]"));
    EXPECT_FALSE(valid_mailbox("user@[tag:a<b]"));
    // The same with a quote, after which the path's ">" was not seen.
    EXPECT_FALSE(valid_mailbox("un@[IPom::SIZEcd\"o.:om~]"));
    EXPECT_TRUE(valid_mailbox("user@[tag:a=b]"));
}

TEST(address, length_limits) {
    EXPECT_TRUE(valid_mailbox(std::string(64, 'a') + "@example.com"));
    EXPECT_FALSE(valid_mailbox(std::string(65, 'a') + "@example.com"));
    EXPECT_FALSE(valid_mailbox("a@" + std::string(64, 'b') + ".com"));
}

TEST(address, utf8) {
    const std::string u = "j\xc3\xb6rg@b\xc3\xbc" "cher.example";  // jörg@bücher.example
    EXPECT_TRUE(valid_mailbox(u, true));
    EXPECT_FALSE(valid_mailbox(u, false));
    EXPECT_FALSE(valid_mailbox("j\xc3@example.com", true));      // truncated sequence
    EXPECT_FALSE(valid_mailbox("j\xc0\xaf@example.com", true));  // overlong
}

TEST(address, helpers) {
    EXPECT_EQ(domain_of("a@example.com"), "example.com");
    EXPECT_EQ(domain_of("\"a@b\"@example.com"), "example.com");
    EXPECT_EQ(domain_of("nodomain"), "");
}


TEST(helo_name, what_devices_send) {
    EXPECT_EQ(classify_helo_name("printer.contoso.lan"), helo_name::domain);
    EXPECT_EQ(classify_helo_name("HP_LaserJet.lan"), helo_name::domain);
    EXPECT_EQ(classify_helo_name("scanner.example."), helo_name::domain);
    EXPECT_EQ(classify_helo_name("192.168.1.20"), helo_name::domain);
    EXPECT_EQ(classify_helo_name("[192.168.1.20]"), helo_name::address_literal);
    EXPECT_EQ(classify_helo_name("[IPv6:2001:db8::1]"), helo_name::address_literal);
    EXPECT_EQ(classify_helo_name("NPI7A2B3C"), helo_name::bare);
    EXPECT_EQ(classify_helo_name("b\xc3\xbcro"), helo_name::bare);
    EXPECT_EQ(classify_helo_name(std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                 std::string(63, 'c') + "." + std::string(63, 'd')), helo_name::domain);
    EXPECT_EQ(classify_helo_name(std::string(64, 'a') + ".example"), helo_name::invalid);
    EXPECT_EQ(classify_helo_name(std::string(256, 'a')), helo_name::too_long);
    for (const char* bad : {"", "two words", "a..b", ".a", "<x>", "[192.0.2.300]", "[unclosed", "a;b", "\xff"})
        EXPECT_EQ(classify_helo_name(bad), helo_name::invalid) << bad;
}

}  // namespace
}  // namespace subrelay::smtp
