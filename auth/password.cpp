#include "auth/password.hpp"

#include <crypt.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace subrelay::auth {
namespace {

// struct crypt_data is about 32 KiB: keep it off the coroutine/thread stack.
std::unique_ptr<crypt_data> new_crypt_data() {
    auto data = std::make_unique<crypt_data>();
    std::memset(data.get(), 0, sizeof(crypt_data));
    return data;
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// crypt(3) failure tokens start with '*' ("*0", "*1"); valid hashes never do.
bool is_failure_token(const char* out) { return out == nullptr || out[0] == '*' || out[0] == '\0'; }

}  // namespace

std::string hash_password(std::string_view password, std::string_view prefix) {
    if (has_nul(password)) {
        throw std::runtime_error("password hashing: the password contains a NUL byte");
    }
    const std::string prefix_str(prefix);
    if (prefix_str.empty() || has_nul(prefix_str)) {
        throw std::runtime_error("password hashing: invalid hash prefix");
    }
    // nullptr random bytes: libxcrypt draws the salt from the OS random source.
    std::unique_ptr<char, decltype(&std::free)> setting(
        crypt_gensalt_ra(prefix_str.c_str(), 0, nullptr, 0), &std::free);
    if (!setting || is_failure_token(setting.get())) {
        throw std::runtime_error("password hashing: unsupported hash prefix '" + prefix_str + "'");
    }
    auto data = new_crypt_data();
    const std::string phrase(password);
    const char* out = crypt_rn(phrase.c_str(), setting.get(), data.get(), static_cast<int>(sizeof(crypt_data)));
    if (is_failure_token(out)) {
        throw std::runtime_error("password hashing failed for prefix '" + prefix_str + "'");
    }
    std::string result(out);
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
    return result;
}

bool verify_password(std::string_view password, const std::string& hash) {
    if (hash.empty() || has_nul(password) || has_nul(hash)) {
        return false;
    }
    auto data = new_crypt_data();
    const std::string phrase(password);
    const char* out = crypt_rn(phrase.c_str(), hash.c_str(), data.get(), static_cast<int>(sizeof(crypt_data)));
    bool ok = false;
    if (!is_failure_token(out)) {
        const std::size_t len = std::strlen(out);
        // Lengths of the computed hash and the stored one are not secret
        // (both follow from the stored setting); the contents are compared
        // in constant time.
        ok = len == hash.size() && CRYPTO_memcmp(out, hash.data(), len) == 0;
    }
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
    return ok;
}

const std::string& dummy_hash() {
    static const std::string hash = [] {
        std::array<unsigned char, 24> raw{};
        if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
            throw std::runtime_error("password hashing: no random bytes for the dummy hash");
        }
        static constexpr char hex[] = "0123456789abcdef";
        std::string password;
        for (unsigned char c : raw) {
            password.push_back(hex[c >> 4]);
            password.push_back(hex[c & 0xf]);
        }
        return hash_password(password);
    }();
    return hash;
}

std::string generate_password(std::size_t length) {
    // Letters and digits only: a password that starts with '-' or holds
    // punctuation is mistaken for an option by device menus and tools.
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static_assert(alphabet.size() == 62);
    constexpr unsigned limit = 256 - 256 % alphabet.size();  // rejection sampling: no modulo bias
    std::string out;
    out.reserve(length);
    unsigned char bytes[64];
    while (out.size() < length) {
        if (RAND_bytes(bytes, static_cast<int>(sizeof bytes)) != 1) {
            OPENSSL_cleanse(out.data(), out.size());
            throw std::runtime_error("the random number generator failed");
        }
        for (unsigned char b : bytes) {
            if (b < limit && out.size() < length) out += alphabet[b % alphabet.size()];
        }
    }
    OPENSSL_cleanse(bytes, sizeof bytes);
    return out;
}

}  // namespace subrelay::auth

namespace subrelay::auth {

namespace {

// SHA-256 over hash, a NUL, and the password: the cache key.
std::string cache_key(std::string_view password, const std::string& hash) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const char zero = '\0';
    bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
              EVP_DigestUpdate(ctx, hash.data(), hash.size()) == 1 && EVP_DigestUpdate(ctx, &zero, 1) == 1 &&
              EVP_DigestUpdate(ctx, password.data(), password.size()) == 1 && EVP_DigestFinal_ex(ctx, md, &len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return {};
    return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace

verified_cache::verified_cache(std::chrono::seconds ttl, std::size_t max_entries, clock_fn now)
    : ttl_(ttl), max_entries_(max_entries), now_(std::move(now)) {}

bool verified_cache::verify(std::string_view password, const std::string& hash, const verify_fn& slow) {
    const std::string key = cache_key(password, hash);
    if (!key.empty()) {
        std::lock_guard lock(mutex_);
        auto it = expiry_.find(key);
        if (it != expiry_.end()) {
            if (now_() < it->second) return true;
            expiry_.erase(it);
        }
    }
    if (!slow(password, hash)) return false;
    if (!key.empty()) {
        std::lock_guard lock(mutex_);
        if (expiry_.size() >= max_entries_) {
            const auto now = now_();
            std::erase_if(expiry_, [now](const auto& e) { return e.second <= now; });
            if (expiry_.size() >= max_entries_) expiry_.clear();
        }
        expiry_[key] = now_() + ttl_;
    }
    return true;
}

std::size_t verified_cache::size() const {
    std::lock_guard lock(mutex_);
    return expiry_.size();
}

verified_cache& shared_verified_cache() {
    static verified_cache cache;
    return cache;
}

}  // namespace subrelay::auth
