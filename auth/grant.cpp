#include "auth/grant.hpp"

#include <stdexcept>
#include <utility>

#include "auth/jwt.hpp"
#include "auth/token_provider.hpp"

namespace subrelay::auth {

namespace {

constexpr std::string_view assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::string_view jwt_bearer_grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";

// How the client proves who it is: a secret, or an assertion signed with
// the key of a certificate registered for the application.
class client_authentication {
public:
    static client_authentication with_secret(const conf::oauth_config& p, std::string secret) {
        client_authentication a;
        a.client_id_ = p.client_id;
        a.token_url_ = p.token_url;
        a.secret_ = std::move(secret);
        return a;
    }

    static client_authentication from(const conf::oauth_config& p) {
        client_authentication a;
        a.client_id_ = p.client_id;
        a.token_url_ = p.token_url;
        if (p.uses_certificate()) {
            try {
                a.key_ = std::make_shared<signing_key>(
                    signing_key::from_files(p.certificate_file.string(), p.private_key_file.string()));
            } catch (const jwt_error& e) {
                // The message starts with the file it is about.
                const bool about_key = std::string_view(e.what()).starts_with(p.private_key_file.string());
                throw std::runtime_error(profile_key(p, about_key ? "private_key_file" : "certificate_file") + ": " +
                                         e.what());
            }
            a.alg_ = p.assertion_alg == conf::oauth_assertion_alg::rs256 ? jwt_alg::rs256 : jwt_alg::ps256;
        } else if (p.has_secret_source()) {
            a.secret_ = load_client_secret(p);
        }
        return a;
    }

    void add_to(form_fields& f, std::chrono::system_clock::time_point now) const {
        if (key_) {
            client_assertion_request r;
            r.token_url = token_url_;
            r.client_id = client_id_;
            r.alg = alg_;
            r.now = now;
            f.emplace_back("client_assertion_type", std::string(assertion_type));
            f.emplace_back("client_assertion", make_client_assertion(*key_, r));
        } else if (!secret_.empty()) {
            f.emplace_back("client_secret", secret_);
        }
        // Neither: a public client (the device-code sign-in's refresh tokens).
    }

    [[nodiscard]] std::string describe() const {
        if (key_) return std::string("a certificate (") + (alg_ == jwt_alg::rs256 ? "RS256" : "PS256") + ")";
        return secret_.empty() ? "no client secret (a public client)" : "a client secret";
    }
    [[nodiscard]] const std::string& secret() const { return secret_; }

private:
    std::string client_id_;
    std::string token_url_;
    std::string secret_;
    std::shared_ptr<signing_key> key_;
    jwt_alg alg_ = jwt_alg::ps256;
};

class client_credentials_grant final : public grant {
public:
    client_credentials_grant(const conf::oauth_config& p, client_authentication auth)
        : client_id_(p.client_id), scope_(p.scope), auth_(std::move(auth)) {}

    form_fields request(std::chrono::system_clock::time_point now) override {
        form_fields f{{"grant_type", "client_credentials"}, {"client_id", client_id_}};
        auth_.add_to(f, now);
        f.emplace_back("scope", scope_);
        return f;
    }
    [[nodiscard]] std::vector<std::string> secrets() const override { return {auth_.secret()}; }
    [[nodiscard]] std::string describe() const override { return "client credentials with " + auth_.describe(); }

private:
    std::string client_id_;
    std::string scope_;
    client_authentication auth_;
};

// Delegated access: the refresh token a person's sign-in produced. Identity
// platforms may rotate it on every use; the new one is stored before the
// access token is used, and the old one is never thrown away before that.
class refresh_token_grant final : public grant {
public:
    refresh_token_grant(const conf::oauth_config& p, std::shared_ptr<refresh_token_store> store)
        : key_(profile_key(p, "refresh_token_file")),
          client_id_(p.client_id),
          scope_(p.provider == conf::oauth_provider::google ? std::string() : p.scope),
          auth_(client_authentication::from(p)),
          store_(std::move(store)) {
        if (!store_) throw std::runtime_error(key_ + ": no place to keep the refresh token");
    }

