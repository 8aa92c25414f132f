#pragma once
// Signed JSON Web Tokens for OAuth2 client authentication and grants:
// - Microsoft's certificate credential: a client assertion (RFC 7523,
//   client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer),
//   header alg PS256 (or RS256 for older tenants) with the certificate's
//   SHA-256 thumbprint as x5t#S256 (SHA-1 as x5t for RS256), claims aud = the
//   token URL, iss = sub = the client id, a unique jti, nbf, iat, exp.
// - Google's service account with domain-wide delegation: the JWT bearer grant
//   (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer), RS256, claims
//   iss = the service account's client_email, sub = the mailbox to act as,
//   scope, aud = the token URL, iat, exp.
// Keys and certificates come from PEM; signing is OpenSSL's (EVP_DigestSign).
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace subrelay::auth {

class jwt_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class jwt_alg { ps256, rs256 };

// "PS256" or "RS256" (case-insensitive); anything else throws jwt_error
// naming the accepted values.
jwt_alg parse_jwt_alg(std::string_view name);

// A private key and, for Microsoft, the certificate whose thumbprint the
// header names. Loaded once; signing is thread-safe (a fresh context each time).
class signing_key {
public:
    // From PEM text. The key may be PKCS#8 or traditional RSA ("BEGIN RSA
    // PRIVATE KEY"); it must be RSA of at least 2048 bits. `what` names the
    // source in errors (a file name, never the key). Throws jwt_error.
    static signing_key from_pem(std::string_view key_pem, std::string_view what);
    // From PEM files; the certificate must hold the public half of the key.
    // Throws jwt_error ("FILE: what is wrong").
    static signing_key from_files(const std::string& certificate_file, const std::string& private_key_file);
    // Adds the certificate (PEM text) whose thumbprints the header carries.
    // Throws jwt_error when it does not match the key.
    void set_certificate_pem(std::string_view cert_pem, std::string_view what);

    // Thumbprints of the certificate (DER), base64url: SHA-256 and SHA-1.
    // Empty when no certificate was given.
    [[nodiscard]] const std::string& x5t_s256() const;
    [[nodiscard]] const std::string& x5t() const;

    // Signs header.payload (both already base64url) and returns the whole
    // compact JWT "header.payload.signature". Throws jwt_error.
    [[nodiscard]] std::string sign(std::string_view header_b64, std::string_view payload_b64, jwt_alg alg) const;

    signing_key(signing_key&&) noexcept;
    signing_key& operator=(signing_key&&) noexcept;
    ~signing_key();

private:
    struct impl;
    explicit signing_key(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

struct client_assertion_request {
    std::string token_url;   // aud
    std::string client_id;   // iss and sub
    jwt_alg alg = jwt_alg::ps256;
    std::chrono::system_clock::time_point now;
    std::chrono::seconds lifetime{300};  // exp = now + lifetime; nbf = iat = now
    std::string jti;                     // empty: a random UUID v4 is made
};

// The client assertion for Microsoft's certificate credential. Requires a
// certificate on the key (its thumbprint goes into the header). Throws jwt_error.
std::string make_client_assertion(const signing_key& key, const client_assertion_request& r);

struct service_account_request {
    std::string token_url;      // aud (Google: https://oauth2.googleapis.com/token)
    std::string client_email;   // iss
    std::string subject;        // sub: the mailbox to act as (empty: none)
    std::string scope;          // e.g. https://mail.google.com/
    std::string key_id;         // header kid (the key file's private_key_id), may be empty
    std::chrono::system_clock::time_point now;
    std::chrono::seconds lifetime{3600};
};

// The JWT bearer grant assertion for a Google service account (RS256).
std::string make_service_account_assertion(const signing_key& key, const service_account_request& r);

// Google's JSON key file: type "service_account", client_email, private_key
// (PEM), private_key_id, token_uri. Throws jwt_error ("FILE: key: what is wrong").
struct service_account_key {
    std::string client_email;
    std::string private_key_id;
    std::string token_uri;
    std::string private_key_pem;  // a secret: never logged
};
service_account_key parse_service_account_json(std::string_view json, std::string_view what);

// A random UUID v4 string (RAND_bytes), for jti.
std::string random_uuid();

}  // namespace subrelay::auth
