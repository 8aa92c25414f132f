#include "relay/server/proxy_header.hpp"

#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <string>
#include <string_view>

namespace subrelay::relay {
namespace {

using ::testing::HasSubstr;
using status = proxy_parse::status;

const std::string v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header: signature, version/command, family/transport, length, then `block`.
std::string v2(unsigned char version_command, unsigned char family, const std::string& block) {
    std::string h = v2_signature;
    h += static_cast<char>(version_command);
    h += static_cast<char>(family);
    h += static_cast<char>((block.size() >> 8) & 0xff);
    h += static_cast<char>(block.size() & 0xff);
    return h + block;
}

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (const int v : values) out += static_cast<char>(v);
    return out;
}

// 192.0.2.7:51234 -> 198.51.100.1:587
const std::string inet_block = bytes({192, 0, 2, 7, 198, 51, 100, 1, 0xc8, 0x22, 0x02, 0x4b});
// 2001:db8::7:51234 -> 2001:db8::1:465
const std::string inet6_block = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
                                       0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                       0xc8, 0x22, 0x01, 0xd1});

TEST(proxy_header, v1_tcp4_names_the_client_and_leaves_what_follows) {
    const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 587\r\n";
    const auto p = parse_proxy_header(line + "EHLO x\r\n");
    ASSERT_EQ(p.state, status::done) << p.error;
    EXPECT_EQ(p.length, line.size());
    EXPECT_EQ(p.header.version, 1);
    EXPECT_FALSE(p.header.local);
    EXPECT_EQ(p.header.source, "192.0.2.7");
    EXPECT_EQ(p.header.source_port, 51234);
    EXPECT_EQ(p.header.destination, "198.51.100.1");
    EXPECT_EQ(p.header.destination_port, 587);
}

TEST(proxy_header, v1_tcp6_address_comes_back_in_canonical_form) {
    const auto p = parse_proxy_header("PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 65535 0\r\n");
    ASSERT_EQ(p.state, status::done) << p.error;
    EXPECT_EQ(p.header.source, "2001:db8::7");
    EXPECT_EQ(p.header.source_port, 65535);
    EXPECT_EQ(p.header.destination_port, 0);
}

TEST(proxy_header, v1_unknown_names_no_client) {
    for (const std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
        const auto p = parse_proxy_header(line + "\x16\x03\x01");
        ASSERT_EQ(p.state, status::done) << line;
        EXPECT_EQ(p.length, line.size());
        EXPECT_TRUE(p.header.source.empty());
    }
}

TEST(proxy_header, v1_family_must_match_the_addresses) {
    EXPECT_EQ(parse_proxy_header("PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n").state, status::invalid);
    EXPECT_EQ(parse_proxy_header("PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n").state, status::invalid);
    EXPECT_EQ(parse_proxy_header("PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n").state, status::invalid);
}

TEST(proxy_header, v1_malformed_lines_are_invalid) {
    for (const std::string& line : std::initializer_list<std::string>{
             "PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",          // a field missing
             "PROXY TCP4 192.0.2.7 198.51.100.1 51234 587 9\r\n",    // one too many
             "PROXY TCP4  192.0.2.7 198.51.100.1 51234 587\r\n",     // two spaces
             "PROXY TCP4 192.0.2.7 198.51.100.1 65536 587\r\n",      // port out of range
             "PROXY TCP4 192.0.2.7 198.51.100.1 0587 587\r\n",       // leading zero
             "PROXY TCP4 192.0.2.7 198.51.100.1 -1 587\r\n",
             "PROXY TCP4 192.0.2.256 198.51.100.1 1 587\r\n",
             "PROXY TCP4 192.0.2.7 198.51.100.1 1 587\n",            // bare LF
             "PROXY TCP4 192.0.2.7\r198.51.100.1 1 587\r\n",         // CR without LF
             std::string("PROXY TCP4 192.0.2.7\0 198.51.100.1 1 587\r\n", 42),
             "proxy TCP4 192.0.2.7 198.51.100.1 1 587\r\n",          // the signature is case-sensitive
             "PROXY\r\n",
         }) {
        EXPECT_EQ(parse_proxy_header(line).state, status::invalid) << line;
    }
}

TEST(proxy_header, anything_else_is_not_a_header) {
    for (const std::string text : {"EHLO scanner\r\n", "\x16\x03\x01\x02\x00", "\r\n\r\n\r\n", "PROXX"}) {
        const auto p = parse_proxy_header(text);
        EXPECT_EQ(p.state, status::invalid) << text;
        EXPECT_FALSE(p.error.empty());
    }
}

TEST(proxy_header, v1_is_at_most_107_bytes) {
    // The longest valid line (TCP6 with the longest addresses and ports) is 104 bytes.
    const std::string longest =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    EXPECT_EQ(parse_proxy_header(longest).state, status::done);
    // UNKNOWN may carry anything up to the limit, CRLF included.
    const std::string at_limit = "PROXY UNKNOWN " + std::string(proxy_v1_max_length - 16, 'x') + "\r\n";
    ASSERT_EQ(at_limit.size(), proxy_v1_max_length);
    EXPECT_EQ(parse_proxy_header(at_limit).state, status::done);
    const std::string over = "PROXY UNKNOWN " + std::string(proxy_v1_max_length - 15, 'x') + "\r\n";
    const auto p = parse_proxy_header(over);
    EXPECT_EQ(p.state, status::invalid);
    EXPECT_THAT(p.error, HasSubstr("107"));
    // Without a CRLF, 107 bytes are enough to know.
    EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(200, 'x')).state, status::invalid);
}

