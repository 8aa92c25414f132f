#include "auth/jwt.hpp"

#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <stdexcept>
#include <vector>

#include <boost/json.hpp>

#include "auth/openssl_ptr.hpp"
#include "smtp/text/base64.hpp"
#include "test_tls.hpp"

namespace {

namespace json = boost::json;
using namespace subrelay::auth;
using subrelay::text::base64url_encode;
using namespace std::chrono_literals;

// ---- a throwaway PKI, made with OpenSSL at test time ------------------------


void check(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("test PKI: ") + what);
    }
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return {data, static_cast<std::size_t>(size)};
}

pkey_ptr rsa_key(unsigned bits) {
    pkey_ptr key(EVP_RSA_gen(bits));
    check(key != nullptr, "RSA key generation");
    return key;
}

x509_ptr self_signed(EVP_PKEY* key) {
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    check(X509_set_pubkey(cert.get(), key) == 1, "set pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("subrelay test"), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), name);
    check(X509_sign(cert.get(), key, EVP_sha256()) > 0, "sign certificate");
    return cert;
}

std::string pkcs8_pem(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "write key");
    return bio_text(bio.get());
}

// "BEGIN RSA PRIVATE KEY", as older tools write it.
std::string traditional_pem(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "write traditional key");
    return bio_text(bio.get());
}

std::string encrypted_pem(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    char pass[] = "passphrase";
    check(PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), pass, sizeof pass - 1, nullptr, nullptr) ==
              1,
          "write encrypted key");
    return bio_text(bio.get());
}

std::string public_pem(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PUBKEY(bio.get(), key) == 1, "write public key");
    return bio_text(bio.get());
}

std::string cert_pem(X509* cert) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "write certificate");
    return bio_text(bio.get());
}

std::string cert_der(X509* cert) {
    unsigned char* der = nullptr;
    const int size = i2d_X509(cert, &der);
    check(size > 0, "certificate DER");
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
    OPENSSL_free(der);
    return out;
}

struct test_pki {
    pkey_ptr key;
    std::string key_pem;
    std::string cert_pem;
    std::string cert_der;
};

test_pki make_pki(unsigned bits) {
    test_pki p;
    p.key = rsa_key(bits);
    const auto cert = self_signed(p.key.get());
    p.key_pem = pkcs8_pem(p.key.get());
    p.cert_pem = cert_pem(cert.get());
    p.cert_der = cert_der(cert.get());
    return p;
}

// Key generation is slow under the sanitizers: make each kind once.
const test_pki& pki() {
    static const test_pki p = make_pki(2048);
    return p;
}

const test_pki& other_pki() {
    static const test_pki p = make_pki(2048);
    return p;
}

signing_key loaded_key() {
    auto key = signing_key::from_pem(pki().key_pem, "key.pem");
    key.set_certificate_pem(pki().cert_pem, "cert.pem");
    return key;
}

// ---- independent decoding and verification ----------------------------------

// The bytes a base64url text stands for; throws when it is not base64url.
std::string from_base64url(std::string_view text) { return subrelay::text::base64url_decode(text).value(); }

std::vector<std::string> split_jwt(const std::string& token) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (auto dot = token.find('.'); dot != std::string::npos; dot = token.find('.', start)) {
        parts.push_back(token.substr(start, dot - start));
        start = dot + 1;
    }
    parts.push_back(token.substr(start));
    return parts;
}

json::object decode_part(const std::string& part) { return json::parse(from_base64url(part)).as_object(); }

// A JSON string's text; throws if it is not a string.
std::string text(const json::value& v) { return std::string(v.as_string()); }

std::string digest(const EVP_MD* md, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int size = 0;
    check(EVP_Digest(data.data(), data.size(), out.data(), &size, md, nullptr) == 1, "digest");
    return {reinterpret_cast<const char*>(out.data()), size};
}

