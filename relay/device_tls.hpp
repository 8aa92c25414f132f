#pragma once
// The listeners' TLS contexts: the default one (TLS >= 1.2 at OpenSSL's
// default security level) and one for each [[device_network]] that changes
// the TLS settings for its devices. The certificate and key are shared.
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "conf/config.hpp"

namespace subrelay::relay {

// A device profile's TLS setting that OpenSSL refuses.
struct device_tls_error : std::runtime_error {
    device_tls_error(std::string setting, const std::string& what)
        : std::runtime_error(what), key(std::move(setting)) {}
    std::string key;  // "device_network[1].tls_ciphers"
};

class server_tls {
public:
    // Throws std::runtime_error naming the file that cannot be used, or
    // device_tls_error.
    explicit server_tls(const conf::config& cfg);

    // The context for a client with this device profile (nullptr: none).
    [[nodiscard]] boost::asio::ssl::context& context_for(const conf::device_network* device);

private:
    boost::asio::ssl::context default_;
    std::vector<std::pair<const conf::device_network*, std::unique_ptr<boost::asio::ssl::context>>> devices_;
};

// The TLS settings of a device profile (the one at `key`), applied to a
// server context. Throws device_tls_error.
void apply_device_tls(boost::asio::ssl::context& ctx, const conf::device_network& device, const std::string& key);

}  // namespace subrelay::relay
