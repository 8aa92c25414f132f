#include "relay/server/tls.hpp"

#include "auth/openssl_ptr.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace subrelay::relay {

namespace ssl = boost::asio::ssl;

namespace {


// ---- the ticket key store of a context ----------------------------------------

// Each context holds a shared_ptr to its store in its ex_data; OpenSSL
// deletes it with the context.
void free_store_reference(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                          void* /*argp*/) {
    delete static_cast<std::shared_ptr<ticket_key_store>*>(ptr);
}

int store_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_store_reference);
    return index;
}

std::shared_ptr<ticket_key_store>* store_reference(SSL_CTX* ctx) {
    return static_cast<std::shared_ptr<ticket_key_store>*>(SSL_CTX_get_ex_data(ctx, store_index()));
}

int ticket_key_callback(SSL* s, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                        EVP_MAC_CTX* mac, int enc) {
    auto* keys = store_reference(SSL_get_SSL_CTX(s));
    if (keys == nullptr || *keys == nullptr) return -1;
    return enc != 0 ? (*keys)->seal(key_name, iv, cipher, mac) : (*keys)->open(key_name, iv, cipher, mac);
}

// Every context opens every ticket, but OpenSSL does not check a resumed
// session against the cipher list of the context that resumes it: a
// ticket made under a lenient device profile would bring its cipher into a
// strict one. Such a ticket gets a full handshake (and a new ticket).
SSL_TICKET_RETURN check_ticket_cipher(SSL* s, SSL_SESSION* session, const unsigned char* /*keyname*/,
                                      size_t /*keyname_length*/, SSL_TICKET_STATUS status, void* /*arg*/) {
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW) return SSL_TICKET_RETURN_IGNORE_RENEW;
    const SSL_CIPHER* cipher = SSL_SESSION_get0_cipher(session);
    const STACK_OF(SSL_CIPHER)* allowed = SSL_get_ciphers(s);
    bool found = false;
    for (int i = 0; cipher != nullptr && allowed != nullptr && i < sk_SSL_CIPHER_num(allowed) && !found; ++i)
        found = SSL_CIPHER_get_id(sk_SSL_CIPHER_value(allowed, i)) == SSL_CIPHER_get_id(cipher);
    if (!found) return SSL_TICKET_RETURN_IGNORE_RENEW;
    return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
}

bool set_mac_key(EVP_MAC_CTX* mac, unsigned char* key, std::size_t size) {
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, size),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// ---- certificates ---------------------------------------------------------------

const char* key_type_name(int base_id) {
    switch (base_id) {
        case EVP_PKEY_RSA: return "RSA";
        case EVP_PKEY_RSA_PSS: return "RSA-PSS";
        case EVP_PKEY_EC: return "ECDSA";
        case EVP_PKEY_ED25519: return "Ed25519";
        case EVP_PKEY_ED448: return "Ed448";
        case EVP_PKEY_DSA: return "DSA";
        default: return "unknown";
    }
}

std::string setting_key(const char* name, std::size_t index, std::size_t count) {
    std::string key = std::string("tls.") + name;
    if (count > 1) key += "[" + std::to_string(index) + "]";
    return key;
}