// The public key as the certificate carries it, not as the implementation loaded it.
pkey_ptr certificate_public_key(const std::string& pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    check(cert != nullptr, "read certificate");
    return pkey_ptr(X509_get_pubkey(cert.get()));
}

bool verifies(const std::string& signing_input, const std::string& signature, EVP_PKEY* key, jwt_alg alg) {
    md_ctx_ptr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    check(EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key) == 1, "verify init");
    if (alg == jwt_alg::ps256) {
        check(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1, "pss padding");
        // Exactly 32: a signature with any other salt length must not pass.
        check(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1, "salt length");
        check(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1, "mgf1");
    } else {
        check(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1, "pkcs1 padding");
    }
    const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                    signature.size(), reinterpret_cast<const unsigned char*>(signing_input.data()),
                                    signing_input.size());
    ERR_clear_error();
    return rc == 1;
}

bool token_verifies(const std::string& token, jwt_alg alg) {
    const auto parts = split_jwt(token);
    const auto key = certificate_public_key(pki().cert_pem);
    return verifies(parts[0] + "." + parts[1], from_base64url(parts[2]), key.get(), alg);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const jwt_error& e) {
        return e.what();
    }
    return "(no jwt_error)";
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good()) << path;
}

const auto fixed_now = std::chrono::system_clock::time_point{std::chrono::seconds{1700000000}};

client_assertion_request client_request(jwt_alg alg) {
    client_assertion_request r;
    r.token_url = "https://login.microsoftonline.com/tenant-id/oauth2/v2.0/token";
    r.client_id = "00000000-1111-2222-3333-444444444444";
    r.alg = alg;
    r.now = fixed_now;
    return r;
}

// ---- parse_jwt_alg -------------------------------------------------------------

TEST(jwt_alg, parses_case_insensitively) {
    EXPECT_EQ(parse_jwt_alg("PS256"), jwt_alg::ps256);
    EXPECT_EQ(parse_jwt_alg("ps256"), jwt_alg::ps256);
    EXPECT_EQ(parse_jwt_alg("RS256"), jwt_alg::rs256);
    EXPECT_EQ(parse_jwt_alg("Rs256"), jwt_alg::rs256);
}

TEST(jwt_alg, other_names_are_refused_naming_the_accepted_ones) {
    for (const char* name : {"", "HS256", "ES256", "PS384", "none", "PS256 "}) {
        const auto message = error_of([&] { (void)parse_jwt_alg(name); });
        EXPECT_NE(message.find("PS256"), std::string::npos) << name;
        EXPECT_NE(message.find("RS256"), std::string::npos) << name;
    }
}

// ---- signing_key ---------------------------------------------------------------

TEST(signing_key, loads_pkcs8_and_traditional_rsa_pem) {
    EXPECT_NO_THROW((void)signing_key::from_pem(pki().key_pem, "key.pem"));
    const auto traditional = traditional_pem(pki().key.get());
    ASSERT_NE(traditional.find("BEGIN RSA PRIVATE KEY"), std::string::npos);
    auto key = signing_key::from_pem(traditional, "key.pem");
    EXPECT_NO_THROW(key.set_certificate_pem(pki().cert_pem, "cert.pem"));
}

TEST(signing_key, thumbprints_are_digests_of_the_certificate_der) {
    const auto key = loaded_key();
    EXPECT_EQ(from_base64url(key.x5t_s256()), digest(EVP_sha256(), pki().cert_der));
    EXPECT_EQ(from_base64url(key.x5t()), digest(EVP_sha1(), pki().cert_der));
    EXPECT_EQ(key.x5t_s256().size(), 43U);
    EXPECT_EQ(key.x5t().size(), 27U);
}

TEST(signing_key, no_certificate_means_no_thumbprints) {
    const auto key = signing_key::from_pem(pki().key_pem, "key.pem");
    EXPECT_TRUE(key.x5t_s256().empty());
    EXPECT_TRUE(key.x5t().empty());
}

