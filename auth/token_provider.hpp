#pragma once
// OAuth2 access tokens for the upstream: the client-credentials grant,
// cached until shortly before expiry, one refresh at a time shared by all
// waiters.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include <string_view>
#include <filesystem>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include "auth/grant.hpp"
#include "auth/oauth_error.hpp"
#include "conf/config.hpp"

namespace subrelay::auth {

struct access_token {
    std::string value;
    std::chrono::steady_clock::time_point expires_at;
};

// A failed token request. Its message names the endpoint and the error the
// identity platform returned (error, AADSTS code, description), never a
// secret; kind() says whether to retry, fix the configuration or sign in
// again, and hint() says what to do in one line (may be empty).
class token_error : public std::runtime_error {
public:
    token_error(const std::string& what, oauth_failure kind, std::string hint = {})
        : std::runtime_error(what), kind_(kind), hint_(std::move(hint)) {}
    [[nodiscard]] bool transient() const { return kind_ == oauth_failure::retryable; }
    [[nodiscard]] oauth_failure kind() const { return kind_; }
    [[nodiscard]] const std::string& hint() const { return hint_; }

private:
    oauth_failure kind_;
    std::string hint_;
};

// What a 200 answer of the token endpoint holds: access_token, its life
// (expires_in, as a number or a string of digits; 600 s when absent, at most
// ten years) and the
// whole object (for grant::accepted). `problem` is set (and the rest is not
// to be used) when the answer is not a JSON object, has no access_token, a
// token_type other than Bearer or an invalid expires_in; `kind` says what
// that means. Never throws.
struct token_answer {
    std::string access_token;
    std::int64_t expires_in = 600;  // RECOMMENDED, not required (RFC 6749 5.1): assume a short life
    boost::json::object object;
    std::string problem;
    oauth_failure kind = oauth_failure::retryable;
};
token_answer read_token_answer(std::string_view body);

// What `subrelay oauth status` shows of a token source.
struct token_status {
    std::string grant;                                   // how tokens are asked for
    std::chrono::system_clock::time_point obtained_at{}; // of the current token; epoch if none yet
    std::chrono::system_clock::time_point expires_at{};
    std::string last_error;                              // of the last failed request, if the last one failed
    std::string last_hint;                               // what to do about it (may be empty)
    std::size_t fetches = 0;                             // requests made to the endpoint
    // Failed requests by to_string(oauth_failure), "other" for a failure
    // without a classification (for the metrics).
    std::map<std::string, std::size_t, std::less<>> failures;
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
    [[nodiscard]] virtual token_status status() const { return {}; }
};

// "oauth.KEY" for the default profile, "oauth.profiles.NAME.KEY" for a named one
// ("oauth" / "oauth.profiles.NAME" for an empty key): how errors name a setting.
std::string profile_key(const conf::oauth_config& cfg, std::string_view key);

// The command that signs the profile in again: "subrelay oauth login [--profile NAME]".
std::string sign_in_command(const conf::oauth_config& cfg);

// A secret kept in a file: its content without trailing newlines. Logs a
// warning when other users may read or write the file; throws
// std::runtime_error ("KEY: cannot read FILE: reason", "KEY: FILE is empty").
std::string read_secret_file(const std::filesystem::path& file, const std::string& key);

// The profile's client secret: from client_secret_file, the
// client_secret_env variable, or the systemd credential
// client_secret_credential ($CREDENTIALS_DIRECTORY/NAME). Throws std::runtime_error.
std::string load_client_secret(const conf::oauth_config& cfg);

// Tokens for one profile (and one user, for grants that act as one) by
// `how`: cached and renewed at 80 % of their life, one request at a time
// shared by all waiters. After a failure the endpoint is asked again only
// after a jittered backoff (2 s doubling to 5 min); meanwhile callers get the
// old token while it is valid, else that failure. Requests time out after
// cfg.timeout_seconds.
// Threading: the provider is not thread-safe. `ex` must be single-threaded
// (an io_context run by one thread, or a strand), and its methods must be
// called from code running on it. Concurrent get() calls share one request
// to the endpoint and its result or error.
// `now` replaces the steady clock in tests (lifetimes, backoff).
using steady_now = std::function<std::chrono::steady_clock::time_point()>;
std::unique_ptr<token_source> make_token_provider(boost::asio::any_io_executor ex, conf::oauth_config cfg,
                                                  std::unique_ptr<grant> how, steady_now now = {});

}  // namespace subrelay::auth
