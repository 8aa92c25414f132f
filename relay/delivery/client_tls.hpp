#pragma once
// The upstream client's TLS context (TLS >= 1.2, peer and host-name
// verification, an optional client certificate), and how a connection's TLS
// is described in the log (listeners use that too).
#include <filesystem>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace subrelay::relay {

// System CAs plus ca_file when not empty. Throws std::runtime_error.
boost::asio::ssl::context make_client_context(const std::filesystem::path& ca_file);

// Presents a client certificate (connector relays that trust the relay by
// its certificate). Throws std::runtime_error naming the file.
void use_client_certificate(boost::asio::ssl::context& ctx, const std::filesystem::path& cert_file,
                            const std::filesystem::path& key_file);

// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384" for a connected SSL*, with
// " (resumed)" after it when the session was resumed.
std::string describe_tls(const void* native_ssl);

}  // namespace subrelay::relay
