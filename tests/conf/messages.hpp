#pragma once
// The errors of a parse, as the lines a user reads ("FILE: key: what").
#include <string>
#include <vector>

#include "conf/config.hpp"

namespace subrelay::conf::test_support {

inline std::vector<std::string> messages(const parse_result& r) {
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    return out;
}

}  // namespace subrelay::conf::test_support