void use_certificates(SSL_CTX* native, const std::vector<conf::tls_certificate>& certificates) {
    if (certificates.empty()) throw tls_setting_error("tls.cert_file", "is required");
    struct loaded {
        int key_type;
        std::size_t index;
    };
    std::vector<loaded> seen;
    const std::size_t count = certificates.size();
    for (std::size_t i = 0; i < count; ++i) {
        const auto& [cert_file, key_file] = certificates[i];
        const auto cert_key = setting_key("cert_file", i, count);
        const auto key_key = setting_key("key_file", i, count);
        // OpenSSL keeps one certificate per key type: a second of a type
        // silently replaces the first, so it is refused.
        if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1)
            throw tls_setting_error(cert_key, cert_file.string() + ": cannot load certificate: " + auth::openssl_error());
        X509* cert = SSL_CTX_get0_certificate(native);
        const EVP_PKEY* public_key = cert != nullptr ? X509_get0_pubkey(cert) : nullptr;
        if (public_key == nullptr)
            throw tls_setting_error(cert_key, cert_file.string() + ": cannot read the certificate's public key");
        const int type = EVP_PKEY_get_base_id(public_key);
        for (const auto& s : seen) {
            if (s.key_type == type) {
                throw tls_setting_error(cert_key, cert_file.string() + ": a second " + key_type_name(type) +
                                                      " certificate (" + setting_key("cert_file", s.index, count) +
                                                      " is one too); list one certificate per key type");
            }
        }
        seen.push_back({type, i});
        if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            const unsigned long e = ERR_peek_error();
            if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
                (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH)) {
                ERR_clear_error();
                throw tls_setting_error(key_key, key_file.string() + ": private key does not match " + cert_file.string());
            }
            throw tls_setting_error(key_key, key_file.string() + ": cannot load private key: " + auth::openssl_error());
        }
        // The key went to the slot of its own type: it must be this certificate's.
        const EVP_PKEY* private_key = SSL_CTX_get0_privatekey(native);
        if (SSL_CTX_get0_certificate(native) != cert || private_key == nullptr ||
            X509_check_private_key(cert, private_key) != 1) {
            ERR_clear_error();
            throw tls_setting_error(key_key, key_file.string() + ": private key does not match " + cert_file.string());
        }
    }
}

// ---- the connection under a server SSL --------------------------------------------

// After a full TLS 1.3 handshake the server writes its session tickets and
// then, with nothing read in between, the reply to the client's next
// command. With Nagle's algorithm that reply waits for the ACK of the
// tickets, which the client, waiting for the reply, delays: 40 ms per
// connection on Linux, most of a new-connection-per-message transaction.
// Every reply is written whole, so the relay's sockets lose nothing to
// TCP_NODELAY.
void no_delay_from_the_handshake(const SSL* s, int where, int /*ret*/) {
    if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
    const int fd = SSL_get_fd(s);
    if (fd < 0) return;  // a BIO pair (tests), no socket
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // not TCP (a Unix socket): nothing to do
}

}  // namespace

// ---- ticket_key_store ---------------------------------------------------------

ticket_key_store::key::~key() {
    OPENSSL_cleanse(aes.data(), aes.size());
    OPENSSL_cleanse(hmac.data(), hmac.size());
}

ticket_key_store::ticket_key_store(std::chrono::seconds rotation, std::function<clock::time_point()> now)
    : rotation_(rotation), now_(std::move(now)), current_(std::make_unique<key>()) {
    if (!make_key(*current_, now_())) throw std::runtime_error("cannot make a session ticket key: " + auth::openssl_error());
}

ticket_key_store::~ticket_key_store() = default;

bool ticket_key_store::make_key(key& k, clock::time_point now) {
    k.made = now;
    return RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) == 1 &&
           RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) == 1 &&
           RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) == 1;
}

void ticket_key_store::rotate() {
    std::lock_guard lock(mutex_);
    auto fresh = std::make_unique<key>();
    if (!make_key(*fresh, now_())) throw std::runtime_error("cannot make a session ticket key: " + auth::openssl_error());
    previous_ = std::move(current_);
    current_ = std::move(fresh);
}

void ticket_key_store::roll(clock::time_point now) {
    const auto age = now - current_->made;
    if (age < rotation_) return;
    // On schedule, the current key becomes the previous one; after two
    // periods without a ticket it is too old to keep.
    const bool keep = age < 2 * rotation_;
    auto fresh = std::make_unique<key>();
    if (!make_key(*fresh, keep ? current_->made + rotation_ : now)) {
        ERR_clear_error();
        return;  // keep sealing with the old key rather than fail the handshake
    }
    previous_ = keep ? std::move(current_) : nullptr;
    current_ = std::move(fresh);
}

int ticket_key_store::seal(unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                           EVP_MAC_CTX* mac) noexcept {
    std::lock_guard lock(mutex_);
    roll(now_());
    const EVP_CIPHER* aes = EVP_aes_256_cbc();
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
    std::memcpy(key_name, current_->name.data(), current_->name.size());
    if (EVP_EncryptInit_ex(cipher, aes, nullptr, current_->aes.data(), iv) != 1) return -1;
    if (!set_mac_key(mac, current_->hmac.data(), current_->hmac.size())) return -1;
    return 1;
}

