#pragma once
// The listeners' TLS contexts: the default one (TLS >= 1.2 at OpenSSL's
// default security level) and one for each [[device_network]] that changes
// the TLS settings for its devices. Certificates, keys and session-ticket
// keys are shared, so a device resumes its session on any listener whose
// profile allows the session's cipher.
#include <memory>
#include <mutex>
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

    // The context for a client with this device profile (nullptr: none). A
    // session keeps it as long as its TLS lasts: a reload does not pull it
    // away.
    [[nodiscard]] std::shared_ptr<boost::asio::ssl::context> context_for(const conf::device_network* device) const;

    // Reads the certificates and keys again (SIGHUP), so that a renewed
    // certificate needs no restart: sessions from now on get the new
    // contexts. Throws tls_setting_error as the constructor does, and then
    // the current contexts stay.
    void reload();

private:
    struct contexts {
        explicit contexts(const conf::config& cfg);
        boost::asio::ssl::context default_;
        std::vector<std::pair<const conf::device_network*, std::unique_ptr<boost::asio::ssl::context>>> devices;
    };
    const conf::config& cfg_;
    mutable std::mutex mutex_;
    std::shared_ptr<contexts> current_;
};

}  // namespace subrelay::relay
