#include "auth/jwt.hpp"
#include "auth/openssl_ptr.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <vector>

#include <boost/json.hpp>

#include "smtp/text/ascii.hpp"
#include "smtp/text/base64.hpp"

namespace subrelay::auth {
namespace {

namespace json = boost::json;

// RSA below this is no longer acceptable for signatures (NIST SP 800-131A).
constexpr int min_rsa_bits = 2048;
// JWS PS256: the salt is as long as the SHA-256 digest (RFC 7518 3.5).
constexpr int pss_salt_length = 32;
// A key or certificate chain is a few KiB; refuse to slurp anything huge.
constexpr std::size_t max_pem_file = 1024 * 1024;

// ---- OpenSSL ownership -----------------------------------------------------


// A copy of key material that is wiped when it goes out of scope.
class secret_text {
public:
    explicit secret_text(std::string text) : text_(std::move(text)) {}
    ~secret_text() { OPENSSL_cleanse(text_.data(), text_.size()); }
    secret_text(const secret_text&) = delete;
    secret_text& operator=(const secret_text&) = delete;
    [[nodiscard]] std::string_view view() const { return text_; }

private:
    std::string text_;
};

// OpenSSL's reason for the last failure (never data, so safe to show), and a
// clean error queue for whoever calls OpenSSL next on this thread.
std::string openssl_reason() {
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
    return reason != nullptr ? std::string(" (") + reason + ")" : std::string{};
}

[[noreturn]] void fail(std::string_view what, const std::string& problem) {
    throw jwt_error(std::string(what) + ": " + problem);
}

// Without a callback OpenSSL would prompt on the terminal for a passphrase.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

// OpenSSL 3's decoders report a bad key as just "unsupported"; a message
// from the shape of the text is more useful and shows none of it.
std::string pem_problem(std::string_view text, std::string_view kind) {
    if (text.find("-----BEGIN ") == std::string_view::npos) {
        return "no PEM " + std::string(kind) + " found";
    }
    return "cannot decode the PEM " + std::string(kind) + " (corrupt, or not a supported format)";
}

bio_ptr memory_bio(std::string_view text, std::string_view what) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
        fail(what, "too large");
    }
    bio_ptr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) {
        fail(what, "out of memory" + openssl_reason());
    }
    return bio;
}

[[noreturn]] void cannot_read(const std::string& file, int err) {
    throw jwt_error(file + ": cannot read" + (err != 0 ? std::string(": ") + std::strerror(err) : std::string{}));
}

// Reads a key or certificate file. Room for the largest allowed file is
// reserved up front so that growing the buffer never leaves copies of a key
// behind in freed memory; the caller wipes the result.
std::string read_pem_file(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        cannot_read(file, errno);
    }
    std::array<char, 4096> chunk{};
    std::string text;
    text.reserve(max_pem_file + chunk.size());
    const auto wipe = [&] {
        OPENSSL_cleanse(chunk.data(), chunk.size());
        OPENSSL_cleanse(text.data(), text.size());
    };
    while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
        text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
        if (text.size() > max_pem_file) {
            wipe();
            throw jwt_error(file + ": too large for a PEM file");
        }
    }
    if (in.bad()) {
        const int err = errno;
        wipe();
        cannot_read(file, err);
    }
    OPENSSL_cleanse(chunk.data(), chunk.size());
    return text;
}

// ---- digests and JSON ------------------------------------------------------

std::string digest(const EVP_MD* md, const unsigned char* data, std::size_t size) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int length = 0;
    if (EVP_Digest(data, size, out.data(), &length, md, nullptr) != 1) {
        throw jwt_error("certificate thumbprint: digest failed" + openssl_reason());
    }
    return {reinterpret_cast<const char*>(out.data()), length};
}

std::vector<unsigned char> certificate_der(X509* cert, std::string_view what) {
    const int length = i2d_X509(cert, nullptr);
    if (length <= 0) {
        fail(what, "cannot encode the certificate" + openssl_reason());
    }
    std::vector<unsigned char> der(static_cast<std::size_t>(length));
    unsigned char* p = der.data();
    if (i2d_X509(cert, &p) != length) {
        fail(what, "cannot encode the certificate" + openssl_reason());
    }
    return der;
}

std::int64_t epoch_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string encode_json(const json::object& o) { return text::base64url_encode(json::serialize(o)); }

std::string_view alg_name(jwt_alg alg) { return alg == jwt_alg::ps256 ? "PS256" : "RS256"; }

void require(bool ok, std::string_view context, std::string_view problem) {
    if (!ok) {
        throw jwt_error(std::string(context) + ": " + std::string(problem));
    }
}