TEST(signing_key, mismatched_certificate_is_refused) {
    auto key = signing_key::from_pem(pki().key_pem, "key.pem");
    EXPECT_EQ(error_of([&] { key.set_certificate_pem(other_pki().cert_pem, "other.pem"); }),
              "other.pem: certificate does not match the private key");
    EXPECT_TRUE(key.x5t_s256().empty());
}

TEST(signing_key, small_rsa_key_is_refused) {
    const auto small = make_pki(1024);
    const auto message = error_of([&] { (void)signing_key::from_pem(small.key_pem, "small.pem"); });
    EXPECT_EQ(message.rfind("small.pem: ", 0), 0U) << message;
    EXPECT_NE(message.find("1024"), std::string::npos) << message;
    EXPECT_NE(message.find("2048"), std::string::npos) << message;
}

TEST(signing_key, non_rsa_key_is_refused) {
    pkey_ptr ec(EVP_EC_gen("P-256"));
    ASSERT_NE(ec, nullptr);
    const auto message = error_of([&] { (void)signing_key::from_pem(pkcs8_pem(ec.get()), "ec.pem"); });
    EXPECT_EQ(message, "ec.pem: the private key is not an RSA key");
}

TEST(signing_key, garbage_pem_names_the_source_and_echoes_nothing) {
    const std::string garbage = "-----BEGIN PRIVATE KEY-----\nTUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRkFB\n"
                                "-----END PRIVATE KEY-----\n";
    for (const std::string& text : {garbage, std::string("not a key at all"), std::string()}) {
        const auto message = error_of([&] { (void)signing_key::from_pem(text, "garbage.pem"); });
        EXPECT_EQ(message.rfind("garbage.pem: ", 0), 0U) << message;
        EXPECT_EQ(message.find("TUlJ"), std::string::npos) << message;
        EXPECT_EQ(message.find("BEGIN"), std::string::npos) << message;
        EXPECT_EQ(message.find("not a key"), std::string::npos) << message;
    }
    auto key = signing_key::from_pem(pki().key_pem, "key.pem");
    const auto message = error_of([&] { key.set_certificate_pem(garbage, "cert.pem"); });
    EXPECT_EQ(message.rfind("cert.pem: ", 0), 0U) << message;
    EXPECT_EQ(message.find("TUlJ"), std::string::npos) << message;
}

TEST(signing_key, a_public_key_is_not_a_private_key) {
    const auto message = error_of([&] { (void)signing_key::from_pem(public_pem(pki().key.get()), "pub.pem"); });
    EXPECT_EQ(message.rfind("pub.pem: ", 0), 0U) << message;
}

TEST(signing_key, encrypted_key_is_refused_without_prompting) {
    const auto message = error_of([&] { (void)signing_key::from_pem(encrypted_pem(pki().key.get()), "enc.pem"); });
    EXPECT_EQ(message.rfind("enc.pem: encrypted", 0), 0U) << message;
}

TEST(signing_key, from_files_reads_key_and_certificate) {
    test::temp_dir dir;
    write_file(dir.path() / "cert.pem", pki().cert_pem);
    write_file(dir.path() / "key.pem", pki().key_pem);
    const auto key = signing_key::from_files((dir.path() / "cert.pem").string(), (dir.path() / "key.pem").string());
    EXPECT_EQ(from_base64url(key.x5t_s256()), digest(EVP_sha256(), pki().cert_der));
}

TEST(signing_key, from_files_names_the_unreadable_file) {
    test::temp_dir dir;
    write_file(dir.path() / "cert.pem", pki().cert_pem);
    write_file(dir.path() / "key.pem", pki().key_pem);
    const auto cert = (dir.path() / "cert.pem").string();
    const auto key = (dir.path() / "key.pem").string();
    const auto missing = (dir.path() / "missing.pem").string();
    EXPECT_EQ(error_of([&] { (void)signing_key::from_files(cert, missing); }),
              missing + ": cannot read: No such file or directory");
    EXPECT_EQ(error_of([&] { (void)signing_key::from_files(missing, key); }),
              missing + ": cannot read: No such file or directory");
}

