#pragma once
// The `subrelay` command line: one table of verbs (cli.cpp), each with its
// usage text, its options and its run function.
#include <iosfwd>
#include <string>
#include <vector>

namespace subrelay::relay {

// Runs the verb named by args (args[0] is the verb). Returns the exit status:
// 0 done, 1 error, 2 the command line does not parse.
int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace subrelay::relay