    form_fields request(std::chrono::system_clock::time_point now) override {
        if (unsaved_) {
            // The last rotation could not be stored: the token in memory is
            // the valid one. Try to store it again; use it either way.
            try {
                store_->save(current_);
                unsaved_ = false;
            } catch (const std::runtime_error&) {
            }
        } else {
            std::optional<std::string> token = store_->load();
            if (!token || token->empty())
                throw std::runtime_error(key_ + ": no refresh token yet: sign in with `subrelay oauth login`");
            current_ = *token;
        }
        form_fields f{{"grant_type", "refresh_token"}, {"client_id", client_id_}, {"refresh_token", current_}};
        auth_.add_to(f, now);
        // Google keeps the scope of the sign-in; Microsoft wants it named again.
        if (!scope_.empty()) f.emplace_back("scope", scope_);
        return f;
    }

    void accepted(const boost::json::object& answer) override {
        const auto it = answer.find("refresh_token");
        if (it == answer.end() || !it->value().is_string()) return;  // not rotated: keep using the old one
        const std::string rotated(it->value().get_string());
        if (rotated.empty() || rotated == current_) return;
        current_ = rotated;
        unsaved_ = true;
        store_->save(rotated);
        unsaved_ = false;
    }

    [[nodiscard]] std::vector<std::string> secrets() const override { return {auth_.secret(), current_}; }
    [[nodiscard]] std::string describe() const override { return "refresh token with " + auth_.describe(); }

private:
    std::string key_;
    std::string client_id_;
    std::string scope_;
    client_authentication auth_;
    std::shared_ptr<refresh_token_store> store_;
    std::string current_;
    bool unsaved_ = false;  // current_ was rotated in but is not stored yet
};

// Google Workspace: a service account with domain-wide delegation signs an
// assertion naming the user it acts for (RFC 7523 JWT bearer grant).
class service_account_grant final : public grant {
public:
    service_account_grant(const conf::oauth_config& p, const std::string& mailbox)
        : token_url_(p.token_url), scope_(p.scope), subject_(p.subject.empty() ? mailbox : p.subject) {
        const std::string key = profile_key(p, "service_account_file");
        const std::string text = read_secret_file(p.service_account_file, key);
        try {
            account_ = parse_service_account_json(text, p.service_account_file.string());
            key_ = std::make_shared<signing_key>(
                signing_key::from_pem(account_.private_key_pem, p.service_account_file.string()));
        } catch (const jwt_error& e) {
            throw std::runtime_error(key + ": " + e.what());
        }
        account_.private_key_pem.clear();  // the signing key holds it now
    }

    form_fields request(std::chrono::system_clock::time_point now) override {
        service_account_request r;
        r.token_url = token_url_;
        r.client_email = account_.client_email;
        r.subject = subject_;
        r.scope = scope_;
        r.key_id = account_.private_key_id;
        r.now = now;
        return {{"grant_type", std::string(jwt_bearer_grant)}, {"assertion", make_service_account_assertion(*key_, r)}};
    }
    [[nodiscard]] std::vector<std::string> secrets() const override { return {}; }
    [[nodiscard]] std::string describe() const override {
        return "Google service account " + account_.client_email + " acting as " + subject_;
    }

private:
    std::string token_url_;
    std::string scope_;
    std::string subject_;
    service_account_key account_;
    std::shared_ptr<signing_key> key_;
};

}  // namespace

void grant::accepted(const boost::json::object& /*answer*/) {}

std::unique_ptr<grant> make_grant(const conf::oauth_config& profile, const std::string& mailbox,
                                  std::shared_ptr<refresh_token_store> store) {
    if (profile.grant == conf::oauth_grant::refresh_token)
        return std::make_unique<refresh_token_grant>(profile, std::move(store));
    if (profile.uses_service_account()) return std::make_unique<service_account_grant>(profile, mailbox);
    return std::make_unique<client_credentials_grant>(profile, client_authentication::from(profile));
}

std::unique_ptr<grant> make_client_secret_grant(const conf::oauth_config& profile, std::string secret) {
    return std::make_unique<client_credentials_grant>(profile,
                                                      client_authentication::with_secret(profile, std::move(secret)));
}

}  // namespace subrelay::auth
