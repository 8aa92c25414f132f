#pragma once
#include <string_view>

namespace subrelay::relay {

// Logs go to stderr, one line per event. Returns false for an unknown level.
bool setup_logging(std::string_view level);

}  // namespace subrelay::relay
