#pragma once
// OAuth2 access tokens for the upstream: the client-credentials grant,
// cached until shortly before expiry, one refresh at a time shared by all
// waiters.
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include <string_view>
#include <filesystem>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "conf/config.hpp"

namespace subrelay::auth {

struct access_token {
    std::string value;
    std::chrono::steady_clock::time_point expires_at;
};

// A failed token request. Its message names the endpoint and the error the
// identity platform returned (error, AADSTS code, description), never the secret.
class token_error : public std::runtime_error {
public:
    token_error(const std::string& what, bool transient) : std::runtime_error(what), transient_(transient) {}
    [[nodiscard]] bool transient() const { return transient_; }

private:
    bool transient_;
};

// The seam delivery uses; tests bring fakes.
class token_source {
public:
    virtual ~token_source() = default;
    // A valid token (cached or freshly obtained). Throws token_error.
    virtual boost::asio::awaitable<access_token> get() = 0;
    // The upstream refused `token`: drop it from the cache if it is the cached one.
    virtual void invalidate(const std::string& token) = 0;
    // How many tokens were fetched from the endpoint so far (for logs/tests).
    [[nodiscard]] virtual std::size_t fetch_count() const = 0;
};

// "oauth.KEY" for the default profile, "oauth.profiles.NAME.KEY" for a named one
// ("oauth" / "oauth.profiles.NAME" for an empty key): how errors name a setting.
std::string profile_key(const conf::oauth_config& cfg, std::string_view key);

// A secret kept in a file: its content without trailing newlines. Logs a
// warning when other users may read or write the file; throws
// std::runtime_error ("KEY: cannot read FILE: reason", "KEY: FILE is empty").
std::string read_secret_file(const std::filesystem::path& file, const std::string& key);

// The profile's client secret: from client_secret_file, the
// client_secret_env variable, or the systemd credential
// client_secret_credential ($CREDENTIALS_DIRECTORY/NAME). Throws std::runtime_error.
std::string load_client_secret(const conf::oauth_config& cfg);

// What the configuration asks of OAuth that this version cannot do yet, one
// "KEY: why" line each: tokens are obtained with the client-credentials grant
// and a client secret, for the default profile. Empty when all is served.
std::vector<std::string> unsupported_oauth_settings(const conf::config& cfg);

// client_credentials grant against cfg.token_url with client_id, the secret
// and scope. Tokens are reused until 5 minutes before expires_in runs out
// (or half their life for short-lived tokens).
// Threading: the provider is not thread-safe. `ex` must be single-threaded
// (an io_context run by one thread, or a strand), and get(), invalidate()
// and fetch_count() must be called from code running on it. Concurrent
// get() calls share one request to the endpoint and its result or error.
std::unique_ptr<token_source> make_client_credentials_provider(boost::asio::any_io_executor ex,
                                                               conf::oauth_config cfg,
                                                               std::string client_secret);

}  // namespace subrelay::auth
