#include "smtp/data.hpp"

#include <gtest/gtest.h>

namespace subrelay::smtp {
namespace {

struct read_result {
    bool done;
    std::size_t consumed;
    std::string message;
};

read_result read_all(std::string_view in, std::size_t max = 1 << 20) {
    data_reader r(max);
    const auto n = r.consume(in);
    return {r.done(), n, r.message()};
}

TEST(data_reader, simple_message) {
    const std::string in = "Subject: hi\r\n\r\nbody\r\n.\r\n";
    auto r = read_all(in);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, in.size());
    EXPECT_EQ(r.message, "Subject: hi\r\n\r\nbody\r\n");
}

TEST(data_reader, empty_message) {
    auto r = read_all(".\r\n");
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.message, "");
}

TEST(data_reader, bytes_after_terminator_are_not_consumed) {
    const std::string in = "a\r\n.\r\nQUIT\r\n";
    auto r = read_all(in);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, in.size() - 6);
    EXPECT_EQ(r.message, "a\r\n");
}

TEST(data_reader, dot_unstuffing) {
    auto r = read_all("..leading\r\n...two\r\nmid.dle\r\n.\r\n");
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.message, ".leading\r\n..two\r\nmid.dle\r\n");
}

TEST(data_reader, dot_line_with_text_is_unstuffed_not_terminator) {
    auto r = read_all(".x\r\n.\r\n");
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.message, "x\r\n");
}

// SMTP smuggling: only <CRLF>.<CRLF> ends DATA; every lone-CR/LF variant is content.
class smuggling : public ::testing::TestWithParam<const char*> {};

TEST_P(smuggling, does_not_end_data) {
    const std::string in = std::string("Subject: a\r\n\r\nx") + GetParam() + "MAIL FROM:<evil@example.com>\r\n";
    data_reader r(1 << 20);
    EXPECT_EQ(r.consume(in), in.size());
    EXPECT_FALSE(r.done());
    EXPECT_EQ(r.consume("\r\n.\r\n"), 5u);
    EXPECT_TRUE(r.done());
    EXPECT_NE(r.message().find("MAIL FROM:<evil@example.com>"), std::string::npos);
    // Whatever the server keeps, sending it on never produces an end of data early.
    const auto wire = dot_stuff(r.message());
    EXPECT_EQ(wire.find("\r\n.\r\n"), wire.size() - 5);
}

INSTANTIATE_TEST_SUITE_P(variants, smuggling,
                         ::testing::Values("\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n", "\n.\r", "\r\n.\r\r\n",
                                           "\r\n.\n\r\n", "\r\r\n.\r\r\n"));

// A client that ends lines with a bare LF and dot-stuffs after each LF
// (Python's smtplib.sendmail with bytes). Refused by default: what we would
// relay could not be what was meant.
TEST(data_reader, bare_lf_is_content_but_remembered) {
    data_reader r(1 << 20);
    const std::string in = "Subject: x\n\n..hidden\nend\r\n.\r\n";
    EXPECT_EQ(r.consume(in), in.size());
    ASSERT_TRUE(r.done());
    EXPECT_TRUE(r.saw_bare_lf());
    data_reader clean(1 << 20);
    clean.consume("a\r\nb\r\r\n.\r\n");
    ASSERT_TRUE(clean.done());
    EXPECT_FALSE(clean.saw_bare_lf());
}

TEST(data_reader, bare_lf_found_in_every_position) {
    for (const char* in : {"\n", "a\n", "a\r\n\n", "a\r\n.\n", ".\n", "a\r\n.x\ny"}) {
        data_reader r(1 << 20);
        r.consume(in);
        EXPECT_TRUE(r.saw_bare_lf()) << in;
    }
}

TEST(data_reader, accepted_bare_lf_ends_lines_and_is_unstuffed) {
    data_reader r(1 << 20, bare_lf::accept);
    const std::string in = "Subject: x\n\n..hidden\n.\nNEXT";
    EXPECT_EQ(r.consume(in), in.size() - 4);
    ASSERT_TRUE(r.done());
    EXPECT_FALSE(r.saw_bare_lf());
    EXPECT_EQ(r.message(), "Subject: x\r\n\r\n.hidden\r\n");
    // The round trip to the upstream gives back what the client meant.
    data_reader upstream(1 << 20);
    upstream.consume(dot_stuff(r.message()));
    EXPECT_EQ(upstream.message(), "Subject: x\r\n\r\n.hidden\r\n");
}