TEST(signing_key, from_files_refuses_a_certificate_for_another_key) {
    test::temp_dir dir;
    write_file(dir.path() / "cert.pem", other_pki().cert_pem);
    write_file(dir.path() / "key.pem", pki().key_pem);
    const auto cert = (dir.path() / "cert.pem").string();
    EXPECT_EQ(error_of([&] { (void)signing_key::from_files(cert, (dir.path() / "key.pem").string()); }),
              cert + ": certificate does not match the private key");
}

// ---- Microsoft client assertion ---------------------------------------------

TEST(jwt_client_assertion, ps256_header_and_claims) {
    const auto key = loaded_key();
    const auto r = client_request(jwt_alg::ps256);
    const auto parts = split_jwt(make_client_assertion(key, r));
    ASSERT_EQ(parts.size(), 3U);

    const auto header = decode_part(parts[0]);
    EXPECT_EQ(header.size(), 3U) << json::serialize(header);
    EXPECT_EQ(text(header.at("alg")), "PS256");
    EXPECT_EQ(text(header.at("typ")), "JWT");
    EXPECT_EQ(text(header.at("x5t#S256")), base64url_encode(digest(EVP_sha256(), pki().cert_der)));

    const auto claims = decode_part(parts[1]);
    EXPECT_EQ(claims.size(), 7U) << json::serialize(claims);
    EXPECT_EQ(text(claims.at("aud")), r.token_url);
    EXPECT_EQ(text(claims.at("iss")), r.client_id);
    EXPECT_EQ(text(claims.at("sub")), r.client_id);
    EXPECT_EQ(claims.at("nbf").to_number<std::int64_t>(), 1700000000);
    EXPECT_EQ(claims.at("iat").to_number<std::int64_t>(), 1700000000);
    EXPECT_EQ(claims.at("exp").to_number<std::int64_t>(), 1700000300);
    ASSERT_TRUE(claims.at("jti").is_string());
    EXPECT_EQ(claims.at("jti").get_string().size(), 36U);
}

TEST(jwt_client_assertion, ps256_signature_verifies_with_the_certificate) {
    const auto token = make_client_assertion(loaded_key(), client_request(jwt_alg::ps256));
    const auto parts = split_jwt(token);
    ASSERT_EQ(parts.size(), 3U);
    EXPECT_EQ(from_base64url(parts[2]).size(), 256U);
    EXPECT_TRUE(token_verifies(token, jwt_alg::ps256));
    // PSS is randomised, and PKCS#1 v1.5 verification must not accept it.
    EXPECT_FALSE(token_verifies(token, jwt_alg::rs256));

    auto payload = from_base64url(parts[1]);
    payload[payload.size() / 2] = static_cast<char>(payload[payload.size() / 2] ^ 0x01);
    EXPECT_FALSE(token_verifies(parts[0] + "." + base64url_encode(payload) + "." + parts[2], jwt_alg::ps256));
}

TEST(jwt_client_assertion, rs256_uses_the_sha1_thumbprint_and_verifies) {
    auto r = client_request(jwt_alg::rs256);
    r.jti = "fixed-id";
    const auto token = make_client_assertion(loaded_key(), r);
    const auto parts = split_jwt(token);
    ASSERT_EQ(parts.size(), 3U);
    const auto header = decode_part(parts[0]);
    EXPECT_EQ(header.size(), 3U) << json::serialize(header);
    EXPECT_EQ(text(header.at("alg")), "RS256");
    EXPECT_EQ(text(header.at("typ")), "JWT");
    EXPECT_EQ(text(header.at("x5t")), base64url_encode(digest(EVP_sha1(), pki().cert_der)));
    EXPECT_TRUE(token_verifies(token, jwt_alg::rs256));
    EXPECT_FALSE(token_verifies(token, jwt_alg::ps256));
    // PKCS#1 v1.5 is deterministic (given the same jti).
    EXPECT_EQ(token, make_client_assertion(loaded_key(), r));
}

