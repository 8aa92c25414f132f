#pragma once
// RAII wrapper over a Cyrus SASL server connection (libsasl2) offering
// PLAIN and LOGIN, with passwords checked by a callback against crypt(3)
// hashes from the local policy (no sasldb, no saslauthd).
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace subrelay::auth {

// Returns the crypt(3) hash for an identity (case-insensitive), or nullopt
// if there is no such account.
using password_lookup = std::function<std::optional<std::string>(std::string_view identity)>;

struct sasl_result {
    enum class status { challenge, success, failure, bad_mechanism, protocol_error };
    status state = status::failure;
    std::string challenge;   // status::challenge: raw bytes to send (the driver base64-encodes)
    std::string identity;    // status::success: the authenticated identity, as the client typed it
};

class sasl_server {
public:
    // Initialises libsasl2 once per process (idempotent, thread-safe).
    static void global_init();

    sasl_server(std::string hostname, password_lookup lookup);
    ~sasl_server();
    sasl_server(const sasl_server&) = delete;
    sasl_server& operator=(const sasl_server&) = delete;

    // The first step. initial_response: nullopt if the client sent none.
    sasl_result start(std::string_view mechanism, std::optional<std::string_view> initial_response);
    // Each following step, with the client's decoded response.
    sasl_result step(std::string_view response);

    // The mechanisms this connection offers, space-separated ("PLAIN LOGIN"
    // once the plugins are loaded), e.g. for the EHLO AUTH keyword.
    [[nodiscard]] std::string mechanisms() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace subrelay::auth
