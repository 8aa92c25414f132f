#include "relay/delivery/credentials.hpp"

#include <chrono>
#include <utility>

#include <boost/json.hpp>

#include "relay/delivery/refresh_token_file.hpp"

namespace subrelay::relay {

upstream_credentials::upstream_credentials(boost::asio::any_io_executor ex, const conf::config& cfg)
    : ex_(std::move(ex)), cfg_(cfg), oauth_(true) {
    std::vector<const conf::oauth_config*> profiles{&cfg.oauth};
    for (const auto& p : cfg.oauth_profiles) profiles.push_back(&p);
    for (const conf::oauth_config* p : profiles) {
        if (per_mailbox(*p)) {
            // Checks the key file now; the sources come with their mailboxes.
            (void)make_source(*p, p->subject.empty() ? cfg.upstream.mailbox : p->subject);
            continue;
        }
        source s{p->name, {}, make_source(*p, cfg.upstream.mailbox), nullptr};
        s.tokens = s.owned.get();
        sources_.emplace(p->name, std::move(s));
    }
}

upstream_credentials::upstream_credentials(const conf::config& cfg, auth::token_source* tokens) : cfg_(cfg) {
    sources_.emplace(cfg.oauth.name, source{cfg.oauth.name, {}, nullptr, tokens});
}

upstream_credentials::~upstream_credentials() = default;

std::unique_ptr<auth::token_source> upstream_credentials::make_source(const conf::oauth_config& p,
                                                                       const std::string& mailbox) const {
    std::shared_ptr<auth::refresh_token_store> store;
    if (p.grant == conf::oauth_grant::refresh_token)
        store = refresh_token_file(p.refresh_token_file, auth::profile_key(p, "refresh_token_file"));
    return auth::make_token_provider(ex_, p, auth::make_grant(p, mailbox, std::move(store)));
}

auth::token_source* upstream_credentials::tokens_for(const std::string& mailbox) {
    if (!oauth_) {
        const auto it = sources_.find(cfg_.oauth.name);
        return it == sources_.end() ? nullptr : it->second.tokens;
    }
    const conf::oauth_config& p = cfg_.profile_for_mailbox(mailbox);
    if (!per_mailbox(p)) return sources_.at(p.name).tokens;
    const std::string key = p.name + "\n" + mailbox;
    auto it = sources_.find(key);
    if (it == sources_.end()) {
        source s{p.name, mailbox, make_source(p, mailbox), nullptr};
        s.tokens = s.owned.get();
        it = sources_.emplace(key, std::move(s)).first;
    }
    return it->second.tokens;
}

upstream_endpoint upstream_credentials::endpoint_for(const std::string& mailbox) const {
    const conf::oauth_config& p = cfg_.profile_for_mailbox(mailbox);
    if (&p == &cfg_.oauth || !oauth_) return {cfg_.upstream.host, cfg_.upstream.port, cfg_.upstream.tls};
    return {p.smtp_host, p.smtp_port, p.smtp_tls};
}

std::vector<upstream_credentials::profile_status> upstream_credentials::status() const {
    std::vector<profile_status> out;
    for (const auto& [key, s] : sources_)
        if (s.tokens != nullptr) out.push_back({s.profile, s.mailbox, s.tokens->status()});
    return out;
}

namespace {

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
    if (t == std::chrono::system_clock::time_point{}) return 0;
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string upstream_credentials::status_json() const {
    boost::json::array sources;
    for (const auto& st : status()) {
        boost::json::object o;
        o["profile"] = st.profile;
        o["mailbox"] = st.mailbox;
        o["grant"] = st.token.grant;
        o["obtained_at"] = unix_seconds(st.token.obtained_at);
        o["expires_at"] = unix_seconds(st.token.expires_at);
        o["fetches"] = st.token.fetches;
        o["last_error"] = st.token.last_error;
        o["hint"] = st.token.last_hint;
        boost::json::object failures;
        for (const auto& [kind, n] : st.token.failures) failures[kind] = n;
        o["failures"] = std::move(failures);
        sources.emplace_back(std::move(o));
    }
    boost::json::object doc;
    doc["written_at"] = unix_seconds(std::chrono::system_clock::now());
    doc["sources"] = std::move(sources);
    return boost::json::serialize(doc);
}

boost::asio::awaitable<boost::json::array> upstream_credentials::check_tokens() {
    boost::json::array out;
    // The sources may grow while a request is awaited: walk a copy of the keys.
    std::vector<std::string> keys;
    for (const auto& [key, s] : sources_)
        if (s.tokens != nullptr) keys.push_back(key);
    for (const auto& key : keys) {
        const auto it = sources_.find(key);
        if (it == sources_.end()) continue;
        boost::json::object o{{"profile", it->second.profile}, {"mailbox", it->second.mailbox}};
        std::string error;
        try {
            (void)co_await it->second.tokens->get();
        } catch (const auth::token_error& e) {
            error = std::string(auth::to_string(e.kind()));
        } catch (const std::exception&) {
            error = "other";
        }
        o["ready"] = error.empty();
        o["error"] = error;
        out.emplace_back(std::move(o));
    }
    co_return out;
}

}  // namespace subrelay::relay
