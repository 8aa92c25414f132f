// subrelay: SMTP submission relay with OAuth2 (XOAUTH2) upstream.
#include <iostream>
#include <string>
#include <vector>

#include "relay/cli/cli.hpp"

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    return subrelay::relay::run_cli(args, std::cin, std::cout, std::cerr);
}
