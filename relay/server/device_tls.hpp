#pragma once
// The listeners' TLS contexts: the default one (TLS >= 1.2 at OpenSSL's
// default security level) and one for each [[device_network]] that changes
// the TLS settings for its devices. Certificates, keys and session-ticket
// keys are shared, so a device resumes its session on any listener whose
// profile allows the session's cipher.
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "conf/config.hpp"
#include "relay/server/tls.hpp"

namespace subrelay::relay {

// What a device profile asks of its TLS context.
server_tls_options device_tls_options(const conf::device_network& device);

class server_tls {
public:
    // Throws tls_setting_error naming the setting ("tls.cert_file[1]: ...",
    // "device_network[1].tls_ciphers: ...").
    explicit server_tls(const conf::config& cfg);

    // The context for a client with this device profile (nullptr: none).
    [[nodiscard]] boost::asio::ssl::context& context_for(const conf::device_network* device);

private:
    boost::asio::ssl::context default_;
    std::vector<std::pair<const conf::device_network*, std::unique_ptr<boost::asio::ssl::context>>> devices_;
};

}  // namespace subrelay::relay
