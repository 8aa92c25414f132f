#include "smtp/received.hpp"

#include <gtest/gtest.h>

namespace subrelay::smtp {
namespace {

class fixed_clock final : public clock {
public:
    explicit fixed_clock(wall_time t) : t_(t) {}
    [[nodiscard]] wall_time now() const override { return t_; }

private:
    wall_time t_;
};

TEST(received, full_header) {
    received_info i;
    i.helo = "printer.lan";
    i.client_ip = "192.0.2.7";
    i.by = "relay.example.com";
    i.protocol = "ESMTPSA";
    i.id = "0123ABCD";
    i.tls = "TLSv1.3 cipher TLS_AES_256_GCM_SHA384";
    i.single_recipient = "bob@example.org";
    i.date = "Sat, 28 Nov 2026 12:00:00 +0000";
    EXPECT_EQ(received_header(i),
              "Received: from printer.lan ([192.0.2.7])\r\n"
              "\tby relay.example.com with ESMTPSA id 0123ABCD\r\n"
              "\t(TLSv1.3 cipher TLS_AES_256_GCM_SHA384)\r\n"
              "\tfor <bob@example.org>; Sat, 28 Nov 2026 12:00:00 +0000\r\n");
}

TEST(received, minimal_header_and_ipv6) {
    received_info i;
    i.helo = "h.lan";
    i.client_ip = "2001:db8::1";
    i.by = "relay";
    i.protocol = "ESMTP";
    i.id = "X";
    i.date = "D";
    EXPECT_EQ(received_header(i), "Received: from h.lan ([IPv6:2001:db8::1])\r\n\tby relay with ESMTP id X; D\r\n");
}

TEST(received, control_characters_cannot_inject_headers) {
    received_info i;
    i.helo = "evil\r\nBcc: victim@example.com";
    i.by = "relay";
    i.date = "D";
    const auto h = received_header(i);
    EXPECT_EQ(h.find("\r\nBcc"), std::string::npos);
    EXPECT_TRUE(h.ends_with("; D\r\n"));
    EXPECT_EQ(h.find('\n'), h.find("\r\n") + 1);
}

TEST(received, rfc5322_date_now_is_the_clocks_local_time) {
    EXPECT_EQ(rfc5322_date_now(fixed_clock({1795867200, 0})), "Sat, 28 Nov 2026 12:00:00 +0000");
    EXPECT_EQ(rfc5322_date_now(fixed_clock({1795867200, 3600})), "Sat, 28 Nov 2026 13:00:00 +0100");
    EXPECT_EQ(rfc5322_date_now(fixed_clock({1795867200, -(3 * 3600 + 30 * 60)})), "Sat, 28 Nov 2026 08:30:00 -0330");
}

// What the relay prepends, dated by the clock, byte for byte.
TEST(received, header_at_a_fixed_time_byte_for_byte) {
    received_info i;
    i.helo = "scanner-3f.lan";
    i.client_ip = "10.1.20.7";
    i.by = "relay.contoso.com";
    i.protocol = "ESMTPSA";
    i.id = "4F2A9C0B1D";
    i.tls = "TLSv1.2 cipher ECDHE-RSA-AES256-GCM-SHA384";
    i.single_recipient = "accounting@contoso.com";
    i.date = rfc5322_date_now(fixed_clock({1795867200 + 3723, 3600}));
    EXPECT_EQ(received_header(i),
              "Received: from scanner-3f.lan ([10.1.20.7])\r\n"
              "\tby relay.contoso.com with ESMTPSA id 4F2A9C0B1D\r\n"
              "\t(TLSv1.2 cipher ECDHE-RSA-AES256-GCM-SHA384)\r\n"
              "\tfor <accounting@contoso.com>; Sat, 28 Nov 2026 14:02:03 +0100\r\n");
}


// A 2,063-octet line once went upstream: no line of the header may pass
// 998 octets, and the whole stays within the room SIZE leaves for it.
TEST(received, no_line_passes_998_octets_and_the_header_fits_its_room) {
    received_info i;
    i.helo = std::string(300, 'h') + ".example";  // longer than any session lets through
    i.client_ip = "2001:db8::1";
    i.by = "relay.example.com";
    i.protocol = "ESMTPSA";
    i.id = "0123ABCD";
    i.tls = "TLSv1.3 cipher TLS_AES_256_GCM_SHA384";
    i.date = "Sat, 28 Nov 2026 12:00:00 +0000";
    for (const std::size_t local : {10u, 900u, 990u, 2000u}) {
        i.single_recipient = std::string(local, 'r') + "@example.org";
        const std::string h = received_header(i);
        EXPECT_LE(h.size(), max_received_header) << local;
        std::size_t start = 0;
        for (std::size_t end; (end = h.find("\r\n", start)) != std::string::npos; start = end + 2)
            EXPECT_LE(end - start, 998u) << "recipient of " << local << ": " << h.substr(start, 60);
        EXPECT_EQ(h.find("for <") != std::string::npos, local < 950) << h.substr(0, 80);
        EXPECT_NE(h.find(std::string(255, 'h')), std::string::npos);
        EXPECT_EQ(h.find(std::string(256, 'h')), std::string::npos) << "the HELO name is cut at 255";
    }
}

TEST(received, a_bare_helo_name_is_noted) {
    received_info i;
    i.helo = "NPI7A2B3C";
    i.client_ip = "192.0.2.7";
    i.by = "relay";
    i.date = "Sat, 28 Nov 2026 12:00:00 +0000";
    EXPECT_TRUE(received_header(i).starts_with("Received: from NPI7A2B3C (HELO name without a domain) ([192.0.2.7])\r\n"));
    i.helo = "printer.lan";
    EXPECT_TRUE(received_header(i).starts_with("Received: from printer.lan ([192.0.2.7])\r\n"));
    i.helo = "[192.0.2.7]";
    EXPECT_TRUE(received_header(i).starts_with("Received: from [192.0.2.7] ([192.0.2.7])\r\n"));
}

}  // namespace
}  // namespace subrelay::smtp
