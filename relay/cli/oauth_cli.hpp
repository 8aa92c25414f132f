#pragma once
// `subrelay oauth ...`: the OAuth side of the relay for the admin.
//   oauth login --profile NAME   first sign-in of a delegated profile on a
//                                headless server (device code), storing the
//                                refresh token in the profile's refresh_token_file
//   oauth status [--json]        per profile: the grant, the current token's age
//                                and expiry, the last error (asked of the
//                                running relay over its control socket)
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace subrelay::relay {

// args[0] is "oauth", args[1] the action. Returns the exit status: 0 done,
// 1 failed, 2 usage error.
int run_oauth_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace subrelay::relay
