#pragma once
#include <filesystem>

namespace subrelay::relay {

// `subrelay serve`: runs the relay in the foreground until SIGTERM/SIGINT.
// SIGHUP reloads the policy file. Returns the process exit status.
int serve(const std::filesystem::path& config_file);

}  // namespace subrelay::relay
