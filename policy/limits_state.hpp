#pragma once
// The limiter's counters on disk (spool/limits.state), so that a restart
// does not hand every account a fresh quota: the one place that knows the
// file format. A text file, one event a line, times in milliseconds since
// the Unix epoch:
//
//   subrelay-limits 1
//   account scanner@contoso.com
//   message 1767225600123
//   recipients 1767225600123 3
//   end
//
// An identity is written with '%', spaces and control characters as %XX.
// The last line says the file is complete.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "policy/limits.hpp"

namespace subrelay::policy {

std::string format_limits_state(const limiter_snapshot& s);
// Throws std::runtime_error naming the line and what is wrong with it.
limiter_snapshot parse_limits_state(std::string_view text);

// nullopt when there is no file. Throws std::runtime_error, naming the file,
// when it cannot be read or is damaged.
std::optional<limiter_snapshot> load_limits_state(const std::filesystem::path& file);
// Atomically (temporary file, fsync, rename, fsync the directory), mode
// 0600. Not for two writers of one file at a time. Throws std::runtime_error.
void save_limits_state(const std::filesystem::path& file, const limiter_snapshot& s);

}  // namespace subrelay::policy
