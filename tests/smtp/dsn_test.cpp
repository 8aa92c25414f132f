#include "smtp/dsn.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smtp/text/ascii.hpp"

namespace subrelay::smtp {
namespace {

// ---- the clock and the random numbers a notice is built with -------------

class fixed_clock final : public clock {
public:
    explicit fixed_clock(wall_time t) : t_(t) {}
    [[nodiscard]] wall_time now() const override { return t_; }

private:
    wall_time t_;
};

// Returns `values` in turn, then starts again.
class fixed_random final : public random_source {
public:
    explicit fixed_random(std::vector<std::uint64_t> values) : values_(std::move(values)) {}
    std::uint64_t next() override { return values_[next_++ % values_.size()]; }

private:
    std::vector<std::uint64_t> values_;
    std::size_t next_ = 0;
};

// Successive values that differ in every hex digit, so that two notices get
// different generated parts.
class counting_random final : public random_source {
public:
    std::uint64_t next() override { return value_ += 0x1111111111111111; }

private:
    std::uint64_t value_ = 0;
};

const fixed_clock test_clock({1795953600, 0});  // Sun, 29 Nov 2026 12:00:00 +0000
counting_random test_random;

// ---- a small parser for what build_dsn produces -------------------------

using fields = std::vector<std::pair<std::string, std::string>>;  // lower-case name, unfolded trimmed value

std::string lower(std::string_view s) { return text::ascii_lower(s); }
std::string trim(std::string_view s) { return std::string(text::trim(s)); }

// Parses CRLF header lines (folded allowed) into fields; returns the rest
// after the empty line in `body`.
fields parse_fields(std::string_view text, std::string* body = nullptr) {
    fields out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find("\r\n", pos);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 2;
        if (line.empty()) break;
        if (line.front() == ' ' || line.front() == '\t') {
            EXPECT_FALSE(out.empty()) << "continuation without a field";
            if (!out.empty()) out.back().second += std::string(line);
            continue;
        }
        const auto colon = line.find(':');
        EXPECT_NE(colon, std::string_view::npos) << "not a field: " << line;
        if (colon == std::string_view::npos) continue;
        out.emplace_back(lower(std::string(line.substr(0, colon))), std::string(line.substr(colon + 1)));
    }
    for (auto& f : out) f.second = trim(f.second);
    if (body) *body = pos < text.size() ? std::string(text.substr(pos)) : std::string();
    return out;
}

std::vector<std::string> all(const fields& fs, const std::string& name) {
    std::vector<std::string> v;
    for (const auto& f : fs)
        if (f.first == name) v.push_back(f.second);
    return v;
}

std::string one(const fields& fs, const std::string& name) {
    const auto v = all(fs, name);
    EXPECT_EQ(v.size(), 1u) << "field " << name;
    return v.empty() ? std::string() : v.front();
}

struct part {
    fields headers;
    std::string body;
};

struct parsed {
    fields headers;
    std::string boundary;
    std::vector<part> parts;
};

parsed parse(const std::string& msg) {
    parsed p;
    std::string body;
    p.headers = parse_fields(msg, &body);
    const std::string ct = one(p.headers, "content-type");
    const std::string key = "boundary=\"";
    const auto b = ct.find(key);
    EXPECT_NE(b, std::string::npos) << ct;
    if (b == std::string::npos) return p;
    const auto e = ct.find('"', b + key.size());
    p.boundary = ct.substr(b + key.size(), e - b - key.size());

    const std::string delim = "\r\n--" + p.boundary;
    auto pos = body.find(delim);
    EXPECT_NE(pos, std::string::npos);
    while (pos != std::string::npos) {
        auto after = pos + delim.size();
        if (body.compare(after, 4, "--\r\n") == 0) {
            EXPECT_EQ(after + 4, body.size()) << "text after the closing delimiter";
            return p;
        }
        EXPECT_EQ(body.compare(after, 2, "\r\n"), 0);
        after += 2;
        const auto next = body.find(delim, after);
        EXPECT_NE(next, std::string::npos) << "no closing delimiter";
        if (next == std::string::npos) return p;
        part pt;
        pt.headers = parse_fields(std::string_view(body).substr(after, next - after), &pt.body);
        p.parts.push_back(std::move(pt));
        pos = next;
    }
    return p;
}

// message/delivery-status: groups of fields separated by empty lines.
std::vector<fields> status_groups(const std::string& body) {
    std::vector<fields> groups;
    std::size_t pos = 0;
    while (pos < body.size()) {
        auto end = body.find("\r\n\r\n", pos);
        const std::string group = end == std::string::npos ? body.substr(pos) : body.substr(pos, end + 2 - pos);
        if (!group.empty()) groups.push_back(parse_fields(group));
        if (end == std::string::npos) break;
        pos = end + 4;
    }
    return groups;
}

std::vector<std::string> lines_of(const std::string& msg) {
    std::vector<std::string> v;
    std::size_t pos = 0;
    while (pos < msg.size()) {
        auto end = msg.find("\r\n", pos);
        if (end == std::string::npos) end = msg.size();
        v.push_back(msg.substr(pos, end - pos));
        pos = end + 2;
    }
    return v;
}

void expect_wire_clean(const std::string& msg) {
    for (std::size_t i = 0; i < msg.size(); ++i) {
        const auto c = static_cast<unsigned char>(msg[i]);
        if (c == '\n') {
            EXPECT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
        }
        if (c == '\r') {
            EXPECT_TRUE(i + 1 < msg.size() && msg[i + 1] == '\n') << "bare CR at " << i;
        }
        EXPECT_LT(c, 128u) << "8-bit octet at " << i;
        if (c != '\r' && c != '\n' && c != '\t') {
            EXPECT_GE(c, 32u) << "control octet at " << i;
        }
    }
    EXPECT_TRUE(msg.ends_with("\r\n"));
    for (const auto& l : lines_of(msg)) EXPECT_LE(l.size(), 998u) << l.substr(0, 60);
}

const std::string original_headers =
    "Received: from printer.lan ([192.0.2.7])\r\n"
    "\tby relay.example.com with ESMTPSA id Q123; Sat, 28 Nov 2026 11:59:00 +0000\r\n"
    "From: Scanner <scanner@example.com>\r\n"
    "To: bob@example.org, carol@example.net\r\n"
    "Subject: Scan 42\r\n"
    "Message-ID: <scan42@printer.lan>\r\n";
const std::string original = original_headers + "\r\nSECRET BODY LINE\r\n";

dsn_request sample(dsn_request::kind k = dsn_request::kind::failure) {
    dsn_request r;
    r.type = k;
    r.reporting_mta = "relay.example.com";
    r.postmaster = "MAILER-DAEMON@relay.example.com";
    r.recipient = "scanner@example.com";
    r.original_id = "Q123";
    r.arrival_date = 1795867200;  // Sat, 28 Nov 2026 12:00:00 +0000
    r.recipients = {
        {"bob@example.org", "5.1.1", "550 5.1.1 User unknown", "smtp.office365.com"},
        {"carol@example.net", "bogus", "", ""},
    };
    r.original_message = original;
    r.date = "Sun, 29 Nov 2026 12:00:00 +0000";
    r.message_id = "<dsn.Q123@relay.example.com>";
    return r;
}

// ---- structure -----------------------------------------------------------

TEST(dsn, failure_notice_structure) {
    const auto msg = build_dsn(sample(), test_clock, test_random);
    expect_wire_clean(msg);
    const auto p = parse(msg);

    EXPECT_EQ(one(p.headers, "from"), "\"Mail Delivery System\" <MAILER-DAEMON@relay.example.com>");
    EXPECT_EQ(one(p.headers, "to"), "<scanner@example.com>");
    EXPECT_EQ(one(p.headers, "subject"), "Undelivered Mail Returned to Sender");
    EXPECT_EQ(one(p.headers, "date"), "Sun, 29 Nov 2026 12:00:00 +0000");
    EXPECT_EQ(one(p.headers, "message-id"), "<dsn.Q123@relay.example.com>");
    EXPECT_EQ(one(p.headers, "mime-version"), "1.0");
    EXPECT_EQ(one(p.headers, "auto-submitted"), "auto-replied");
    const auto ct = one(p.headers, "content-type");
    EXPECT_TRUE(ct.starts_with("multipart/report; report-type=delivery-status;")) << ct;
    EXPECT_FALSE(p.boundary.empty());
    EXPECT_LE(p.boundary.size(), 70u);  // RFC 2046 5.1.1
    EXPECT_EQ(p.headers.size(), 8u);

    ASSERT_EQ(p.parts.size(), 3u);
    EXPECT_EQ(one(p.parts[0].headers, "content-type"), "text/plain; charset=us-ascii");
    EXPECT_EQ(one(p.parts[1].headers, "content-type"), "message/delivery-status");
    EXPECT_EQ(one(p.parts[2].headers, "content-type"), "text/rfc822-headers");

    // Human part: Postfix-like wording, each recipient with its diagnostic.
    const auto& text = p.parts[0].body;
    EXPECT_NE(text.find("This is the mail system at host relay.example.com."), std::string::npos);
    EXPECT_NE(text.find("I'm sorry to have to inform you that your message could not"), std::string::npos);
    EXPECT_NE(text.find("<bob@example.org>: host smtp.office365.com said: 550 5.1.1 User unknown"), std::string::npos)
        << text;
    EXPECT_NE(text.find("<carol@example.net>: delivery failed"), std::string::npos) << text;

    // Machine part.
    const auto groups = status_groups(p.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(one(groups[0], "reporting-mta"), "dns; relay.example.com");
    EXPECT_EQ(one(groups[0], "x-queue-id"), "Q123");
    EXPECT_EQ(one(groups[0], "arrival-date"), "Sat, 28 Nov 2026 12:00:00 +0000");

    EXPECT_EQ(one(groups[1], "final-recipient"), "rfc822; bob@example.org");
    EXPECT_EQ(one(groups[1], "original-recipient"), "rfc822; bob@example.org");
    EXPECT_EQ(one(groups[1], "action"), "failed");
    EXPECT_EQ(one(groups[1], "status"), "5.1.1");
    EXPECT_EQ(one(groups[1], "remote-mta"), "dns; smtp.office365.com");
    EXPECT_EQ(one(groups[1], "diagnostic-code"), "smtp; 550 5.1.1 User unknown");
    EXPECT_TRUE(all(groups[1], "will-retry-until").empty());

    EXPECT_EQ(one(groups[2], "final-recipient"), "rfc822; carol@example.net");
    EXPECT_EQ(one(groups[2], "action"), "failed");
    EXPECT_EQ(one(groups[2], "status"), "5.0.0");  // an invalid status falls back to the generic one
    EXPECT_TRUE(all(groups[2], "remote-mta").empty());
    EXPECT_TRUE(all(groups[2], "diagnostic-code").empty());

    // Headers only, byte for byte; never the body.
    EXPECT_EQ(p.parts[2].body, original_headers);
    EXPECT_EQ(msg.find("SECRET BODY LINE"), std::string::npos);
}

TEST(dsn, delay_notice_wording_and_fields) {
    auto r = sample(dsn_request::kind::delay);
    r.recipients = {{"bob@example.org", "4.4.1", "451 4.4.1 Try again later", "smtp.office365.com"},
                    {"carol@example.net", "", "", ""}};
    r.retry_until = r.arrival_date + 5 * 86400;
    const auto msg = build_dsn(r, test_clock, test_random);
    expect_wire_clean(msg);
    const auto p = parse(msg);
    EXPECT_EQ(one(p.headers, "subject"), "Delayed Mail (still being retried)");
    ASSERT_EQ(p.parts.size(), 3u);
    const auto& text = p.parts[0].body;
    EXPECT_NE(text.find("THIS IS A WARNING ONLY"), std::string::npos);
    EXPECT_NE(text.find("has not yet been delivered"), std::string::npos);
    EXPECT_NE(text.find("will keep trying until the message is 5 days old."), std::string::npos) << text;
    EXPECT_EQ(text.find("I'm sorry"), std::string::npos);
    EXPECT_NE(text.find("<bob@example.org>: host smtp.office365.com said: 451 4.4.1 Try again later"), std::string::npos);

    const auto groups = status_groups(p.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(one(groups[1], "action"), "delayed");
    EXPECT_EQ(one(groups[1], "status"), "4.4.1");
    EXPECT_EQ(one(groups[1], "will-retry-until"), "Thu, 03 Dec 2026 12:00:00 +0000");
    EXPECT_EQ(one(groups[2], "action"), "delayed");
    EXPECT_EQ(one(groups[2], "status"), "4.0.0");
    EXPECT_EQ(p.parts[2].body, original_headers);
}

TEST(dsn, delay_without_retry_limit_states_none) {
    auto r = sample(dsn_request::kind::delay);
    r.retry_until = 0;
    const auto msg = build_dsn(r, test_clock, test_random);
    const auto p = parse(msg);
    ASSERT_EQ(p.parts.size(), 3u);
    EXPECT_EQ(p.parts[0].body.find("days old"), std::string::npos);
    EXPECT_NE(p.parts[0].body.find("will keep trying"), std::string::npos);
    EXPECT_EQ(msg.find("Will-Retry-Until"), std::string::npos);
}

TEST(dsn, failure_has_no_delay_wording) {
    auto r = sample();
    r.retry_until = r.arrival_date + 86400;  // ignored for a failure
    const auto msg = build_dsn(r, test_clock, test_random);
    EXPECT_EQ(msg.find("WARNING"), std::string::npos);
    EXPECT_EQ(msg.find("Will-Retry-Until"), std::string::npos);
    EXPECT_EQ(msg.find("Action: delayed"), std::string::npos);
    EXPECT_NE(msg.find("Action: failed"), std::string::npos);
}

TEST(dsn, defaults_for_date_message_id_and_postmaster) {
    auto r = sample();
    r.date.clear();
    r.message_id.clear();
    r.postmaster.clear();
    const auto a = parse(build_dsn(r, test_clock, test_random));
    const auto b = parse(build_dsn(r, test_clock, test_random));
    EXPECT_EQ(one(a.headers, "date"), "Sun, 29 Nov 2026 12:00:00 +0000");  // the clock's
    const auto id = one(a.headers, "message-id");
    EXPECT_TRUE(std::regex_match(id, std::regex(R"(<[A-Za-z0-9._-]+@relay\.example\.com>)"))) << id;
    EXPECT_NE(id.find("Q123"), std::string::npos);
    EXPECT_NE(id, one(b.headers, "message-id"));
    EXPECT_EQ(one(a.headers, "from"), "\"Mail Delivery System\" <MAILER-DAEMON@relay.example.com>");
}

TEST(dsn, headers_only_even_from_lf_originals_without_body) {
    auto r = sample();
    r.original_message = "Subject: a\nX-Long: b\n c\n\nbody\n";
    auto p = parse(build_dsn(r, test_clock, test_random));
    ASSERT_EQ(p.parts.size(), 3u);
    EXPECT_EQ(p.parts[2].body, "Subject: a\r\nX-Long: b\r\n c\r\n");

    r.original_message = "Subject: only headers\r\n";
    p = parse(build_dsn(r, test_clock, test_random));
    ASSERT_EQ(p.parts.size(), 3u);
    EXPECT_EQ(p.parts[2].body, "Subject: only headers\r\n");

    // A line that is not a header field ends the section (malformed message).
    r.original_message = "Subject: x\r\nthis is body text\r\nSubject: y\r\n";
    p = parse(build_dsn(r, test_clock, test_random));
    ASSERT_EQ(p.parts.size(), 3u);
    EXPECT_EQ(p.parts[2].body, "Subject: x\r\n");
}

// ---- limits: line length, 7 bit -----------------------------------------

TEST(dsn, long_diagnostics_are_folded_and_unfold_to_the_original) {
    std::string words = "550 5.1.1";
    while (words.size() < 1500) words += " word" + std::to_string(words.size());
    auto r = sample();
    r.recipients = {{"bob@example.org", "5.1.1", words, "smtp.office365.com"}};
    const auto msg = build_dsn(r, test_clock, test_random);
    expect_wire_clean(msg);
    for (const auto& l : lines_of(msg)) EXPECT_LE(l.size(), 78u) << l;  // breakable text folds to 78
    const auto p = parse(msg);
    ASSERT_EQ(p.parts.size(), 3u);
    const auto groups = status_groups(p.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(one(groups[1], "diagnostic-code"), "smtp; " + words);
}

TEST(dsn, unbreakable_and_8bit_content_stays_within_limits) {
    auto r = sample();
    const std::string blob(5000, 'x');
    r.recipients = {{"bob@example.org", "5.1.1", "550 5.1.1 " + blob, std::string(3000, 'h')},
                    {"m\xC3\xBCller@example.org", "5.1.1", "550 5.1.1 Benutzer m\xC3\xBCller unbekannt", ""}};
    r.original_message = "Subject: gr\xC3\xBC\xC3\x9F\x65\r\nX-Big: " + std::string(4000, 'y') +
                         "\r\nX-Ctl: a\x01\x62\rc\r\n\r\nbody\r\n";
    const auto msg = build_dsn(r, test_clock, test_random);
    expect_wire_clean(msg);
    const auto p = parse(msg);
    ASSERT_EQ(p.parts.size(), 3u);
    const auto groups = status_groups(p.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(one(groups[2], "final-recipient"), "rfc822; m??ller@example.org");
    EXPECT_EQ(one(groups[2], "diagnostic-code"), "smtp; 550 5.1.1 Benutzer m??ller unbekannt");
    EXPECT_TRUE(p.parts[2].body.starts_with("Subject: gr????e\r\nX-Big: yyy")) << p.parts[2].body.substr(0, 40);
    EXPECT_NE(p.parts[2].body.find("X-Ctl: a?b?c\r\n"), std::string::npos);
}

TEST(dsn, non_smtp_diagnostic_is_not_labelled_smtp) {
    auto r = sample();
    r.recipients = {{"bob@example.org", "4.4.1", "connect to smtp.office365.com: Connection timed out", ""}};
    const auto p = parse(build_dsn(r, test_clock, test_random));
    ASSERT_EQ(p.parts.size(), 3u);
    const auto groups = status_groups(p.parts[1].body);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(one(groups[1], "diagnostic-code"), "X-Subrelay; connect to smtp.office365.com: Connection timed out");
    EXPECT_EQ(one(groups[1], "status"), "4.4.1");
}

// ---- boundary ------------------------------------------------------------

TEST(dsn, boundary_never_occurs_in_the_original) {
    auto r = sample();
    const auto first = parse(build_dsn(r, test_clock, test_random)).boundary;
    ASSERT_FALSE(first.empty());
    EXPECT_EQ(parse(build_dsn(r, test_clock, test_random)).boundary, first);  // the first candidate is predictable...

    // ...so an original can contain it, in the body or in the headers.
    r.original_message = original_headers + "\r\n--" + first + "\r\nContent-Type: text/plain\r\n\r\nfake part\r\n";
    auto msg = build_dsn(r, test_clock, test_random);
    auto p = parse(msg);
    EXPECT_NE(p.boundary, first);
    EXPECT_EQ(r.original_message.find(p.boundary), std::string::npos);
    EXPECT_EQ(p.parts.size(), 3u);

    r.original_message = "X-Trap: " + first + "\r\n" + original;
    msg = build_dsn(r, test_clock, test_random);
    p = parse(msg);
    EXPECT_NE(p.boundary, first);
    EXPECT_EQ(r.original_message.find(p.boundary), std::string::npos);
    ASSERT_EQ(p.parts.size(), 3u);
    EXPECT_EQ(p.parts[2].body, "X-Trap: " + first + "\r\n" + original_headers);
}

// ---- byte for byte --------------------------------------------------------

// The same request, time and random numbers give the same bytes: here
// the Date and the Message-ID come from the clock and the random source.
TEST(dsn, failure_notice_byte_for_byte) {
    auto r = sample();
    r.date.clear();
    r.message_id.clear();
    fixed_random random({0x0123456789ABCDEF});
    const auto msg = build_dsn(r, fixed_clock({1795953600 + 3723, 3600}), random);
    EXPECT_EQ(msg,
              "From: \"Mail Delivery System\" <MAILER-DAEMON@relay.example.com>\r\n"
              "To: <scanner@example.com>\r\n"
              "Subject: Undelivered Mail Returned to Sender\r\n"
              "Date: Sun, 29 Nov 2026 14:02:03 +0100\r\n"
              "Message-ID: <20261129130203.Q123.bounce.FEDCBA98@relay.example.com>\r\n"
              "MIME-Version: 1.0\r\n"
              "Auto-Submitted: auto-replied\r\n"
              "Content-Type: multipart/report; report-type=delivery-status;\r\n"
              "\tboundary=\"----=_subrelay_dsn_Q123\"\r\n"
              "\r\n"
              "This is a MIME-encapsulated message.\r\n"
              "\r\n"
              "------=_subrelay_dsn_Q123\r\n"
              "Content-Type: text/plain; charset=us-ascii\r\n"
              "Content-Description: Notification\r\n"
              "\r\n"
              "This is the mail system at host relay.example.com.\r\n"
              "\r\n"
              "I'm sorry to have to inform you that your message could not\r\n"
              "be delivered to one or more recipients. The headers of your\r\n"
              "message are attached below.\r\n"
              "\r\n"
              "For further assistance, please send mail to postmaster.\r\n"
              "\r\n"
              "If you do so, please include this problem report.\r\n"
              "\r\n"
              "                   The mail system\r\n"
              "\r\n"
              "<bob@example.org>: host smtp.office365.com said: 550 5.1.1 User unknown\r\n"
              "\r\n"
              "<carol@example.net>: delivery failed\r\n"
              "\r\n"
              "------=_subrelay_dsn_Q123\r\n"
              "Content-Type: message/delivery-status\r\n"
              "Content-Description: Delivery report\r\n"
              "\r\n"
              "Reporting-MTA: dns; relay.example.com\r\n"
              "X-Queue-ID: Q123\r\n"
              "Arrival-Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
              "\r\n"
              "Final-Recipient: rfc822; bob@example.org\r\n"
              "Original-Recipient: rfc822; bob@example.org\r\n"
              "Action: failed\r\n"
              "Status: 5.1.1\r\n"
              "Remote-MTA: dns; smtp.office365.com\r\n"
              "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
              "\r\n"
              "Final-Recipient: rfc822; carol@example.net\r\n"
              "Original-Recipient: rfc822; carol@example.net\r\n"
              "Action: failed\r\n"
              "Status: 5.0.0\r\n"
              "\r\n"
              "------=_subrelay_dsn_Q123\r\n"
              "Content-Type: text/rfc822-headers\r\n"
              "Content-Description: Undelivered Message Headers\r\n"
              "\r\n"
              "Received: from printer.lan ([192.0.2.7])\r\n"
              "\tby relay.example.com with ESMTPSA id Q123; Sat, 28 Nov 2026 11:59:00 +0000\r\n"
              "From: Scanner <scanner@example.com>\r\n"
              "To: bob@example.org, carol@example.net\r\n"
              "Subject: Scan 42\r\n"
              "Message-ID: <scan42@printer.lan>\r\n"
              "\r\n"
              "------=_subrelay_dsn_Q123--\r\n");
}

// A delay notice whose original holds the predictable boundary: the
// boundary is then made of random digits too.
TEST(dsn, delay_notice_with_a_random_boundary_byte_for_byte) {
    auto r = sample(dsn_request::kind::delay);
    r.recipients = {{"bob@example.org", "4.4.1", "451 4.4.1 Try again later", "smtp.office365.com"}};
    r.retry_until = r.arrival_date + 5 * 86400;
    r.original_message = original_headers + "\r\n------=_subrelay_dsn_Q123\r\n";
    r.date.clear();
    r.message_id.clear();
    fixed_random random({0xFEDCBA9876543210, 0x0F1E2D3C4B5A6978, 0x00000000DEADBEEF});
    const auto msg = build_dsn(r, fixed_clock({1795953600, -18000}), random);
    EXPECT_EQ(msg,
              "From: \"Mail Delivery System\" <MAILER-DAEMON@relay.example.com>\r\n"
              "To: <scanner@example.com>\r\n"
              "Subject: Delayed Mail (still being retried)\r\n"
              "Date: Sun, 29 Nov 2026 07:00:00 -0500\r\n"
              "Message-ID: <20261129120000.Q123.delay.FEEBDAED@relay.example.com>\r\n"
              "MIME-Version: 1.0\r\n"
              "Auto-Submitted: auto-replied\r\n"
              "Content-Type: multipart/report; report-type=delivery-status;\r\n"
              "\tboundary=\"----=_subrelay_dsn_0123456789ABCDEF8796A5B4C3D2E1F0\"\r\n"
              "\r\n"
              "This is a MIME-encapsulated message.\r\n"
              "\r\n"
              "------=_subrelay_dsn_0123456789ABCDEF8796A5B4C3D2E1F0\r\n"
              "Content-Type: text/plain; charset=us-ascii\r\n"
              "Content-Description: Notification\r\n"
              "\r\n"
              "This is the mail system at host relay.example.com.\r\n"
              "\r\n"
              "####################################################################\r\n"
              "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
              "####################################################################\r\n"
              "\r\n"
              "Your message has not yet been delivered to one or more recipients.\r\n"
              "The mail system will keep trying until the message is 5 days old.\r\n"
              "\r\n"
              "The headers of your message are attached below.\r\n"
              "\r\n"
              "For further assistance, please send mail to postmaster.\r\n"
              "\r\n"
              "If you do so, please include this problem report.\r\n"
              "\r\n"
              "                   The mail system\r\n"
              "\r\n"
              "<bob@example.org>: host smtp.office365.com said: 451 4.4.1 Try again later\r\n"
              "\r\n"
              "------=_subrelay_dsn_0123456789ABCDEF8796A5B4C3D2E1F0\r\n"
              "Content-Type: message/delivery-status\r\n"
              "Content-Description: Delivery report\r\n"
              "\r\n"
              "Reporting-MTA: dns; relay.example.com\r\n"
              "X-Queue-ID: Q123\r\n"
              "Arrival-Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
              "\r\n"
              "Final-Recipient: rfc822; bob@example.org\r\n"
              "Original-Recipient: rfc822; bob@example.org\r\n"
              "Action: delayed\r\n"
              "Status: 4.4.1\r\n"
              "Remote-MTA: dns; smtp.office365.com\r\n"
              "Diagnostic-Code: smtp; 451 4.4.1 Try again later\r\n"
              "Will-Retry-Until: Thu, 03 Dec 2026 12:00:00 +0000\r\n"
              "\r\n"
              "------=_subrelay_dsn_0123456789ABCDEF8796A5B4C3D2E1F0\r\n"
              "Content-Type: text/rfc822-headers\r\n"
              "Content-Description: Delayed Message Headers\r\n"
              "\r\n"
              "Received: from printer.lan ([192.0.2.7])\r\n"
              "\tby relay.example.com with ESMTPSA id Q123; Sat, 28 Nov 2026 11:59:00 +0000\r\n"
              "From: Scanner <scanner@example.com>\r\n"
              "To: bob@example.org, carol@example.net\r\n"
              "Subject: Scan 42\r\n"
              "Message-ID: <scan42@printer.lan>\r\n"
              "\r\n"
              "------=_subrelay_dsn_0123456789ABCDEF8796A5B4C3D2E1F0--\r\n");
}

// ---- header injection ----------------------------------------------------

TEST(dsn, values_cannot_inject_headers_fields_or_parts) {
    dsn_request r = sample();
    r.reporting_mta = "relay.example.com\r\nBcc: victim@example.com";
    r.postmaster = "MAILER-DAEMON@relay\r\nBcc: victim@example.com";
    r.recipient = "scanner@example.com>\r\nBcc: victim@example.com\r\n\r\nInjected body";
    r.original_id = "Q1\r\nX-Evil: 1";
    r.date = "Sun, 29 Nov 2026\r\nBcc: victim@example.com";
    r.message_id = "<a@b>\r\nBcc: victim@example.com";
    r.recipients = {{"bob@example.org\r\nAction: delivered", "5.1.1\r\nStatus: 2.0.0",
                     "550 oops\r\nBcc: victim@example.com\r\n\r\nFinal-Recipient: rfc822; evil@example.com",
                     "mx\r\nRemote-MTA: dns; evil"},
                    {"carol@example.net\nBcc: x", "5.1.1", "550 a\rBcc: y", ""}};
    const auto msg = build_dsn(r, test_clock, test_random);
    expect_wire_clean(msg);
    for (const auto& l : lines_of(msg)) {
        EXPECT_FALSE(lower(l).starts_with("bcc")) << l;
        EXPECT_FALSE(l.starts_with("X-Evil")) << l;
        EXPECT_FALSE(l.starts_with("Injected")) << l;
    }
    const auto p = parse(msg);
    EXPECT_EQ(p.headers.size(), 8u);
    EXPECT_TRUE(all(p.headers, "bcc").empty());
    ASSERT_EQ(p.parts.size(), 3u);
    const auto groups = status_groups(p.parts[1].body);
    ASSERT_EQ(groups.size(), 3u);  // no extra recipient group
    for (std::size_t i = 1; i < groups.size(); ++i) {
        EXPECT_EQ(all(groups[i], "action").size(), 1u);
        EXPECT_EQ(one(groups[i], "action"), "failed");
        EXPECT_EQ(all(groups[i], "status").size(), 1u);
        EXPECT_EQ(all(groups[i], "final-recipient").size(), 1u);
        EXPECT_EQ(all(groups[i], "remote-mta").size(), i == 1 ? 1u : 0u);
        EXPECT_TRUE(all(groups[i], "bcc").empty());
    }
    EXPECT_EQ(one(groups[1], "status"), "5.0.0");  // "5.1.1 Status: 2.0.0" is not a status
    EXPECT_EQ(one(groups[1], "final-recipient"), "rfc822; bob@example.org Action: delivered");
    EXPECT_EQ(one(groups[1], "diagnostic-code"),
              "smtp; 550 oops Bcc: victim@example.com Final-Recipient: rfc822; evil@example.com");
    EXPECT_EQ(one(p.headers, "to"), "<scanner@example.com Bcc: victim@example.com Injected body>");
}

// ---- is_automatic --------------------------------------------------------

TEST(dsn_is_automatic, null_sender) {
    EXPECT_TRUE(is_automatic("", "Subject: hi\r\n\r\nbody\r\n"));
    EXPECT_TRUE(is_automatic("<>", "Subject: hi\r\n\r\nbody\r\n"));
}

TEST(dsn_is_automatic, ordinary_message) {
    EXPECT_FALSE(is_automatic("scanner@example.com", "Subject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n"));
    EXPECT_FALSE(is_automatic("scanner@example.com", ""));
    EXPECT_FALSE(is_automatic("scanner@example.com",
                              "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--\r\n"));
}

TEST(dsn_is_automatic, auto_submitted) {
    EXPECT_TRUE(is_automatic("a@b", "Subject: x\r\nAuto-Submitted: auto-replied\r\n\r\nb\r\n"));
    EXPECT_TRUE(is_automatic("a@b", "auto-submitted: Auto-Generated; owner-email=\"x@y\"\r\n\r\n"));
    EXPECT_TRUE(is_automatic("a@b", "Subject: x\r\nAuto-Submitted:\r\n\tauto-generated\r\n\r\n"));  // folded
    EXPECT_TRUE(is_automatic("a@b", "Subject: x\nAuto-Submitted: auto-notified\n\nb\n"));           // LF only
    EXPECT_FALSE(is_automatic("a@b", "Subject: x\r\nAuto-Submitted: no\r\n\r\nb\r\n"));
    EXPECT_FALSE(is_automatic("a@b", "AUTO-SUBMITTED:   No (a person wrote this)\r\n\r\n"));
    EXPECT_FALSE(is_automatic("a@b", "Subject: x\r\n\r\nAuto-Submitted: auto-replied\r\n"));  // in the body
    EXPECT_FALSE(is_automatic("a@b", "X-Auto-Submitted: auto-replied\r\n\r\n"));
}

TEST(dsn_is_automatic, delivery_status_report) {
    EXPECT_TRUE(is_automatic("a@b", "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"));
    EXPECT_TRUE(is_automatic("a@b", "Content-Type: Multipart/Report;\r\n boundary=\"x;y\";\r\n REPORT-TYPE = \"Delivery-Status\"\r\n\r\n"));
    EXPECT_FALSE(is_automatic("a@b", "Content-Type: multipart/report; report-type=disposition-notification\r\n\r\n"));
    EXPECT_FALSE(is_automatic("a@b", "Content-Type: multipart/mixed; report-type=delivery-status\r\n\r\n"));
    EXPECT_FALSE(is_automatic("a@b", "Content-Type: multipart/report; boundary=\"report-type=delivery-status\"\r\n\r\n"));
}

TEST(dsn_is_automatic, our_own_notice_is_automatic) {
    const auto msg = build_dsn(sample(), test_clock, test_random);
    EXPECT_TRUE(is_automatic("someone@example.com", msg));
    EXPECT_TRUE(is_automatic("", msg));
}

}  // namespace
}  // namespace subrelay::smtp
