#include "relay/server/logging.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace subrelay::relay {
namespace {

using fields = std::vector<std::pair<std::string, std::string>>;

TEST(log_fields, the_accepted_line) {
    EXPECT_EQ(log_fields("accepted id=0123ABCD account=scanner@contoso.com client=192.0.2.7 "
                         "from=<scanner@contoso.com> to=<a@example.org>,<b@example.org> size=1234"),
              (fields{{"id", "0123ABCD"},
                      {"account", "scanner@contoso.com"},
                      {"client", "192.0.2.7"},
                      {"from", "<scanner@contoso.com>"},
                      {"to", "<a@example.org>,<b@example.org>"},
                      {"size", "1234"}}));
}

TEST(log_fields, quoted_values_and_trailing_punctuation) {
    EXPECT_EQ(log_fields("delivery id=ABC upstream=relay@contoso.com: status=sent reply=\"250 2.0.0 OK \\\"queued\\\"\""),
              (fields{{"id", "ABC"}, {"upstream", "relay@contoso.com"}, {"status", "sent"},
                      {"reply", "250 2.0.0 OK \"queued\""}}));
    EXPECT_EQ(log_fields("auth refused: account=a@b reason=\"unterminated"),
              (fields{{"account", "a@b"}, {"reason", "unterminated"}}));
}

TEST(log_fields, only_keys_after_a_space_and_the_first_of_each) {
    EXPECT_EQ(log_fields("x=1 a==2 Upper=3 url=https://h/?q=4 x=5 =6 b="),
              (fields{{"x", "1"}, {"a", "=2"}, {"url", "https://h/?q=4"}, {"b", ""}}));
    EXPECT_TRUE(log_fields("listening on 127.0.0.1:587 (STARTTLS)").empty());
}

TEST(json_log_line, is_one_json_object_with_the_fields) {
    const std::string line = json_log_line("2026-12-05T09:00:00.000+00:00", "info",
                                           "auth failed: account=a@b client=192.0.2.1 msg=x time=y level=z");
    const auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v.at("time"), "2026-12-05T09:00:00.000+00:00");
    EXPECT_EQ(v.at("level"), "info");
    EXPECT_EQ(v.at("msg"), "auth failed: account=a@b client=192.0.2.1 msg=x time=y level=z")
        << "a field cannot replace the line's own";
    EXPECT_EQ(v.at("account"), "a@b");
    EXPECT_EQ(v.at("client"), "192.0.2.1");
    EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(json_log_line, what_is_not_utf8_becomes_a_replacement_character) {
    const std::string line = json_log_line("t", "info", std::string("helo=caf\xC3\xA9 bad=\xFF\xC0\xAF x\x01y"));
    const auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v.at("helo"), "caf\xC3\xA9");
    EXPECT_EQ(v.at("bad"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "an invalid byte and an overlong form";
    EXPECT_NE(std::string_view(v.at("msg").as_string()).find("x\x01y"), std::string_view::npos);
    EXPECT_NE(line.find("\\u0001"), std::string::npos) << "a control character is escaped, not written raw";
}

}  // namespace
}  // namespace subrelay::relay
