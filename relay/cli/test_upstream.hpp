#pragma once
// `subrelay test-upstream [--profile NAME] [--mailbox X] [--config FILE]`:
// checks one upstream mailbox's whole path without sending mail: gets a
// token, connects, shows the TLS version and certificate, EHLO, AUTH XOAUTH2,
// and stops before MAIL. Every step is printed with a pass/fail mark and,
// on failure, the hint that says what to fix.
#include <iosfwd>
#include <string>
#include <vector>

namespace subrelay::relay {

// args[0] is "test-upstream". Returns 0 when every step passed, 1 when one
// failed, 2 on a usage error.
int run_test_upstream(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace subrelay::relay