TEST(data_reader, accepted_bare_lf_mixes_with_crlf) {
    const std::pair<const char*, const char*> cases[] = {
        {"a\r\n..b\n.\r\n", "a\r\n.b\r\n"},     // <LF>.<CRLF>
        {"a\n..b\r\n.\n", "a\r\n.b\r\n"},        // <CRLF>.<LF>
        {"a\r\n\n.\r\n", "a\r\n\r\n"},           // an empty line ended by LF
        {"a\rb\n.\n", "a\rb\r\n"},                // a bare CR stays content
        {"..\n.\n", ".\r\n"},
    };
    for (const auto& [in, expected] : cases) {
        data_reader r(1 << 20, bare_lf::accept);
        r.consume(in);
        ASSERT_TRUE(r.done()) << in;
        EXPECT_EQ(r.message(), expected) << in;
    }
}

TEST(data_reader, accepted_bare_lf_byte_by_byte_equals_whole) {
    const std::string in = "a\n..b\r\n\n.x\r.\r\nc\n.\n";
    data_reader whole(1 << 20, bare_lf::accept);
    whole.consume(in);
    data_reader bytes(1 << 20, bare_lf::accept);
    for (const char c : in) bytes.consume(std::string_view(&c, 1));
    ASSERT_TRUE(whole.done());
    ASSERT_TRUE(bytes.done());
    EXPECT_EQ(whole.message(), bytes.message());
    EXPECT_EQ(whole.message(), "a\r\n.b\r\n\r\nx\r.\r\nc\r\n");
}

TEST(data_reader, byte_by_byte_equals_whole) {
    const std::string in = "a\r\n..b\r\n\n.\n\r.\r\n.\rz\r\n.x\r\n\r\n.\r\nNEXT";
    data_reader whole(1 << 20);
    const auto n = whole.consume(in);
    ASSERT_TRUE(whole.done());
    data_reader bytes(1 << 20);
    std::size_t used = 0;
    for (std::size_t i = 0; i < in.size() && !bytes.done(); ++i) used += bytes.consume(std::string_view(in).substr(i, 1));
    EXPECT_TRUE(bytes.done());
    EXPECT_EQ(used, n);
    EXPECT_EQ(bytes.message(), whole.message());
    EXPECT_EQ(whole.message(), "a\r\n.b\r\n\n.\n\r.\r\n\rz\r\nx\r\n\r\n");
}

TEST(data_reader, split_terminator_across_calls) {
    data_reader r(100);
    EXPECT_EQ(r.consume("hello\r"), 6u);
    EXPECT_EQ(r.consume("\n."), 2u);
    EXPECT_FALSE(r.done());
    EXPECT_EQ(r.consume("\r"), 1u);
    EXPECT_FALSE(r.done());
    EXPECT_EQ(r.consume("\nrest"), 1u);
    EXPECT_TRUE(r.done());
    EXPECT_EQ(r.message(), "hello\r\n");
}

TEST(data_reader, size_limit) {
    data_reader r(10);
    EXPECT_EQ(r.consume("0123456789\r\n"), 12u);
    EXPECT_TRUE(r.too_big());
    EXPECT_TRUE(r.message().empty());
    r.consume(std::string(1000, 'x'));
    EXPECT_FALSE(r.done());
    r.consume("\r\n.\r\n");
    EXPECT_TRUE(r.done());
    EXPECT_TRUE(r.too_big());
    EXPECT_EQ(r.size(), 12u + 1000 + 2);
}

TEST(data_reader, exactly_at_limit_is_fine) {
    data_reader r(5);
    r.consume("abc\r\n.\r\n");
    EXPECT_TRUE(r.done());
    EXPECT_FALSE(r.too_big());
    EXPECT_EQ(r.take_message(), "abc\r\n");
}

// Taken as it goes, the message is never held whole: what is kept is only
// what came since the last take, and the pieces add up to the message.
TEST(data_reader, taken_as_it_goes) {
    const std::string in = "a\r\n..b\r\nccc\r\n.\r\n";
    data_reader r(1 << 20);
    std::string piece = "stale";
    std::string all;
    for (const char c : in) {
        r.consume(std::string_view(&c, 1));
        EXPECT_LE(r.message().size(), 2u);
        r.take_message_into(piece);
        all += piece;
    }
    ASSERT_TRUE(r.done());
    EXPECT_EQ(all, "a\r\n.b\r\nccc\r\n");
    EXPECT_EQ(r.size(), all.size());
}

TEST(data_reader, take_swaps_buffers) {
    data_reader r(1 << 20);
    std::string piece;
    piece.reserve(4096);
    const char* const buffer = piece.data();
    r.consume("first\r\n");
    r.take_message_into(piece);
    EXPECT_EQ(piece, "first\r\n");
    r.consume(std::string(100, 'x'));
    EXPECT_EQ(r.message().data(), buffer) << "the reader reuses the buffer it was given";
}

TEST(data_reader, dropped_content_is_counted_not_kept) {
    data_reader r(1 << 20);
    r.consume("kept\r\n");
    r.drop_content();
    EXPECT_TRUE(r.message().empty());
    r.consume("dropped\r\n.\r\n");
    EXPECT_TRUE(r.done());
    EXPECT_TRUE(r.message().empty());
    EXPECT_FALSE(r.too_big());
    EXPECT_EQ(r.size(), 15u);
}

