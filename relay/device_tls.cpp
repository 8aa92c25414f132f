#include "relay/device_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>
#include <string>

#include "relay/tls.hpp"

namespace subrelay::relay {

namespace {

int openssl_version(conf::tls_version v) {
    switch (v) {
    case conf::tls_version::v1_0: return TLS1_VERSION;
    case conf::tls_version::v1_1: return TLS1_1_VERSION;
    case conf::tls_version::v1_2: return TLS1_2_VERSION;
    case conf::tls_version::v1_3: return TLS1_3_VERSION;
    }
    return TLS1_2_VERSION;
}

}  // namespace

void apply_device_tls(boost::asio::ssl::context& ctx, const conf::device_network& device, const std::string& key) {
    SSL_CTX* native = ctx.native_handle();
    SSL_CTX_set_min_proto_version(native, openssl_version(device.tls_min_version));
    // OpenSSL 3 allows TLS 1.0 and 1.1 (SHA-1 and MD5 in their handshakes)
    // only at security level 0: a profile that asks for them gets it unless
    // it names a level itself.
    int level = device.tls_security_level;
    if (level < 0 && device.tls_min_version < conf::tls_version::v1_2) level = 0;
    if (level >= 0) SSL_CTX_set_security_level(native, level);
    if (!device.tls_ciphers.empty() && SSL_CTX_set_cipher_list(native, device.tls_ciphers.c_str()) != 1) {
        ERR_clear_error();
        throw device_tls_error(key + ".tls_ciphers", "no cipher matches \"" + device.tls_ciphers + "\"");
    }
}

server_tls::server_tls(const conf::config& cfg) : default_(make_server_context(cfg.tls.cert_file, cfg.tls.key_file)) {
    for (std::size_t i = 0; i < cfg.device_networks.size(); ++i) {
        const auto& device = cfg.device_networks[i];
        if (!device.has_tls_settings()) continue;
        auto ctx = std::make_unique<boost::asio::ssl::context>(make_server_context(cfg.tls.cert_file, cfg.tls.key_file));
        apply_device_tls(*ctx, device, "device_network[" + std::to_string(i) + "]");
        devices_.emplace_back(&device, std::move(ctx));
    }
}

boost::asio::ssl::context& server_tls::context_for(const conf::device_network* device) {
    for (auto& [d, ctx] : devices_)
        if (d == device) return *ctx;
    return default_;
}

}  // namespace subrelay::relay
