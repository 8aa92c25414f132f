#pragma once
// The listeners' TLS contexts: certificates and keys from the config, and
// session resumption (tickets sealed with keys shared by every context).
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "conf/config.hpp"

namespace subrelay::relay {

// What may differ between the listeners' contexts (one per device profile).
// The defaults are the relay's own choices.
struct server_tls_options {
    int min_version = TLS1_2_VERSION;  // or TLS1_VERSION, TLS1_1_VERSION, TLS1_3_VERSION
    int security_level = -1;           // -1: OpenSSL's default; else SSL_CTX_set_security_level
    std::string ciphers{};             // empty: default; else SSL_CTX_set_cipher_list (TLS <= 1.2)
};

// A setting that cannot be used: what() is "KEY: what is wrong", e.g.
// "tls.cert_file[1]: /etc/subrelay/ecdsa.pem: cannot load certificate: ...".
class tls_setting_error : public std::runtime_error {
public:
    tls_setting_error(std::string key, std::string message)
        : std::runtime_error(key + ": " + message), key_(std::move(key)), message_(std::move(message)) {}
    [[nodiscard]] const std::string& key() const { return key_; }
    [[nodiscard]] const std::string& message() const { return message_; }  // what() without the key

private:
    std::string key_;
    std::string message_;
};

// The keys that seal session tickets (AES-256-CBC and HMAC-SHA256, as
// OpenSSL's own), made with RAND_bytes and kept only in memory. A new key
// seals tickets every `rotation`; the one before it still opens them (the
// ticket is then renewed under the new key), older ones do not. Shared by
// every server context, so a ticket is good whichever listener or profile
// made it. Thread-safe.
class ticket_key_store {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds default_rotation{12 * 3600};

    // Throws std::runtime_error when no random key can be made.
    explicit ticket_key_store(std::chrono::seconds rotation = default_rotation,
                              std::function<clock::time_point()> now = clock::now);
    ~ticket_key_store();
    ticket_key_store(const ticket_key_store&) = delete;
    ticket_key_store& operator=(const ticket_key_store&) = delete;

    // A new sealing key now; the current one becomes the previous one.
    void rotate();

    // The work of OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
    // seal returns 1, or -1 on failure; open returns 1 (current key),
    // 2 (previous key: renew the ticket), 0 (unknown key: full handshake) or -1.
    int seal(unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac) noexcept;
    int open(const unsigned char key_name[16], const unsigned char* iv, EVP_CIPHER_CTX* cipher,
             EVP_MAC_CTX* mac) noexcept;

private:
    struct key {
        std::array<unsigned char, 16> name{};
        std::array<unsigned char, 32> aes{};
        std::array<unsigned char, 32> hmac{};
        clock::time_point made;
        ~key();
    };
    static bool make_key(key& k, clock::time_point now);
    void roll(clock::time_point now);  // rotates when due; mutex_ held

    std::chrono::seconds rotation_;
    std::function<clock::time_point()> now_;
    std::mutex mutex_;
    std::unique_ptr<key> current_;
    std::unique_ptr<key> previous_;
};

// The store every context from make_server_context uses (made on first use).
std::shared_ptr<ticket_key_store> shared_ticket_keys();
// Seals ctx's tickets with `keys` instead (tests); the context keeps its own reference.
// A ticket whose cipher ctx does not allow (made under another profile's
// ciphers) gets a full handshake.
void use_ticket_keys(boost::asio::ssl::context& ctx, std::shared_ptr<ticket_key_store> keys);
// The store ctx seals tickets with; nullptr when tickets are off.
std::shared_ptr<ticket_key_store> ticket_keys_of(boost::asio::ssl::context& ctx);

// Every certificate of tls.certificates (at most one per key type: RSA,
// ECDSA, ...; OpenSSL picks per client), session tickets and the session
// cache as tls says, and the options. Throws tls_setting_error naming the
// setting and the file that could not be used.
boost::asio::ssl::context make_server_context(const conf::tls_config& tls, const server_tls_options& options = {});

}  // namespace subrelay::relay