TEST(jwt_client_assertion, jti_is_unique_unless_given) {
    const auto key = loaded_key();
    auto r = client_request(jwt_alg::ps256);
    const auto first = decode_part(split_jwt(make_client_assertion(key, r))[1]).at("jti");
    const auto second = decode_part(split_jwt(make_client_assertion(key, r))[1]).at("jti");
    EXPECT_NE(first, second);
    r.jti = "fixed-id";
    EXPECT_EQ(text(decode_part(split_jwt(make_client_assertion(key, r))[1]).at("jti")), "fixed-id");
}

TEST(jwt_client_assertion, lifetime_sets_exp) {
    auto r = client_request(jwt_alg::ps256);
    r.lifetime = 10min;
    const auto claims = decode_part(split_jwt(make_client_assertion(loaded_key(), r))[1]);
    EXPECT_EQ(claims.at("exp").to_number<std::int64_t>(), 1700000600);
}

TEST(jwt_client_assertion, requires_a_certificate) {
    const auto key = signing_key::from_pem(pki().key_pem, "key.pem");
    const auto message = error_of([&] { (void)make_client_assertion(key, client_request(jwt_alg::ps256)); });
    EXPECT_NE(message.find("certificate"), std::string::npos) << message;
}

TEST(jwt_client_assertion, openssl_command_line_agrees) {
    if (std::system("openssl version >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "no openssl command";
    }
    const auto parts = split_jwt(make_client_assertion(loaded_key(), client_request(jwt_alg::ps256)));
    test::temp_dir dir;
    write_file(dir.path() / "input", parts[0] + "." + parts[1]);
    write_file(dir.path() / "signature", from_base64url(parts[2]));
    write_file(dir.path() / "public.pem", public_pem(pki().key.get()));
    const std::string command = "cd '" + dir.path().string() +
                                "' && openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 "
                                "-verify public.pem -signature signature input >/dev/null 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0);
}

// ---- Google service account ----------------------------------------------------

TEST(jwt_service_account, claims_kid_and_rs256_signature) {
    service_account_request r;
    r.token_url = "https://oauth2.googleapis.com/token";
    r.client_email = "relay@project.iam.gserviceaccount.com";
    r.subject = "user@example.com";
    r.scope = "https://mail.google.com/";
    r.key_id = "0123456789abcdef";
    r.now = fixed_now;
    const auto token = make_service_account_assertion(signing_key::from_pem(pki().key_pem, "key.json"), r);
    const auto parts = split_jwt(token);
    ASSERT_EQ(parts.size(), 3U);

    const auto header = decode_part(parts[0]);
    EXPECT_EQ(header, (json::object{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "0123456789abcdef"}}));
    const auto claims = decode_part(parts[1]);
    EXPECT_EQ(claims, (json::object{{"iss", r.client_email},
                                    {"sub", r.subject},
                                    {"scope", r.scope},
                                    {"aud", r.token_url},
                                    {"iat", 1700000000},
                                    {"exp", 1700003600}}));
    EXPECT_TRUE(token_verifies(token, jwt_alg::rs256));
}

TEST(jwt_service_account, no_sub_or_kid_when_empty) {
    service_account_request r;
    r.token_url = "https://oauth2.googleapis.com/token";
    r.client_email = "relay@project.iam.gserviceaccount.com";
    r.scope = "https://mail.google.com/";
    r.now = fixed_now;
    const auto parts = split_jwt(make_service_account_assertion(loaded_key(), r));
    ASSERT_EQ(parts.size(), 3U);
    EXPECT_EQ(decode_part(parts[0]), (json::object{{"alg", "RS256"}, {"typ", "JWT"}}));
    const auto claims = decode_part(parts[1]);
    EXPECT_FALSE(claims.contains("sub"));
    EXPECT_EQ(claims.size(), 5U);
}

