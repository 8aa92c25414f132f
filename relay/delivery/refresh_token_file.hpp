#pragma once
// A profile's refresh token in its refresh_token_file: read at every use
// (a new `subrelay oauth login` takes effect at once), replaced atomically
// and privately (0600: written to FILE.tmp, fsynced, renamed, directory
// fsynced), so a crash leaves the old token or the new one, never neither.
#include <filesystem>
#include <memory>
#include <string>

#include "auth/grant.hpp"

namespace subrelay::relay {

// `key` names the setting in errors ("oauth.profiles.NAME.refresh_token_file").
std::shared_ptr<auth::refresh_token_store> refresh_token_file(std::filesystem::path file, std::string key);

}  // namespace subrelay::relay
