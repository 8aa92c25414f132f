#pragma once
// RAII wrapper over a Cyrus SASL server connection (libsasl2) offering
// PLAIN and LOGIN, with passwords checked by a callback against crypt(3)
// hashes from the local policy (no sasldb, no saslauthd).
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace subrelay::auth {

// What the relay knows of the account a client logs in as.
struct password_record {
    password_record(std::string h, bool l = false) : hash(std::move(h)), locked(l) {}  // NOLINT: implicit
    std::string hash;     // crypt(3)
    bool locked = false;  // refused without checking the password (the account is locked out for this client)
};

// Returns the account's record for an identity (case-insensitive), or
// nullopt if there is no such account.
using password_lookup = std::function<std::optional<password_record>(std::string_view identity)>;

struct sasl_result {
    // malformed: a user name or password no account can have (a NUL in a
    // LOGIN user name, one over 255 octets, PLAIN without its two NULs...),
    // refused before it reaches libsasl2 (whose LOGIN plugin leaked the
    // password buffer on such names); `reason` says what was wrong.
    enum class status { challenge, success, failure, bad_mechanism, protocol_error, malformed };
    status state = status::failure;
    std::string reason;      // status::malformed
    std::string challenge;   // status::challenge: raw bytes to send (the driver base64-encodes)
    std::string identity;    // status::success: the authenticated identity, as the client typed it
};

// Longest user name and password the relay accepts in PLAIN and LOGIN.
inline constexpr std::size_t max_user_name = 255;
inline constexpr std::size_t max_password = 1024;

// Why the client's `index`-th response (0: the initial response, or the
// answer to the first challenge) in `mechanism` ("PLAIN" or "LOGIN",
// upper-case) cannot carry valid credentials; nullopt when it may.
std::optional<std::string> malformed_credentials(std::string_view mechanism, int index, std::string_view response);

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
