#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace subrelay::smtp {

std::string base64_encode(std::string_view data);
// nullopt on invalid input (bad characters, bad padding). Whitespace is not allowed.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace subrelay::smtp
