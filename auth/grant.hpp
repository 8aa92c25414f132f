#pragma once
// How one OAuth profile asks the token endpoint for an access token: the
// form of the request (a client secret, a freshly signed client assertion,
// a refresh token, or a Google service-account assertion) and what to keep
// from a successful answer (a rotated refresh token). The token provider
// (token_provider.hpp) decides when to ask; a grant only says what.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "auth/https_client.hpp"
#include "conf/config.hpp"

namespace subrelay::auth {

// Where a refresh token lives between requests. The relay keeps it in the
// profile's refresh_token_file (relay/delivery/refresh_token_file.hpp); tests keep it
// in memory. Neither method may lose the stored token on failure.
class refresh_token_store {
public:
    virtual ~refresh_token_store() = default;
    // The current refresh token; nullopt when none was stored yet (sign in
    // first). Throws std::runtime_error when it cannot be read.
    [[nodiscard]] virtual std::optional<std::string> load() const = 0;
    // Replaces the stored token. Throws std::runtime_error; the old token
    // stays in place then.
    virtual void save(const std::string& refresh_token) = 0;
};

class grant {
public:
    virtual ~grant() = default;
    // The form of the next token request. May read a file (the refresh token)
    // or sign an assertion valid from `now`. Throws std::runtime_error when
    // its credential cannot be had (a configuration problem).
    [[nodiscard]] virtual form_fields request(std::chrono::system_clock::time_point now) = 0;
    // After a 200 answer: keeps what must be kept (a rotated refresh token).
    // Throws std::runtime_error when that fails.
    virtual void accepted(const boost::json::object& answer);
    // Values that must never appear in a message (secrets, refresh tokens).
    [[nodiscard]] virtual std::vector<std::string> secrets() const = 0;
    // For `subrelay oauth status`: "client credentials with a client secret", ...
    [[nodiscard]] virtual std::string describe() const = 0;
};

// The grant a profile asks for, acting for `mailbox` where the grant needs
// a user (Google service accounts; the profile's subject wins when set).
// Reads the profile's secret, certificate and key or service-account key now;
// `store` is needed (non-null) for grant = "refresh_token". Throws
// std::runtime_error naming the profile key that is wrong.
std::unique_ptr<grant> make_grant(const conf::oauth_config& profile, const std::string& mailbox,
                                  std::shared_ptr<refresh_token_store> store);

// The client-credentials grant with a secret given directly.
std::unique_ptr<grant> make_client_secret_grant(const conf::oauth_config& profile, std::string secret);

}  // namespace subrelay::auth