// ---- service account key file ---------------------------------------------------

json::object sample_key_file() {
    return {{"type", "service_account"},
            {"project_id", "project"},
            {"private_key_id", "0123456789abcdef"},
            {"private_key", pki().key_pem},
            {"client_email", "relay@project.iam.gserviceaccount.com"},
            {"client_id", "123456789"},
            {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
            {"token_uri", "https://oauth2.googleapis.com/token"}};
}

std::string parse_error(const json::object& o) {
    return error_of([&] { (void)parse_service_account_json(json::serialize(o), "key.json"); });
}

TEST(service_account_json, parses_a_google_key_file) {
    const auto key = parse_service_account_json(json::serialize(sample_key_file()), "key.json");
    EXPECT_EQ(key.client_email, "relay@project.iam.gserviceaccount.com");
    EXPECT_EQ(key.private_key_id, "0123456789abcdef");
    EXPECT_EQ(key.token_uri, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(key.private_key_pem, pki().key_pem);
    EXPECT_NO_THROW((void)signing_key::from_pem(key.private_key_pem, "key.json"));
}

TEST(service_account_json, missing_fields_are_named) {
    for (const char* field : {"type", "client_email", "private_key", "token_uri"}) {
        auto o = sample_key_file();
        o.erase(field);
        EXPECT_EQ(parse_error(o), std::string("key.json: ") + field + ": missing");
    }
    auto o = sample_key_file();
    o.erase("private_key_id");
    EXPECT_EQ(parse_service_account_json(json::serialize(o), "key.json").private_key_id, "");
}

TEST(service_account_json, wrong_fields_are_named_without_the_key) {
    auto o = sample_key_file();
    o["type"] = "authorized_user";
    const auto message = parse_error(o);
    EXPECT_EQ(message.rfind("key.json: type: ", 0), 0U) << message;
    EXPECT_NE(message.find("service_account"), std::string::npos) << message;

    o = sample_key_file();
    o["client_email"] = 42;
    EXPECT_EQ(parse_error(o), "key.json: client_email: not a string");

    o = sample_key_file();
    o["private_key"] = "";
    EXPECT_EQ(parse_error(o), "key.json: private_key: empty");

    o = sample_key_file();
    o["private_key_id"] = json::array{};
    const auto id_message = parse_error(o);
    EXPECT_EQ(id_message, "key.json: private_key_id: not a string");
    EXPECT_EQ(id_message.find("BEGIN"), std::string::npos);
}

TEST(service_account_json, not_a_json_object) {
    EXPECT_EQ(error_of([] { (void)parse_service_account_json("{\"type\": ", "key.json"); }).rfind("key.json: ", 0),
              0U);
    EXPECT_EQ(error_of([] { (void)parse_service_account_json("[1, 2]", "key.json"); }),
              "key.json: not a JSON object");
}

// ---- random_uuid ---------------------------------------------------------------

TEST(random_uuid, is_a_lowercase_version_4_uuid) {
    for (int i = 0; i < 100; ++i) {
        const auto id = random_uuid();
        ASSERT_EQ(id.size(), 36U) << id;
        for (std::size_t j = 0; j < id.size(); ++j) {
            if (j == 8 || j == 13 || j == 18 || j == 23) {
                EXPECT_EQ(id[j], '-') << id;
            } else {
                EXPECT_NE(std::string_view("0123456789abcdef").find(id[j]), std::string_view::npos) << id;
            }
        }
        EXPECT_EQ(id[14], '4') << id;
        EXPECT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos) << id;
    }
}

TEST(random_uuid, is_unique) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(seen.insert(random_uuid()).second);
    }
}

}  // namespace