TEST(proxy_header, v1_truncated_asks_for_no_more_than_the_limit) {
    const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 587\r\n";
    for (std::size_t n = 0; n < line.size(); ++n) {
        const auto p = parse_proxy_header(std::string_view(line).substr(0, n));
        ASSERT_EQ(p.state, status::incomplete) << n;
        EXPECT_GT(p.wanted, 0U);
        EXPECT_LE(n + p.wanted, proxy_v1_max_length) << n;
    }
}

TEST(proxy_header, v2_proxy_inet) {
    const std::string h = v2(0x21, 0x11, inet_block);
    const auto p = parse_proxy_header(h + "\x16\x03\x01");
    ASSERT_EQ(p.state, status::done) << p.error;
    EXPECT_EQ(p.length, h.size());
    EXPECT_EQ(p.header.version, 2);
    EXPECT_FALSE(p.header.local);
    EXPECT_EQ(p.header.source, "192.0.2.7");
    EXPECT_EQ(p.header.source_port, 51234);
    EXPECT_EQ(p.header.destination, "198.51.100.1");
    EXPECT_EQ(p.header.destination_port, 587);
}

TEST(proxy_header, v2_proxy_inet6) {
    const std::string h = v2(0x21, 0x21, inet6_block);
    const auto p = parse_proxy_header(h);
    ASSERT_EQ(p.state, status::done) << p.error;
    EXPECT_EQ(p.length, h.size());
    EXPECT_EQ(p.header.source, "2001:db8::7");
    EXPECT_EQ(p.header.destination, "2001:db8::1");
    EXPECT_EQ(p.header.destination_port, 465);
}

TEST(proxy_header, v2_local_names_no_client) {
    // HAProxy's health checks: LOCAL, family UNSPEC, no addresses.
    const auto p = parse_proxy_header(v2(0x20, 0x00, ""));
    ASSERT_EQ(p.state, status::done) << p.error;
    EXPECT_EQ(p.length, 16U);
    EXPECT_TRUE(p.header.local);
    EXPECT_TRUE(p.header.source.empty());
    // A LOCAL header's addresses, if any, are not the client's.
    const auto q = parse_proxy_header(v2(0x20, 0x11, inet_block));
    ASSERT_EQ(q.state, status::done);
    EXPECT_TRUE(q.header.local);
    EXPECT_TRUE(q.header.source.empty());
}

TEST(proxy_header, v2_unspec_unix_and_udp_name_no_client) {
    EXPECT_TRUE(parse_proxy_header(v2(0x21, 0x00, "")).header.source.empty());
    const auto unix_socket = parse_proxy_header(v2(0x21, 0x31, std::string(216, 'p')));
    ASSERT_EQ(unix_socket.state, status::done);
    EXPECT_TRUE(unix_socket.header.source.empty());
    const auto udp = parse_proxy_header(v2(0x21, 0x12, inet_block));
    ASSERT_EQ(udp.state, status::done);
    EXPECT_TRUE(udp.header.source.empty());
}

TEST(proxy_header, v2_tlvs_are_skipped) {
    // PP2_TYPE_ALPN "smtp", PP2_TYPE_UNIQUE_ID, and a type nobody knows.
    const std::string tlvs = bytes({0x01, 0x00, 0x04}) + "smtp" + bytes({0x05, 0x00, 0x03}) + "abc" +
                             bytes({0xee, 0x00, 0x01, 0x00});
    const std::string h = v2(0x21, 0x11, inet_block + tlvs);
    const auto p = parse_proxy_header(h + "EHLO");
    ASSERT_EQ(p.state, status::done) << p.error;
    EXPECT_EQ(p.length, h.size());
    EXPECT_EQ(p.header.source, "192.0.2.7");
}

TEST(proxy_header, v2_truncated_asks_for_exactly_the_rest) {
    const std::string h = v2(0x21, 0x21, inet6_block);
    for (std::size_t n = 0; n < h.size(); ++n) {
        const auto p = parse_proxy_header(std::string_view(h).substr(0, n));
        ASSERT_EQ(p.state, status::incomplete) << n;
        // Reading `wanted` more never passes the end of the header.
        EXPECT_GT(p.wanted, 0U);
        EXPECT_LE(n + p.wanted, h.size()) << n;
    }
}

TEST(proxy_header, v2_malformed_headers_are_invalid) {
    EXPECT_THAT(parse_proxy_header(v2(0x11, 0x11, inet_block)).error, HasSubstr("version"));
    EXPECT_THAT(parse_proxy_header(v2(0x22, 0x11, inet_block)).error, HasSubstr("command"));
    // An address block too short for its family.
    EXPECT_EQ(parse_proxy_header(v2(0x21, 0x11, inet_block.substr(0, 11))).state, status::invalid);
    EXPECT_EQ(parse_proxy_header(v2(0x21, 0x21, inet_block)).state, status::invalid);
}

TEST(proxy_header, v2_length_is_limited) {
    const std::string at_limit = v2(0x21, 0x11, inet_block + std::string(proxy_v2_max_length - 16 - 12, '\0'));
    EXPECT_EQ(at_limit.size(), proxy_v2_max_length);
    EXPECT_EQ(parse_proxy_header(at_limit).state, status::done);
    // Refused from its fixed part alone, before the rest is read.
    const std::string over = v2(0x21, 0x11, inet_block + std::string(proxy_v2_max_length - 16 - 11, '\0'));
    const auto p = parse_proxy_header(std::string_view(over).substr(0, 16));
    EXPECT_EQ(p.state, status::invalid);
    EXPECT_THAT(p.error, HasSubstr("4096"));
}

}  // namespace
}  // namespace subrelay::relay
