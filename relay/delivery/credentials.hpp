#pragma once
// Who the relay is upstream, per upstream mailbox: the OAuth profile that
// serves it (config.hpp: the named profile listing it, else the default),
// the token source of that profile, and the SMTP endpoint it delivers to.
//
// One token source per profile; a Google service account acts as each
// mailbox separately, so it gets one per mailbox. Refresh tokens live in
// the profile's refresh_token_file (refresh_token_file.hpp).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"

namespace subrelay::relay {

struct upstream_endpoint {
    std::string host;
    std::uint16_t port = 587;
    conf::upstream_tls tls = conf::upstream_tls::starttls;
};

class upstream_credentials {
public:
    // Builds every profile's grant now, reading secrets, certificates and
    // keys: a problem is found at start-up, not at the first message.
    // Throws std::runtime_error ("oauth.profiles.NAME.KEY: what"). Token
    // sources run on `ex` (the delivery's executor).
    upstream_credentials(boost::asio::any_io_executor ex, const conf::config& cfg);
    // Every mailbox uses `tokens` (may be null: no OAuth) and [upstream]'s endpoint.
    upstream_credentials(const conf::config& cfg, auth::token_source* tokens);
    ~upstream_credentials();
    upstream_credentials(const upstream_credentials&) = delete;
    upstream_credentials& operator=(const upstream_credentials&) = delete;

    // The token source for a mailbox; null when the upstream needs none.
    // Must be called on the executor.
    auth::token_source* tokens_for(const std::string& mailbox);
    [[nodiscard]] upstream_endpoint endpoint_for(const std::string& mailbox) const;

    struct profile_status {
        std::string profile;
        std::string mailbox;     // the mailbox a per-mailbox source acts for; empty otherwise
        auth::token_status token;
    };
    [[nodiscard]] std::vector<profile_status> status() const;
    // status() as the JSON document `subrelay oauth status` reads:
    // {"written_at": unix seconds, "sources": [{"profile", "mailbox", "grant",
    //  "obtained_at", "expires_at" (unix seconds, 0 when no token yet),
    //  "fetches", "last_error", "hint"}]}. Every profile is listed, a
    // per-mailbox profile once per mailbox seen.
    [[nodiscard]] std::string status_json() const;

    // Whether each token source can give a token now: a cached one, else
    // one asked for here (single-flight with the delivery's requests; after
    // a failure, that failure until its backoff ends). For /readyz; each
    // entry {"profile", "mailbox", "ready", "error": classification or ""}.
    // Must be called on the executor.
    boost::asio::awaitable<boost::json::array> check_tokens();

private:
    struct source {
        std::string profile;
        std::string mailbox;
        std::unique_ptr<auth::token_source> owned;
        auth::token_source* tokens = nullptr;
    };
    std::unique_ptr<auth::token_source> make_source(const conf::oauth_config& p, const std::string& mailbox) const;
    [[nodiscard]] static bool per_mailbox(const conf::oauth_config& p) { return p.uses_service_account(); }

    boost::asio::any_io_executor ex_;
    const conf::config& cfg_;
    bool oauth_ = false;
    std::map<std::string, source> sources_;  // by profile name, or "profile\nmailbox" for per-mailbox sources
};

}  // namespace subrelay::relay
