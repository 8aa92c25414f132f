#include "smtp/received.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace subrelay::smtp {
namespace {

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
    i.helo = "h";
    i.client_ip = "2001:db8::1";
    i.by = "relay";
    i.protocol = "ESMTP";
    i.id = "X";
    i.date = "D";
    EXPECT_EQ(received_header(i), "Received: from h ([IPv6:2001:db8::1])\r\n\tby relay with ESMTP id X; D\r\n");
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

TEST(received, rfc5322_date_now_shape) {
    const std::regex shape(R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4})");
    EXPECT_TRUE(std::regex_match(rfc5322_date_now(), shape)) << rfc5322_date_now();
}

}  // namespace
}  // namespace subrelay::smtp
