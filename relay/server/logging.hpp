#pragma once
// Logs go to stderr, one line per event: as text, or as JSON lines for
// Loki or Elastic with the same content.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subrelay::relay {

enum class log_format { text, json };

// Returns false for an unknown level.
bool setup_logging(std::string_view level, log_format format = log_format::text);

// The key=value fields of a log message, in order, as the JSON format
// carries them besides the whole message: `key` is lower-case letters,
// digits and '_' after a space (or at the start); a value is a quoted string
// ("..." with \" inside), an <address> or <list>, or runs to the next space,
// without a trailing ':' ';' or ','. The first of a repeated key wins.
std::vector<std::pair<std::string, std::string>> log_fields(std::string_view message);

// One JSON line (no newline): {"time":...,"level":...,"msg":...,FIELDS}.
// The fields named time, level and msg are left out.
std::string json_log_line(std::string_view time, std::string_view level, std::string_view message);

}  // namespace subrelay::relay