TEST(data_reader, too_big_is_noticed_after_a_drop) {
    data_reader r(10);
    r.consume("a\nb");  // a bare LF: the session drops the content
    r.drop_content();
    r.consume(std::string(20, 'x'));
    EXPECT_TRUE(r.too_big());
}

TEST(dot_stuff, basics) {
    EXPECT_EQ(dot_stuff(""), ".\r\n");
    EXPECT_EQ(dot_stuff("a\r\n"), "a\r\n.\r\n");
    EXPECT_EQ(dot_stuff("a"), "a\r\n.\r\n");
    EXPECT_EQ(dot_stuff(".a\r\n.\r\n..\r\n"), "..a\r\n..\r\n...\r\n.\r\n");
    EXPECT_EQ(dot_stuff("x.y\r\n"), "x.y\r\n.\r\n");
}

TEST(dot_stuff, bare_cr_and_lf_become_crlf) {
    EXPECT_EQ(dot_stuff("a\nb\rc\r\n"), "a\r\nb\r\nc\r\n.\r\n");
    EXPECT_EQ(dot_stuff("a\n.\nb"), "a\r\n..\r\nb\r\n.\r\n");
    EXPECT_EQ(dot_stuff("a\r.\r\n"), "a\r\n..\r\n.\r\n");
    EXPECT_EQ(dot_stuff("a\r\r\n"), "a\r\n\r\n.\r\n");
}

TEST(dot_stuff, into_appends_to_what_is_there) {
    std::string out = "MAIL FROM:<a@b>\r\n";
    dot_stuff_into(out, ".x\ny\r");
    EXPECT_EQ(out, "MAIL FROM:<a@b>\r\n..x\r\ny\r\n.\r\n");
    std::string trailing_cr;
    dot_stuff_into(trailing_cr, "z\r");
    EXPECT_EQ(trailing_cr, "z\r\n.\r\n");
}

TEST(dot_stuff, round_trip_through_reader) {
    const std::string messages[] = {
        "", "a\r\n", ".\r\n", "..\r\n", "Subject: x\r\n\r\n.hidden\r\n.\r\n..\r\nend\r\n", ".", "no newline",
    };
    for (const auto& m : messages) {
        const auto wire = dot_stuff(m);
        data_reader r(1 << 20);
        EXPECT_EQ(r.consume(wire), wire.size()) << m;
        ASSERT_TRUE(r.done()) << m;
        std::string expected = m;
        if (!expected.empty() && !expected.ends_with("\r\n")) expected += "\r\n";
        EXPECT_EQ(r.message(), expected) << m;
    }
}

TEST(dot_stuff, round_trip_normalizes_bare_line_ends) {
    const std::string m = "a\n.\nb\r.c\r\n";
    const auto wire = dot_stuff(m);
    data_reader r(1 << 20);
    EXPECT_EQ(r.consume(wire), wire.size());
    ASSERT_TRUE(r.done());
    EXPECT_EQ(r.message(), "a\r\n.\r\nb\r\n.c\r\n");
}


// A message read from the spool in pieces goes on the wire exactly as the
// whole would: every cut of every sample, and a cut into three.
TEST(dot_stuffer, pieces_give_the_bytes_of_the_whole) {
    const std::string messages[] = {
        "", "a\r\n", ".\r\n", "..a\r\n.\r\n", "a\r\n.b\r\n", "a\r\r\n", "a\rb", "a\n.\nb", "x\r", ".", "\r\n.\r\n",
        "Subject: x\r\n\r\n.hidden\r\n.\r\n..\r\nend",
    };
    for (const auto& m : messages) {
        const std::string whole = dot_stuff(m);
        for (std::size_t cut = 0; cut <= m.size(); ++cut) {
            for (std::size_t cut2 = cut; cut2 <= m.size(); ++cut2) {
                dot_stuffer s;
                std::string out;
                s.add(out, std::string_view(m).substr(0, cut));
                s.add(out, std::string_view(m).substr(cut, cut2 - cut));
                s.add(out, std::string_view(m).substr(cut2));
                s.finish(out);
                EXPECT_EQ(out, whole) << "message '" << m << "' cut at " << cut << " and " << cut2;
            }
        }
    }
}

TEST(dot_stuffer, is_ready_for_the_next_message_after_finish) {
    dot_stuffer s;
    std::string out;
    s.add(out, "a\r");
    s.finish(out);
    s.add(out, "\n.b");
    s.finish(out);
    EXPECT_EQ(out, "a\r\n.\r\n\r\n..b\r\n.\r\n");
}

}  // namespace
}  // namespace subrelay::smtp