int ticket_key_store::open(const unsigned char key_name[16], const unsigned char* iv, EVP_CIPHER_CTX* cipher,
                           EVP_MAC_CTX* mac) noexcept {
    std::lock_guard lock(mutex_);
    roll(now_());
    key* k = nullptr;
    if (std::memcmp(key_name, current_->name.data(), current_->name.size()) == 0) {
        k = current_.get();
    } else if (previous_ != nullptr && std::memcmp(key_name, previous_->name.data(), previous_->name.size()) == 0) {
        k = previous_.get();
    } else {
        return 0;
    }
    if (!set_mac_key(mac, k->hmac.data(), k->hmac.size())) return -1;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k->aes.data(), iv) != 1) return -1;
    return k == current_.get() ? 1 : 2;
}

std::shared_ptr<ticket_key_store> shared_ticket_keys() {
    static const std::shared_ptr<ticket_key_store> keys = std::make_shared<ticket_key_store>();
    return keys;
}

void use_ticket_keys(ssl::context& ctx, std::shared_ptr<ticket_key_store> keys) {
    SSL_CTX* native = ctx.native_handle();
    auto* reference = store_reference(native);
    if (reference != nullptr) {
        *reference = std::move(keys);
    } else {
        auto owned = std::make_unique<std::shared_ptr<ticket_key_store>>(std::move(keys));
        if (SSL_CTX_set_ex_data(native, store_index(), owned.get()) != 1)
            throw std::runtime_error("cannot attach session ticket keys: " + auth::openssl_error());
        owned.release();
    }
    SSL_CTX_clear_options(native, SSL_OP_NO_TICKET);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(native, ticket_key_callback);
    SSL_CTX_set_session_ticket_cb(native, nullptr, check_ticket_cipher, nullptr);
}

std::shared_ptr<ticket_key_store> ticket_keys_of(ssl::context& ctx) {
    SSL_CTX* native = ctx.native_handle();
    if ((SSL_CTX_get_options(native) & SSL_OP_NO_TICKET) != 0) return nullptr;
    auto* reference = store_reference(native);
    return reference != nullptr ? *reference : nullptr;
}

// ---- contexts ---------------------------------------------------------------------

ssl::context make_server_context(const conf::tls_config& tls, const server_tls_options& options) {
    ssl::context ctx(ssl::context::tls_server);
    SSL_CTX* native = ctx.native_handle();
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::single_dh_use);
    if (SSL_CTX_set_min_proto_version(native, options.min_version) != 1)
        throw tls_setting_error("tls", "unsupported minimum TLS version " + std::to_string(options.min_version));
    // Before the certificates: the level decides which keys may be loaded.
    if (options.security_level >= 0) SSL_CTX_set_security_level(native, options.security_level);
    if (!options.ciphers.empty() && SSL_CTX_set_cipher_list(native, options.ciphers.c_str()) != 1)
        throw tls_setting_error("tls", "no usable cipher in \"" + options.ciphers + "\": " + auth::openssl_error());
    // An idle device connection should not hold two record buffers: OpenSSL
    // frees them between records and takes them back when data comes.
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    use_certificates(native, tls.certificates);
    SSL_CTX_set_info_callback(native, no_delay_from_the_handshake);

    // Resumption: a device that opens a connection per message skips the
    // certificate signature (and the client its verification) from the
    // second one on. Tickets carry the session sealed with the shared keys;
    // the cache serves clients that resume by session id (TLS 1.2 without
    // tickets, and TLS 1.3 when tickets are off).
    static constexpr unsigned char session_context[] = "subrelay";
    SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
    SSL_CTX_set_timeout(native, static_cast<long>(tls.session_timeout_seconds));
    if (tls.session_cache_size > 0) {
        SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(native, static_cast<long>(tls.session_cache_size));
    } else {
        SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    }
    if (tls.session_tickets) {
        use_ticket_keys(ctx, shared_ticket_keys());
    } else {
        SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
        // TLS 1.3 without tickets would still send ones that name a cached
        // session; with no cache they could never be used.
        if (tls.session_cache_size == 0) SSL_CTX_set_num_tickets(native, 0);
    }
    return ctx;
}

}  // namespace subrelay::relay