// ---- service account JSON --------------------------------------------------

// The string at `key`; empty when it is absent and `required` is false.
std::string json_string(const json::object& o, std::string_view key, std::string_view what, bool required) {
    const auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) {
        if (required) {
            fail(what, std::string(key) + ": missing");
        }
        return {};
    }
    if (!it->value().is_string()) {
        fail(what, std::string(key) + ": not a string");
    }
    std::string value(it->value().get_string());
    if (required && value.empty()) {
        fail(what, std::string(key) + ": empty");
    }
    return value;
}

}  // namespace

// ---- alg -------------------------------------------------------------------

jwt_alg parse_jwt_alg(std::string_view name) {
    if (text::iequals(name, "PS256")) {
        return jwt_alg::ps256;
    }
    if (text::iequals(name, "RS256")) {
        return jwt_alg::rs256;
    }
    throw jwt_error("unsupported JWT algorithm '" + std::string(name) + "' (expected PS256 or RS256)");
}

// ---- signing_key -----------------------------------------------------------

struct signing_key::impl {
    pkey_ptr key;
    std::string what;  // where the key came from, for messages
    std::string x5t_s256;
    std::string x5t;
};

signing_key::signing_key(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
signing_key::signing_key(signing_key&&) noexcept = default;
signing_key& signing_key::operator=(signing_key&&) noexcept = default;
signing_key::~signing_key() = default;

signing_key signing_key::from_pem(std::string_view key_pem, std::string_view what) {
    // Decided from the PEM header lines alone, so no key material is examined.
    if (key_pem.find("-----BEGIN ENCRYPTED") != std::string_view::npos ||
        key_pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos) {
        fail(what, "encrypted private keys are not supported; store the key without a passphrase");
    }
    auto bio = memory_bio(key_pem, what);
    pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (!key) {
        ERR_clear_error();
        fail(what, pem_problem(key_pem, "private key"));
    }
    if (EVP_PKEY_is_a(key.get(), "RSA") != 1) {
        fail(what, "the private key is not an RSA key");
    }
    if (const int bits = EVP_PKEY_get_bits(key.get()); bits < min_rsa_bits) {
        fail(what, "the RSA key has " + std::to_string(bits) + " bits; at least " + std::to_string(min_rsa_bits) +
                       " are required");
    }
    // Decoders tried along the way may have queued errors despite success.
    ERR_clear_error();
    auto p = std::make_unique<impl>();
    p->key = std::move(key);
    p->what = what;
    return signing_key(std::move(p));
}

signing_key signing_key::from_files(const std::string& certificate_file, const std::string& private_key_file) {
    const secret_text key_pem(read_pem_file(private_key_file));
    const std::string cert_pem = read_pem_file(certificate_file);
    auto key = from_pem(key_pem.view(), private_key_file);
    key.set_certificate_pem(cert_pem, certificate_file);
    return key;
}

void signing_key::set_certificate_pem(std::string_view cert_pem, std::string_view what) {
    auto bio = memory_bio(cert_pem, what);
    // The first certificate is the leaf; any chain after it is not ours to check.
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
    if (!cert) {
        ERR_clear_error();
        fail(what, pem_problem(cert_pem, "certificate"));
    }
    EVP_PKEY* public_key = X509_get0_pubkey(cert.get());
    if (public_key == nullptr || EVP_PKEY_eq(public_key, impl_->key.get()) != 1) {
        ERR_clear_error();
        fail(what, "certificate does not match the private key");
    }
    const auto der = certificate_der(cert.get(), what);
    impl_->x5t_s256 = text::base64url_encode(digest(EVP_sha256(), der.data(), der.size()));
    impl_->x5t = text::base64url_encode(digest(EVP_sha1(), der.data(), der.size()));
}

const std::string& signing_key::x5t_s256() const { return impl_->x5t_s256; }

const std::string& signing_key::x5t() const { return impl_->x5t; }

std::string signing_key::sign(std::string_view header_b64, std::string_view payload_b64, jwt_alg alg) const {
    const std::string context = impl_->what + ": signing with " + std::string(alg_name(alg)) + " failed";
    std::string token;
    token.reserve(header_b64.size() + payload_b64.size() + 2 + 512);
    token.append(header_b64).append(".").append(payload_b64);

    // A fresh context per call: EVP_MD_CTX is not shareable, the key is.
    md_ctx_ptr ctx(EVP_MD_CTX_new());
    if (!ctx) {
        fail(context, "out of memory");
    }
    EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
    if (EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, impl_->key.get()) != 1) {
        fail(context, "init" + openssl_reason());
    }
    // Set explicitly rather than trusting defaults: JWS fixes every parameter.
    const bool params_ok =
        alg == jwt_alg::ps256
            ? EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt_length) == 1 &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1
            : EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (!params_ok) {
        fail(context, "padding" + openssl_reason());
    }

    const auto* input = reinterpret_cast<const unsigned char*>(token.data());
    std::size_t length = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &length, input, token.size()) != 1) {
        fail(context, "size" + openssl_reason());
    }
    std::vector<unsigned char> signature(length);
    if (EVP_DigestSign(ctx.get(), signature.data(), &length, input, token.size()) != 1) {
        fail(context, "sign" + openssl_reason());
    }

    token.push_back('.');
    token += text::base64url_encode({reinterpret_cast<const char*>(signature.data()), length});
    return token;
}

