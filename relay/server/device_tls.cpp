#include "relay/server/device_tls.hpp"

#include <string>

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

server_tls_options device_tls_options(const conf::device_network& device) {
    server_tls_options o;
    o.min_version = openssl_version(device.tls_min_version);
    // OpenSSL 3 allows TLS 1.0 and 1.1 (SHA-1 and MD5 in their handshakes)
    // only at security level 0: a profile that asks for them gets it unless
    // it names a level itself.
    o.security_level = device.tls_security_level;
    if (o.security_level < 0 && device.tls_min_version < conf::tls_version::v1_2) o.security_level = 0;
    o.ciphers = device.tls_ciphers;
    return o;
}

server_tls::contexts::contexts(const conf::config& cfg) : default_(make_server_context(cfg.tls)) {
    for (std::size_t i = 0; i < cfg.device_networks.size(); ++i) {
        const auto& device = cfg.device_networks[i];
        if (!device.has_tls_settings()) continue;
        try {
            devices.emplace_back(&device, std::make_unique<boost::asio::ssl::context>(
                                              make_server_context(cfg.tls, device_tls_options(device))));
        } catch (const tls_setting_error& e) {
            // A refused option is the profile's (the version is always valid,
            // so it is the cipher list): name its key, not [tls]'s.
            if (e.key() != "tls") throw;
            throw tls_setting_error("device_network[" + std::to_string(i) + "].tls_ciphers", e.message());
        }
    }
}

server_tls::server_tls(const conf::config& cfg) : cfg_(cfg), current_(std::make_shared<contexts>(cfg)) {}

std::shared_ptr<boost::asio::ssl::context> server_tls::context_for(const conf::device_network* device) const {
    std::shared_ptr<contexts> set;
    {
        std::lock_guard lock(mutex_);
        set = current_;
    }
    for (auto& [d, ctx] : set->devices)
        if (d == device) return {set, ctx.get()};
    return {set, &set->default_};
}

void server_tls::reload() {
    auto fresh = std::make_shared<contexts>(cfg_);  // throws, and nothing changes
    std::lock_guard lock(mutex_);
    current_ = std::move(fresh);
}

}  // namespace subrelay::relay
