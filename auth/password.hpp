#pragma once
// crypt(3) password hashes (libxcrypt): yescrypt by default; bcrypt and
// sha512-crypt hashes are verified too.
#include <string>
#include <string_view>

namespace subrelay::auth {

// A new hash of `password` with a random salt. prefix "$y$" (yescrypt,
// default), "$2b$" (bcrypt) or "$6$" (sha512-crypt). Throws std::runtime_error.
std::string hash_password(std::string_view password, std::string_view prefix = "$y$");

// Constant-time comparison of crypt(password, hash) with hash. False for
// malformed hashes (never throws).
bool verify_password(std::string_view password, const std::string& hash);

// A hash of a random password, to verify against when the account does not
// exist, so that unknown and known accounts take the same time.
const std::string& dummy_hash();

}  // namespace subrelay::auth