// ---- assertions ------------------------------------------------------------

std::string make_client_assertion(const signing_key& key, const client_assertion_request& r) {
    constexpr std::string_view context = "client assertion";
    require(!r.token_url.empty(), context, "the token URL is empty");
    require(!r.client_id.empty(), context, "the client id is empty");
    require(r.lifetime.count() > 0, context, "the lifetime must be positive");
    // Microsoft finds the registered certificate by its thumbprint.
    require(!key.x5t_s256().empty(), context, "the signing key has no certificate");

    json::object header;
    header["alg"] = alg_name(r.alg);
    header["typ"] = "JWT";
    if (r.alg == jwt_alg::ps256) {
        header["x5t#S256"] = key.x5t_s256();
    } else {
        // RS256 tenants predate x5t#S256 and only look at the SHA-1 thumbprint.
        header["x5t"] = key.x5t();
    }

    const auto now = epoch_seconds(r.now);
    json::object claims;
    claims["aud"] = r.token_url;
    claims["iss"] = r.client_id;
    claims["sub"] = r.client_id;
    claims["jti"] = r.jti.empty() ? random_uuid() : r.jti;
    claims["nbf"] = now;
    claims["iat"] = now;
    claims["exp"] = now + r.lifetime.count();

    return key.sign(encode_json(header), encode_json(claims), r.alg);
}

std::string make_service_account_assertion(const signing_key& key, const service_account_request& r) {
    constexpr std::string_view context = "service account assertion";
    require(!r.token_url.empty(), context, "the token URL is empty");
    require(!r.client_email.empty(), context, "the client email is empty");
    require(!r.scope.empty(), context, "the scope is empty");
    require(r.lifetime.count() > 0, context, "the lifetime must be positive");

    json::object header;
    header["alg"] = alg_name(jwt_alg::rs256);
    header["typ"] = "JWT";
    if (!r.key_id.empty()) {
        header["kid"] = r.key_id;
    }

    const auto now = epoch_seconds(r.now);
    json::object claims;
    claims["iss"] = r.client_email;
    if (!r.subject.empty()) {
        claims["sub"] = r.subject;
    }
    claims["scope"] = r.scope;
    claims["aud"] = r.token_url;
    claims["iat"] = now;
    claims["exp"] = now + r.lifetime.count();

    // Google accepts only RS256 for this grant.
    return key.sign(encode_json(header), encode_json(claims), jwt_alg::rs256);
}

service_account_key parse_service_account_json(std::string_view text, std::string_view what) {
    boost::system::error_code ec;
    const json::value v = json::parse(text, ec);
    if (ec) {
        // The parser's message names the problem, never the text around it.
        fail(what, "not valid JSON: " + ec.message());
    }
    if (!v.is_object()) {
        fail(what, "not a JSON object");
    }
    const auto& o = v.get_object();
    if (const auto type = json_string(o, "type", what, true); type != "service_account") {
        fail(what, "type: expected \"service_account\", got \"" + type + "\"");
    }
    service_account_key key;
    key.client_email = json_string(o, "client_email", what, true);
    key.private_key_pem = json_string(o, "private_key", what, true);
    // Only the header's kid comes from it, and a JWT is valid without one.
    key.private_key_id = json_string(o, "private_key_id", what, false);
    key.token_uri = json_string(o, "token_uri", what, true);
    return key;
}

std::string random_uuid() {
    std::array<unsigned char, 16> b{};
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
        throw jwt_error("random UUID: RAND_bytes failed" + openssl_reason());
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 10 (RFC 4122)
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out.push_back('-');
        }
        out.push_back(hex[b[i] >> 4]);
        out.push_back(hex[b[i] & 0x0f]);
    }
    return out;
}

}  // namespace subrelay::auth
