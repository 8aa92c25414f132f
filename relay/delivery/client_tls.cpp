#include "relay/delivery/client_tls.hpp"

#include <openssl/ssl.h>

#include <stdexcept>

#include "auth/openssl_ptr.hpp"

namespace subrelay::relay {

namespace ssl = boost::asio::ssl;

ssl::context make_client_context(const std::filesystem::path& ca_file) {
    ssl::context ctx(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_default_verify_paths();
    if (!ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.native_handle(), ca_file.c_str(), nullptr) != 1)
            throw std::runtime_error(ca_file.string() + ": cannot load CA bundle: " + auth::openssl_error());
    }
    ctx.set_verify_mode(ssl::verify_peer);
    return ctx;
}

void use_client_certificate(ssl::context& ctx, const std::filesystem::path& cert_file,
                            const std::filesystem::path& key_file) {
    if (SSL_CTX_use_certificate_chain_file(ctx.native_handle(), cert_file.c_str()) != 1)
        throw std::runtime_error(cert_file.string() + ": cannot load client certificate: " + auth::openssl_error());
    if (SSL_CTX_use_PrivateKey_file(ctx.native_handle(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error(key_file.string() + ": cannot load client key: " + auth::openssl_error());
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
        throw std::runtime_error(key_file.string() + ": client key does not match " + cert_file.string());
}

std::string describe_tls(const void* native_ssl) {
    const SSL* s = static_cast<const SSL*>(native_ssl);
    if (s == nullptr) return {};
    std::string out = SSL_get_version(s);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) out += std::string(" with cipher ") + SSL_CIPHER_get_name(c);
    if (SSL_session_reused(s) == 1) out += " (resumed)";
    return out;
}

}  // namespace subrelay::relay
