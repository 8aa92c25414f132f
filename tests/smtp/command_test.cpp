#include "smtp/command.hpp"

#include <gtest/gtest.h>

namespace subrelay::smtp {
namespace {

command ok(std::string_view line) {
    auto r = parse_command(line);
    if (auto* e = std::get_if<parse_error>(&r)) {
        ADD_FAILURE() << "unexpected error for '" << line << "': " << e->code << ' ' << e->enhanced << ' ' << e->text;
        return {};
    }
    return std::get<command>(r);
}

parse_error err(std::string_view line) {
    auto r = parse_command(line);
    if (auto* e = std::get_if<parse_error>(&r)) return *e;
    ADD_FAILURE() << "expected an error for '" << line << "'";
    return {0, "", ""};
}

TEST(command, verbs_are_case_insensitive) {
    EXPECT_EQ(ok("ehlo client.example").kind, verb::ehlo);
    EXPECT_EQ(ok("EhLo client.example").name, "EHLO");
    EXPECT_EQ(ok("QUIT").kind, verb::quit);
    EXPECT_EQ(ok("noop").kind, verb::noop);
    EXPECT_EQ(ok("StartTLS").kind, verb::starttls);
    EXPECT_EQ(ok("bdat 10 LAST").kind, verb::bdat);
    EXPECT_EQ(ok("EXPN list").kind, verb::expn);
    EXPECT_EQ(ok("HELP").kind, verb::help);
    EXPECT_EQ(ok("VRFY bob").kind, verb::vrfy);
    EXPECT_EQ(ok("XYZZY plugh").kind, verb::unknown);
    EXPECT_EQ(ok("").kind, verb::unknown);
    EXPECT_EQ(ok("MAILX FROM:<a@b.c>").kind, verb::unknown);
}

TEST(command, parse_verb) {
    EXPECT_EQ(parse_verb("rcpt"), verb::rcpt);
    EXPECT_EQ(parse_verb("AUTH"), verb::auth);
    EXPECT_EQ(parse_verb("AUTHX"), verb::unknown);
    EXPECT_EQ(parse_verb(""), verb::unknown);
}

TEST(command, argument_is_raw_rest) {
    auto c = ok("HELO  spaced.example ");
    EXPECT_EQ(c.argument, " spaced.example ");
    EXPECT_EQ(ok("NOOP hello there").argument, "hello there");
}

TEST(command, mail_from) {
    auto c = ok("MAIL FROM:<alice@example.com>");
    EXPECT_EQ(c.kind, verb::mail);
    EXPECT_EQ(c.path, "alice@example.com");
    EXPECT_TRUE(c.params.empty());
}

TEST(command, mail_from_case_and_space_after_colon) {
    EXPECT_EQ(ok("mail from:<a@example.com>").path, "a@example.com");
    EXPECT_EQ(ok("MAIL FROM: <a@example.com>").path, "a@example.com");
}

TEST(command, null_sender) {
    auto c = ok("MAIL FROM:<>");
    EXPECT_EQ(c.path, "");
}

TEST(command, mail_params) {
    auto c = ok("MAIL FROM:<a@example.com> size=1000 BODY=8bitmime SMTPUTF8 AUTH=<>");
    EXPECT_EQ(c.params.at("SIZE"), "1000");
    EXPECT_EQ(c.params.at("BODY"), "8BITMIME");
    EXPECT_EQ(c.params.at("SMTPUTF8"), "");
    EXPECT_EQ(c.params.at("AUTH"), "<>");
    EXPECT_EQ(ok("MAIL FROM:<a@example.com>  BODY=7BIT  ").params.at("BODY"), "7BIT");
}

TEST(command, mail_param_errors) {
    EXPECT_EQ(err("MAIL FROM:<a@example.com> SIZE=abc").code, 501);
    EXPECT_EQ(err("MAIL FROM:<a@example.com> SIZE=").code, 501);
    EXPECT_EQ(err("MAIL FROM:<a@example.com> SIZE=123456789012345678901").code, 501);
    EXPECT_EQ(err("MAIL FROM:<a@example.com> BODY=BINARYMIME").code, 501);
    EXPECT_EQ(err("MAIL FROM:<a@example.com> SMTPUTF8=yes").code, 501);
    EXPECT_EQ(err("MAIL FROM:<a@example.com> SIZE=1 SIZE=2").code, 501);
    EXPECT_EQ(err("MAIL FROM:<a@example.com> =x").code, 501);
    auto unknown = err("MAIL FROM:<a@example.com> RET=HDRS");
    EXPECT_EQ(unknown.code, 555);
    EXPECT_EQ(unknown.enhanced, "5.5.4");
    EXPECT_EQ(err("MAIL FROM:<a@example.com>SIZE=1").code, 501);
}

TEST(command, mail_syntax_errors) {
    auto e = err("MAIL TO:<a@example.com>");
    EXPECT_EQ(e.code, 501);
    EXPECT_EQ(e.enhanced, "5.5.4");
    EXPECT_EQ(err("MAIL").code, 501);
    EXPECT_EQ(err("MAIL FROM:").enhanced, "5.5.4");
    EXPECT_EQ(err("MAIL FROM:   ").enhanced, "5.5.4");
}

// Postfix's strict_rfc821_envelopes = no, which old devices rely on.
TEST(command, paths_without_angle_brackets_and_extra_spaces) {
    EXPECT_EQ(ok("MAIL FROM:a@example.com").path, "a@example.com");
    EXPECT_EQ(ok("MAIL FROM: a@example.com").path, "a@example.com");
    EXPECT_EQ(ok("RCPT TO:b@example.org").path, "b@example.org");
    EXPECT_EQ(ok("MAIL  FROM:<a@example.com>").path, "a@example.com");
    EXPECT_EQ(ok("RCPT   TO: <b@example.org> ").path, "b@example.org");
    const auto with_params = ok("MAIL FROM:a@example.com SIZE=100 BODY=8bitmime");
    EXPECT_EQ(with_params.path, "a@example.com");
    EXPECT_EQ(with_params.params.at("SIZE"), "100");
    EXPECT_EQ(with_params.params.at("BODY"), "8BITMIME");
    // Still an address, still checked.
    EXPECT_EQ(err("MAIL FROM:not-an-address").enhanced, "5.1.7");
    EXPECT_EQ(err("MAIL FROM:a@example.com>").enhanced, "5.1.7");
    EXPECT_EQ(err("RCPT TO:b@@example.org").enhanced, "5.1.3");
    EXPECT_EQ(err("MAIL FROM:a@example.com SIZE=x").code, 501);
}

TEST(command, bad_sender_path) {
    for (const char* line : {"MAIL FROM:<not an address>", "MAIL FROM:<a@example.com", "MAIL FROM:<a@@example.com>",
                             "MAIL FROM:<alice>", "MAIL FROM:<@route>"}) {
        auto e = err(line);
        EXPECT_EQ(e.code, 501) << line;
        EXPECT_EQ(e.enhanced, "5.1.7") << line;
    }
}

TEST(command, rcpt_to) {
    auto c = ok("RCPT TO:<bob@example.org>");
    EXPECT_EQ(c.kind, verb::rcpt);
    EXPECT_EQ(c.path, "bob@example.org");
    EXPECT_EQ(ok("rcpt to: <bob@example.org>").path, "bob@example.org");
    EXPECT_EQ(ok("RCPT TO:<Postmaster>").path, "Postmaster");
    EXPECT_EQ(ok("RCPT TO:<@relay.example,@b.example:bob@example.org>").path, "bob@example.org");
    EXPECT_EQ(ok("RCPT TO:<\"odd>name\"@example.org>").path, "\"odd>name\"@example.org");
}

TEST(command, bad_recipient_path) {
    for (const char* line : {"RCPT TO:<>", "RCPT TO:<bob>", "RCPT TO:<bob@>", "RCPT TO:<bob@example.org"}) {
        auto e = err(line);
        EXPECT_EQ(e.code, 501) << line;
        EXPECT_EQ(e.enhanced, "5.1.3") << line;
    }
    EXPECT_EQ(err("RCPT FROM:<bob@example.org>").enhanced, "5.5.4");
    EXPECT_EQ(err("RCPT TO:<bob@example.org> NOTIFY=NEVER").code, 555);
}

TEST(command, arguments_required_or_forbidden) {
    EXPECT_EQ(err("HELO").code, 501);
    EXPECT_EQ(err("EHLO ").enhanced, "5.5.4");
    EXPECT_EQ(err("DATA now").code, 501);
    EXPECT_EQ(err("RSET x").code, 501);
    EXPECT_EQ(err("STARTTLS x").code, 501);
    EXPECT_EQ(err("VRFY").code, 501);
    EXPECT_EQ(err("AUTH").code, 501);
    EXPECT_EQ(err("AUTH PLAIN a b").code, 501);
    EXPECT_EQ(ok("AUTH PLAIN AGEAYg==").argument, "PLAIN AGEAYg==");
    EXPECT_EQ(ok("DATA").kind, verb::data);
    EXPECT_EQ(ok("QUIT now").kind, verb::quit);
}

TEST(command, utf8_paths) {
    auto c = ok("MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8");
    EXPECT_EQ(c.path, "j\xc3\xb6rg@example.com");
}

}  // namespace
}  // namespace subrelay::smtp
