#pragma once
// The `subrelay` command line: verbs and their options.
#include <iosfwd>
#include <string>
#include <vector>

namespace subrelay::relay {

// Runs the verb named by args (args[0] is the verb). Returns the exit status.
int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace subrelay::relay
