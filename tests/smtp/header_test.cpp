#include "smtp/header.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace subrelay::smtp {
namespace {

using list = std::vector<std::string>;

list addresses(std::string_view value) {
    auto r = parse_address_list(value);
    if (const auto* e = std::get_if<header_error>(&r)) {
        ADD_FAILURE() << "'" << value << "': " << e->message;
        return {};
    }
    return std::get<list>(r);
}

bool refused(std::string_view value) { return std::holds_alternative<header_error>(parse_address_list(value)); }

TEST(address_list, mailboxes) {
    EXPECT_EQ(addresses("ceo@contoso.com"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses(" <ceo@contoso.com> "), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses("The CEO <ceo@contoso.com>"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses("\"The CEO\" <ceo@contoso.com>"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses("a@x.example, B <b@y.example>,c@z.example"), (list{"a@x.example", "b@y.example", "c@z.example"}));
}

TEST(address_list, display_names) {
    // Quoted strings with escapes, and specials inside them.
    EXPECT_EQ(addresses(R"("Doe, John \"JD\" <boss@x>" <john@contoso.com>)"), list{"john@contoso.com"});
    // A display name that looks like an address is only a name when quoted.
    EXPECT_EQ(addresses(R"("ceo@contoso.com" <scanner@contoso.com>)"), list{"scanner@contoso.com"});
    // Encoded words are atoms.
    EXPECT_EQ(addresses("=?utf-8?B?RGVy?= =?utf-8?Q?Chef_=C3=A4?= <ceo@contoso.com>"), list{"ceo@contoso.com"});
    // UTF-8 (RFC 6532) and obs-phrase dots.
    EXPECT_EQ(addresses("J\xc3\xb6rg S. Doe <joerg@contoso.com>"), list{"joerg@contoso.com"});
}

TEST(address_list, unquoted_address_as_display_name_counts_too) {
    EXPECT_EQ(addresses("scanner@contoso.com <scanner@contoso.com>"),
              (list{"scanner@contoso.com", "scanner@contoso.com"}));
    EXPECT_EQ(addresses("ceo@contoso.com <scanner@contoso.com>"), (list{"ceo@contoso.com", "scanner@contoso.com"}));
}

TEST(address_list, comments) {
    EXPECT_EQ(addresses("ceo@contoso.com (The CEO)"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses("(a (nested (comment)) with \\) and <x@y>) <ceo@contoso.com> (end)"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses("ceo(c1)@(c2)contoso(c3).(c4)com"), list{"ceo@contoso.com"});
}

TEST(address_list, groups) {
    EXPECT_EQ(addresses("Undisclosed recipients: ;"), list{});
    EXPECT_EQ(addresses("Undisclosed:;"), list{});
    EXPECT_EQ(addresses("Team: a@x.example, B <b@y.example>;"), (list{"a@x.example", "b@y.example"}));
    EXPECT_EQ(addresses("Team: a@x.example;, c@z.example"), (list{"a@x.example", "c@z.example"}));
    EXPECT_EQ(addresses("Team: a@x.example"), list{"a@x.example"});  // the missing ";" is tolerated
    EXPECT_TRUE(refused("A: B: a@x.example;;"));
    EXPECT_TRUE(refused(": a@x.example;"));
}

TEST(address_list, obsolete_forms) {
    EXPECT_EQ(addresses("<@relay1.example,@relay2.example:ceo@contoso.com>"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses(",, a@x.example ,, b@y.example,"), (list{"a@x.example", "b@y.example"}));
    EXPECT_EQ(addresses("john . doe @ contoso . com"), list{"john.doe@contoso.com"});
    EXPECT_EQ(addresses("\"john\".\"doe\"@contoso.com"), list{"john.doe@contoso.com"});
}

TEST(address_list, quoted_local_parts) {
    EXPECT_EQ(addresses("\"ceo\"@contoso.com"), list{"ceo@contoso.com"});
    EXPECT_EQ(addresses("<\"john doe\"@contoso.com>"), list{"\"john doe\"@contoso.com"});
    EXPECT_EQ(addresses(R"("a\"b"@contoso.com)"), list{R"("a\"b"@contoso.com)"});
}

TEST(address_list, domain_literals) {
    EXPECT_EQ(addresses("<user@[192.0.2.1]>"), list{"user@[192.0.2.1]"});
}

TEST(address_list, empty_values_hold_no_address) {
    EXPECT_EQ(addresses(""), list{});
    EXPECT_EQ(addresses("   "), list{});
    EXPECT_EQ(addresses(" (nobody) "), list{});
    // The null address of bounces names nobody to send as.
    EXPECT_EQ(addresses("<>"), list{});
    EXPECT_EQ(addresses("Mail Delivery System <>, a@x.example"), list{"a@x.example"});
}

TEST(address_list, errors) {
    for (const char* bad : {"ceo", "The CEO", "The CEO <ceo@contoso.com", "\"unterminated <ceo@contoso.com>",
                            "(unterminated ceo@contoso.com", "ceo@", "@contoso.com", "ceo@contoso.", "a..b@contoso.com",
                            "ceo@contoso.com junk", "<ceo@contoso.com> junk", "ceo@contoso.com)", "a\\b@contoso.com",
                            "ceo@[unterminated", "ceo@exa_mple.com", "ceo@contoso.com;", "<@relay ceo@x.example>",
                            "x@y.example\x01", "a@b@c.example"}) {
        EXPECT_TRUE(refused(bad)) << bad;
    }
}

TEST(sender_addresses, finds_from_and_sender_in_any_case) {
    const std::string header =
        "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        "from: \"The CEO\" <ceo@contoso.com>\r\n"
        "Subject: from: <not@this.example>\r\n"
        "SENDER : scanner@contoso.com\r\n"
        "Reply-To: other@contoso.com\r\n"
        "X-From: no@example.com\r\n";
    const auto r = sender_addresses(header);
    ASSERT_TRUE(std::holds_alternative<list>(r));
    EXPECT_EQ(std::get<list>(r), (list{"ceo@contoso.com", "scanner@contoso.com"}));
}

TEST(sender_addresses, unfolds) {
    const std::string header =
        "From: \"The\r\n"
        " CEO\"\r\n"
        "\t<ceo@contoso.com>,\r\n"
        "  other@contoso.com\r\n"
        "To: a@b.example\r\n";
    const auto r = sender_addresses(header);
    ASSERT_TRUE(std::holds_alternative<list>(r));
    EXPECT_EQ(std::get<list>(r), (list{"ceo@contoso.com", "other@contoso.com"}));
}

TEST(sender_addresses, every_from_field) {
    const auto r = sender_addresses("From: scanner@contoso.com\r\nFrom: ceo@contoso.com\r\n");
    ASSERT_TRUE(std::holds_alternative<list>(r));
    EXPECT_EQ(std::get<list>(r), (list{"scanner@contoso.com", "ceo@contoso.com"}));
}

// The relay writes a bare CR or LF as CRLF upstream: a field after one is a
// field there, so it is one here.
TEST(sender_addresses, bare_cr_and_lf_end_lines) {
    for (const char* header : {"Subject: hi\rFrom: ceo@contoso.com\r\n", "Subject: hi\nFrom: ceo@contoso.com\n",
                               "Subject: hi\r\nFrom: ceo@contoso.com"}) {
        const auto r = sender_addresses(header);
        ASSERT_TRUE(std::holds_alternative<list>(r)) << header;
        EXPECT_EQ(std::get<list>(r), list{"ceo@contoso.com"}) << header;
    }
}

TEST(sender_addresses, none) {
    const auto r = sender_addresses("To: a@b.example\r\nSubject: scan\r\n");
    ASSERT_TRUE(std::holds_alternative<list>(r));
    EXPECT_TRUE(std::get<list>(r).empty());
    // A continuation line without a field before it belongs to no field.
    const auto lone = sender_addresses(" From: ceo@contoso.com\r\n");
    ASSERT_TRUE(std::holds_alternative<list>(lone));
    EXPECT_TRUE(std::get<list>(lone).empty());
}

TEST(sender_addresses, error_names_the_field) {
    const auto r = sender_addresses("From: scanner@contoso.com\r\nSender: The CEO\r\n");
    ASSERT_TRUE(std::holds_alternative<header_error>(r));
    EXPECT_EQ(std::get<header_error>(r).field, "Sender");
    EXPECT_FALSE(std::get<header_error>(r).message.empty());
}

std::string collect(const std::vector<std::string>& pieces, header_collector& c) {
    for (const auto& p : pieces) c.add(p);
    return c.header();
}

TEST(header_collector, stops_at_the_empty_line) {
    header_collector c;
    EXPECT_EQ(collect({"From: a@b.example\r\nTo: c@d.example\r\n\r\nFrom: body@x.example\r\n"}, c),
              "From: a@b.example\r\nTo: c@d.example\r\n");
    EXPECT_TRUE(c.ended());
    EXPECT_FALSE(c.truncated());
}

TEST(header_collector, pieces_cut_anywhere) {
    const std::string message = "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n";
    for (std::size_t cut = 0; cut <= message.size(); ++cut) {
        for (std::size_t cut2 = cut; cut2 <= message.size(); ++cut2) {
            header_collector c;
            collect({message.substr(0, cut), message.substr(cut, cut2 - cut), message.substr(cut2)}, c);
            EXPECT_EQ(c.header(), "From: a@b.example\r\nSubject: x\r\n") << cut << " " << cut2;
            EXPECT_TRUE(c.ended());
        }
    }
}

TEST(header_collector, bare_line_ends) {
    header_collector lf;
    EXPECT_EQ(collect({"From: a@b.example\n\nbody"}, lf), "From: a@b.example\n");
    header_collector cr;
    EXPECT_EQ(collect({"From: a@b.example\r\rbody"}, cr), "From: a@b.example\r");
    header_collector crlf_then_cr;
    EXPECT_EQ(collect({"From: a@b.example\r\n\rFrom: c@d.example"}, crlf_then_cr), "From: a@b.example\r\n");
}

TEST(header_collector, empty_header_section) {
    header_collector c;
    EXPECT_EQ(collect({"\r\nFrom: body@x.example\r\n"}, c), "");
    EXPECT_TRUE(c.ended());
}

TEST(header_collector, message_without_body) {
    header_collector c;
    EXPECT_EQ(collect({"From: a@b.example\r\n"}, c), "From: a@b.example\r\n");
    EXPECT_FALSE(c.ended());
    EXPECT_FALSE(c.truncated());
}

TEST(header_collector, limit) {
    header_collector c(16);
    collect({"X-Long: 0123456789", "0123456789\r\nFrom: ceo@contoso.com\r\n\r\n"}, c);
    EXPECT_EQ(c.header(), "X-Long: 01234567");
    EXPECT_TRUE(c.truncated());
    EXPECT_FALSE(c.ended());
    // Exactly at the limit is not truncated.
    header_collector exact(19);
    collect({"From: a@b.example\r\n\r\n"}, exact);
    EXPECT_TRUE(exact.ended());
    EXPECT_FALSE(exact.truncated());
    exact.clear();
    EXPECT_EQ(exact.header(), "");
    EXPECT_FALSE(exact.ended());
}

}  // namespace
}  // namespace subrelay::smtp

// ---------------------------------------------------------------- recipients, for Graph's MIME send

namespace subrelay::smtp {
namespace {

header_recipients compared(std::string_view header, std::vector<std::string> envelope) {
    auto r = compare_header_recipients(header, envelope);
    EXPECT_TRUE(std::holds_alternative<header_recipients>(r));
    return std::holds_alternative<header_recipients>(r) ? std::get<header_recipients>(r) : header_recipients{};
}

TEST(header_recipients, every_to_cc_and_bcc_field_is_read) {
    const auto r = recipient_addresses("Subject: x\r\nTo: Alice <alice@example.org>, bob@example.org\r\n"
                                       "cc: \"Carol\" <carol@example.org>\r\nBCC: dave@example.org\r\n"
                                       "Reply-To: eve@example.org\r\n");
    ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(r));
    EXPECT_EQ(std::get<std::vector<std::string>>(r),
              (std::vector<std::string>{"alice@example.org", "bob@example.org", "carol@example.org",
                                        "dave@example.org"}));
}

TEST(header_recipients, envelope_recipients_missing_from_the_header_are_found) {
    // A device writes one address in To: and gives four in RCPT: all four must get it.
    const auto r = compared("To: alice@example.org\r\n",
                            {"alice@example.org", "b@example.org", "c@example.org", "d@example.org"});
    EXPECT_EQ(r.missing, (std::vector<std::string>{"b@example.org", "c@example.org", "d@example.org"}));
    EXPECT_TRUE(r.extra.empty());
}

TEST(header_recipients, header_addresses_that_are_no_envelope_recipient_are_found) {
    // Written only in Cc:, it would be reached past allowed_recipient_domains.
    const auto r = compared("To: alice@example.org\r\nCc: boss@elsewhere.test, undisclosed:;\r\n",
                            {"Alice@Example.org"});
    EXPECT_TRUE(r.missing.empty()) << "addresses compare without regard to case";
    EXPECT_EQ(r.extra, (std::vector<std::string>{"boss@elsewhere.test"}));
}

TEST(header_recipients, each_address_counts_once) {
    const auto r = compared("To: a@example.org, A@example.org\r\nCc: x@example.org\r\nBcc: x@example.org\r\n",
                            {"b@example.org", "b@example.org", "a@example.org"});
    EXPECT_EQ(r.missing, (std::vector<std::string>{"b@example.org"}));
    EXPECT_EQ(r.extra, (std::vector<std::string>{"x@example.org"}));
}

TEST(header_recipients, a_field_that_cannot_be_read_is_an_error) {
    const auto r = compare_header_recipients("To: \"unterminated <a@example.org>\r\n", {"a@example.org"});
    ASSERT_TRUE(std::holds_alternative<header_error>(r));
    EXPECT_EQ(std::get<header_error>(r).field, "To");
}

TEST(header_recipients, the_bcc_field_is_folded_before_78_octets) {
    EXPECT_EQ(bcc_field({"b@example.org"}), "Bcc: b@example.org\r\n");
    std::vector<std::string> many;
    for (int i = 0; i < 12; ++i) many.push_back("recipient" + std::to_string(i) + "@example.org");
    const std::string field = bcc_field(many);
    EXPECT_TRUE(field.starts_with("Bcc: recipient0@example.org, recipient1@example.org,"));
    EXPECT_TRUE(field.ends_with("recipient11@example.org\r\n"));
    std::size_t start = 0;
    while (start < field.size()) {
        const auto end = field.find("\r\n", start);
        ASSERT_NE(end, std::string::npos);
        EXPECT_LE(end - start, 78U) << field;
        if (start > 0) {
            EXPECT_EQ(field[start], ' ') << "a folded line begins with white space";
        }
        start = end + 2;
    }
    // Read back, it names the same addresses.
    const auto back = recipient_addresses(field);
    ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(back));
    EXPECT_EQ(std::get<std::vector<std::string>>(back), many);
}

}  // namespace
}  // namespace subrelay::smtp
