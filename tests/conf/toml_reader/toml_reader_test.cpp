#include "conf/toml_reader/toml_reader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace subrelay::toml_reader {
namespace {

toml::table parse(std::string_view text) {
    std::string error;
    auto table = parse_document(text, "test.toml", error);
    EXPECT_TRUE(table.has_value()) << error;
    return table.value_or(toml::table{});
}

std::vector<std::string> texts(const std::vector<problem>& problems) {
    std::vector<std::string> out;
    for (const auto& p : problems) out.push_back(p.key + ": " + p.message);
    return out;
}

TEST(toml_reader, keys_and_strings) {
    EXPECT_EQ(join_key("", "server"), "server");
    EXPECT_EQ(join_key("oauth.profiles", "app-1_x"), "oauth.profiles.app-1_x");
    EXPECT_EQ(join_key("oauth.profiles", "two words"), "oauth.profiles.\"two words\"");
    EXPECT_EQ(index_key("mailbox", 2), "mailbox[2]");
    EXPECT_EQ(index_key(join_key("server", "submission"), 1), "server.submission[1]");
    EXPECT_EQ(toml_string("$6$a/b \"q\" \\ \t\x01"), "\"$6$a/b \\\"q\\\" \\\\ \\t\\u0001\"");
}

TEST(toml_reader, syntax_errors_name_line_and_column) {
    std::string error;
    EXPECT_FALSE(parse_document("a = 1\nb = = 2\n", "test.toml", error));
    EXPECT_EQ(error.rfind("syntax error at line 2, column ", 0), 0u) << error;
}

TEST(toml_reader, reads_typed_values_and_reports_every_problem_with_its_path) {
    const auto doc = parse("[server]\n"
                           "hostname = \"relay.example.test\"\n"
                           "require_tls_for_auth = \"yes\"\n"
                           "port = 70000\n"
                           "submission = [\"0.0.0.0:587\", 465]\n"
                           "typo = 1\n");
    std::vector<problem> problems;
    table_reader root(doc, "", problems);
    const toml::table* server = root.table("server");
    ASSERT_NE(server, nullptr);
    table_reader r(*server, "server", problems);
    std::string hostname;
    EXPECT_TRUE(r.read("hostname", hostname));
    EXPECT_EQ(hostname, "relay.example.test");
    bool tls = true;
    EXPECT_FALSE(r.read("require_tls_for_auth", tls));
    EXPECT_TRUE(tls);
    std::uint16_t port = 0;
    EXPECT_FALSE(r.read_number("port", port, 1));
    std::vector<std::string> submission{"kept"};
    EXPECT_FALSE(r.read("submission", submission));
    EXPECT_EQ(submission, std::vector<std::string>{"kept"});
    std::string absent = "unchanged";
    EXPECT_FALSE(r.read("absent", absent));
    EXPECT_EQ(absent, "unchanged");
    r.finish();
    root.finish();
    EXPECT_EQ(texts(problems), (std::vector<std::string>{
                                   "server.require_tls_for_auth: expected a boolean, got a string",
                                   "server.port: must be between 1 and 65535, got 70000",
                                   "server.submission[1]: expected a string, got an integer",
                                   "server.typo: unknown key",
                               }));
}

TEST(toml_reader, integer_bounds) {
    const auto doc = parse("a = 0\nb = -5\nc = 9223372036854775807\n");
    std::vector<problem> problems;
    table_reader r(doc, "t", problems);
    std::int64_t v = 0;
    EXPECT_FALSE(r.read_integer("a", v, 1, std::numeric_limits<std::int64_t>::max()));
    EXPECT_FALSE(r.read_integer("b", v, 0, std::numeric_limits<std::int64_t>::max()));
    std::uint32_t small = 0;
    EXPECT_FALSE(r.read_number("c", small, 0));
    r.finish();
    EXPECT_EQ(texts(problems), (std::vector<std::string>{
                                   "t.a: must be greater than 0, got 0",
                                   "t.b: must be at least 0, got -5",
                                   "t.c: must be at most 4294967295, got 9223372036854775807",
                               }));
}

}  // namespace
}  // namespace subrelay::toml_reader
