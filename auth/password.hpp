#pragma once
// crypt(3) password hashes (libxcrypt): yescrypt by default; bcrypt and
// sha512-crypt hashes are verified too.
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
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

// A new random password of `length` letters and digits (OpenSSL
// RAND_bytes): what a device's menu takes as typed. Throws std::runtime_error.
std::string generate_password(std::size_t length = 24);

}  // namespace subrelay::auth

namespace subrelay::auth {

// Password hashes are deliberately slow. A device that logs in for every
// message must not pay the hash each time: a successful check is
// remembered for a short while, keyed by a digest of (hash, password), so
// a changed password (a new hash) misses at once, and nothing that could
// reveal the password is kept. Failures are never remembered. Thread-safe.
class verified_cache {
public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
    using verify_fn = std::function<bool(std::string_view password, const std::string& hash)>;

    explicit verified_cache(std::chrono::seconds ttl = std::chrono::minutes(5), std::size_t max_entries = 4096,
                            clock_fn now = [] { return std::chrono::steady_clock::now(); });

    // verify_password(password, hash), or a remembered success.
    bool verify(std::string_view password, const std::string& hash, const verify_fn& slow = verify_password);

    [[nodiscard]] std::size_t size() const;

private:
    std::chrono::seconds ttl_;
    std::size_t max_entries_;
    clock_fn now_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> expiry_;  // digest -> until
};

// The one the SASL password check uses.
verified_cache& shared_verified_cache();

}  // namespace subrelay::auth
