// The listeners' TLS contexts: several certificates (one per key type),
// session resumption by ticket (keys shared by every context, rotated) and
// by the session cache, and the per-profile options. Handshakes run in
// memory, over a BIO pair, between a server and a client SSL.
#include "relay/delivery/client_tls.hpp"
#include "relay/server/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/openssl_ptr.hpp"
#include "tests/relay/temp_dir.hpp"

namespace subrelay::relay {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

using auth::bio_ptr;
using auth::pkey_ptr;
using auth::ssl_ptr;
using auth::x509_ptr;
using ctx_ptr = auth::ssl_ctx_ptr;
using session_ptr = auth::ssl_session_ptr;

enum class key_kind { rsa2048, rsa1024, ecdsa };

std::string pem_of(X509* cert) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// A self-signed server certificate and its key, as PEM.
struct pem_pair {
    std::string cert;
    std::string key;
};

pem_pair self_signed(key_kind kind, const std::string& cn) {
    pkey_ptr key(kind == key_kind::ecdsa      ? EVP_EC_gen("P-256")
                 : kind == key_kind::rsa1024 ? EVP_RSA_gen(1024)
                                              : EVP_RSA_gen(2048));
    if (!key) throw std::runtime_error("test key generation failed");
    x509_ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) throw std::runtime_error("test certificate signing failed");
    return {pem_of(cert.get()), pem_of(key.get())};
}

// Made once: RSA key generation is slow under the sanitizers.
const pem_pair& rsa_pair() {
    static const pem_pair p = self_signed(key_kind::rsa2048, "rsa.relay.test");
    return p;
}
const pem_pair& ecdsa_pair() {
    static const pem_pair p = self_signed(key_kind::ecdsa, "ecdsa.relay.test");
    return p;
}

// A client that verifies nothing (these tests look at what the server
// chooses), limited as asked.
struct client_options {
    int max_version = 0;           // 0: any
    const char* sigalgs = nullptr;  // e.g. "ECDSA+SHA256"
    const char* ciphers = nullptr;  // TLS <= 1.2
    int security_level = -1;
};

ctx_ptr client_context(const client_options& o = {}) {
    ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
    if (o.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
    if (o.sigalgs != nullptr) {
        EXPECT_EQ(SSL_CTX_set1_sigalgs_list(ctx.get(), o.sigalgs), 1);
    }
    if (o.ciphers != nullptr) {
        EXPECT_EQ(SSL_CTX_set_cipher_list(ctx.get(), o.ciphers), 1);
    }
    if (o.security_level >= 0) SSL_CTX_set_security_level(ctx.get(), o.security_level);
    return ctx;
}

struct handshake_result {
    bool ok = false;
    std::string error;
    bool server_reused = false;
    bool client_reused = false;
    int peer_key_type = EVP_PKEY_NONE;  // of the server's certificate, as the client saw it
    std::string version;
    std::string cipher;
    std::string description;  // describe_tls on the server's side
    session_ptr session;      // the client's, with the tickets it received
};

bool wants_more(SSL* s, int ret) {
    const int e = SSL_get_error(s, ret);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

std::string tls_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "handshake failed";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// One handshake in memory; the client offers `resume` when given. The
// client then reads what the server sent after the handshake (TLS 1.3
// tickets), so that its session can be resumed.
handshake_result handshake(boost::asio::ssl::context& server, SSL_CTX* client, SSL_SESSION* resume = nullptr) {
    handshake_result r;
    ssl_ptr s(SSL_new(server.native_handle()));
    ssl_ptr c(SSL_new(client));
    BIO* server_bio = nullptr;
    BIO* client_bio = nullptr;
    if (!s || !c || BIO_new_bio_pair(&server_bio, 0, &client_bio, 0) != 1) {
        r.error = "setup: " + tls_error();
        return r;
    }
    SSL_set_bio(s.get(), server_bio, server_bio);
    SSL_set_bio(c.get(), client_bio, client_bio);
    SSL_set_accept_state(s.get());
    SSL_set_connect_state(c.get());
    if (resume != nullptr) SSL_set_session(c.get(), resume);
    bool client_done = false;
    bool server_done = false;
    // Each side moves when the other has written; a handshake takes a few
    // flights, so a bounded number of turns that make no progress is a failure.
    for (int turn = 0; turn < 16 && !(client_done && server_done); ++turn) {
        if (!client_done) {
            const int ret = SSL_do_handshake(c.get());
            if (ret == 1) {
                client_done = true;
            } else if (!wants_more(c.get(), ret)) {
                r.error = "client: " + tls_error();
                return r;
            }
        }
        if (!server_done) {
            const int ret = SSL_do_handshake(s.get());
            if (ret == 1) {
                server_done = true;
            } else if (!wants_more(s.get(), ret)) {
                r.error = "server: " + tls_error();
                return r;
            }
        }
    }
    if (!client_done || !server_done) {
        r.error = "handshake did not finish";
        return r;
    }
    char byte = 0;
    const int read = SSL_read(c.get(), &byte, 1);
    if (read > 0 || SSL_get_error(c.get(), read) != SSL_ERROR_WANT_READ) {
        r.error = "client read after the handshake: " + tls_error();
        return r;
    }
    r.ok = true;
    r.server_reused = SSL_session_reused(s.get()) == 1;
    r.client_reused = SSL_session_reused(c.get()) == 1;
    if (X509* peer = SSL_get0_peer_certificate(c.get())) r.peer_key_type = EVP_PKEY_get_base_id(X509_get0_pubkey(peer));
    r.version = SSL_get_version(s.get());
    r.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(s.get()));
    r.description = describe_tls(s.get());
    r.session.reset(SSL_get1_session(c.get()));
    // close_notify both ways: OpenSSL marks the session of a connection
    // freed without it as not resumable (on both sides).
    SSL_shutdown(c.get());
    SSL_shutdown(s.get());
    return r;
}

class server_tls : public ::testing::Test {
protected:
    void SetUp() override { dir_ = test_support::make_temp_dir("subrelay-tls-test"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // Writes the pair as NAME.pem and NAME.key; returns the configured pair.
    conf::tls_certificate write(const std::string& name, const pem_pair& pair) {
        const auto cert = dir_ / (name + ".pem");
        const auto key = dir_ / (name + ".key");
        std::ofstream(cert) << pair.cert;
        std::ofstream(key) << pair.key;
        return {cert, key};
    }

    conf::tls_config rsa_and_ecdsa() {
        conf::tls_config tls;
        tls.certificates = {write("rsa", rsa_pair()), write("ecdsa", ecdsa_pair())};
        return tls;
    }

    conf::tls_config ecdsa_only() {
        conf::tls_config tls;
        tls.certificates = {write("ecdsa", ecdsa_pair())};
        return tls;
    }

    // The error make_server_context throws for tls (none: "").
    static std::string error_of(const conf::tls_config& tls, const server_tls_options& options = {}) {
        try {
            make_server_context(tls, options);
        } catch (const tls_setting_error& e) {
            return e.what();
        }
        return "";
    }

    std::filesystem::path dir_;
};

// ---- certificates -------------------------------------------------------------

TEST_F(server_tls, serves_the_ecdsa_or_the_rsa_certificate_as_the_client_can_verify) {
    auto server = make_server_context(rsa_and_ecdsa());
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
        auto ecdsa_client = client_context({.max_version = version, .sigalgs = "ECDSA+SHA256"});
        const auto ecdsa = handshake(server, ecdsa_client.get());
        ASSERT_TRUE(ecdsa.ok) << ecdsa.error;
        EXPECT_EQ(ecdsa.peer_key_type, EVP_PKEY_EC);

        auto rsa_client = client_context({.max_version = version, .sigalgs = "RSA-PSS+SHA256:RSA+SHA256"});
        const auto rsa = handshake(server, rsa_client.get());
        ASSERT_TRUE(rsa.ok) << rsa.error;
        EXPECT_EQ(rsa.peer_key_type, EVP_PKEY_RSA);
    }
}

TEST_F(server_tls, the_order_of_the_list_does_not_matter) {
    conf::tls_config tls;
    tls.certificates = {write("ecdsa", ecdsa_pair()), write("rsa", rsa_pair())};
    auto server = make_server_context(tls);
    auto rsa_client = client_context({.sigalgs = "RSA-PSS+SHA256:RSA+SHA256"});
    const auto rsa = handshake(server, rsa_client.get());
    ASSERT_TRUE(rsa.ok) << rsa.error;
    EXPECT_EQ(rsa.peer_key_type, EVP_PKEY_RSA);
    auto ecdsa_client = client_context({.sigalgs = "ECDSA+SHA256"});
    const auto ecdsa = handshake(server, ecdsa_client.get());
    ASSERT_TRUE(ecdsa.ok) << ecdsa.error;
    EXPECT_EQ(ecdsa.peer_key_type, EVP_PKEY_EC);
}

TEST_F(server_tls, a_client_that_can_verify_neither_fails) {
    auto server = make_server_context(ecdsa_only());
    auto rsa_client = client_context({.sigalgs = "RSA-PSS+SHA256:RSA+SHA256"});
    EXPECT_FALSE(handshake(server, rsa_client.get()).ok);
}

TEST_F(server_tls, two_certificates_of_one_key_type_are_refused) {
    conf::tls_config tls;
    tls.certificates = {write("a", ecdsa_pair()), write("rsa", rsa_pair()),
                        write("b", self_signed(key_kind::ecdsa, "other.relay.test"))};
    EXPECT_EQ(error_of(tls), "tls.cert_file[2]: " + (dir_ / "b.pem").string() +
                                 ": a second ECDSA certificate (tls.cert_file[0] is one too); list one "
                                 "certificate per key type");
}

TEST_F(server_tls, each_key_must_match_its_own_certificate) {
    auto rsa = write("rsa", rsa_pair());
    auto ecdsa = write("ecdsa", ecdsa_pair());
    conf::tls_config swapped;
    swapped.certificates = {{rsa.cert_file, ecdsa.key_file}, {ecdsa.cert_file, rsa.key_file}};
    EXPECT_EQ(error_of(swapped), "tls.key_file[0]: " + ecdsa.key_file.string() + ": private key does not match " +
                                     rsa.cert_file.string());

    auto other = write("other", self_signed(key_kind::ecdsa, "other.relay.test"));
    conf::tls_config wrong_key;
    wrong_key.certificates = {rsa, {ecdsa.cert_file, other.key_file}};
    EXPECT_EQ(error_of(wrong_key), "tls.key_file[1]: " + other.key_file.string() + ": private key does not match " +
                                       ecdsa.cert_file.string());

    conf::tls_config single;
    single.certificates = {{ecdsa.cert_file, other.key_file}};
    EXPECT_EQ(error_of(single), "tls.key_file: " + other.key_file.string() + ": private key does not match " +
                                    ecdsa.cert_file.string());
}

TEST_F(server_tls, a_missing_file_is_named_with_its_index) {
    auto tls = rsa_and_ecdsa();
    tls.certificates[1].cert_file = dir_ / "absent.pem";
    EXPECT_THAT(error_of(tls), ::testing::StartsWith("tls.cert_file[1]: " + (dir_ / "absent.pem").string() +
                                                     ": cannot load certificate: "));
    tls = rsa_and_ecdsa();
    tls.certificates[0].key_file = dir_ / "absent.key";
    EXPECT_THAT(error_of(tls), ::testing::StartsWith("tls.key_file[0]: " + (dir_ / "absent.key").string() +
                                                     ": cannot load private key: "));
    EXPECT_EQ(error_of(conf::tls_config{}), "tls.cert_file: is required");
}

// ---- resumption -----------------------------------------------------------------

TEST_F(server_tls, a_ticket_resumes_the_session) {
    auto server = make_server_context(rsa_and_ecdsa());
    ASSERT_NE(ticket_keys_of(server), nullptr);
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
        auto client = client_context({.max_version = version});
        const auto first = handshake(server, client.get());
        ASSERT_TRUE(first.ok) << first.error;
        EXPECT_FALSE(first.server_reused);
        EXPECT_THAT(first.description, Not(HasSubstr("resumed")));
        ASSERT_NE(first.session, nullptr);
        ASSERT_EQ(SSL_SESSION_is_resumable(first.session.get()), 1);
        EXPECT_TRUE(SSL_SESSION_has_ticket(first.session.get()));

        const auto second = handshake(server, client.get(), first.session.get());
        ASSERT_TRUE(second.ok) << second.error;
        EXPECT_TRUE(second.server_reused);
        EXPECT_TRUE(second.client_reused);
        EXPECT_THAT(second.description, EndsWith(" (resumed)"));
    }
}

TEST_F(server_tls, a_ticket_from_one_context_resumes_in_another) {
    auto first_profile = make_server_context(rsa_and_ecdsa());
    auto second_profile = make_server_context(ecdsa_only(), {.min_version = TLS1_2_VERSION, .security_level = 2});
    EXPECT_EQ(ticket_keys_of(first_profile), ticket_keys_of(second_profile));
    EXPECT_EQ(ticket_keys_of(first_profile), shared_ticket_keys());
    auto client = client_context({.sigalgs = "ECDSA+SHA256"});
    const auto first = handshake(first_profile, client.get());
    ASSERT_TRUE(first.ok) << first.error;
    const auto second = handshake(second_profile, client.get(), first.session.get());
    ASSERT_TRUE(second.ok) << second.error;
    EXPECT_TRUE(second.server_reused);
}

TEST_F(server_tls, a_ticket_resumes_in_another_context_only_with_a_cipher_it_allows) {
    auto lenient = make_server_context(ecdsa_only(), {.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"});
    auto strict = make_server_context(ecdsa_only(), {.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384"});
    auto client = client_context({.max_version = TLS1_2_VERSION});
    const auto first = handshake(lenient, client.get());
    ASSERT_TRUE(first.ok) << first.error;
    EXPECT_EQ(first.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    const auto second = handshake(strict, client.get(), first.session.get());
    ASSERT_TRUE(second.ok) << second.error;
    EXPECT_FALSE(second.server_reused);
    EXPECT_EQ(second.cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");
    // The other way round the cipher is allowed, and the ticket is good.
    const auto back = handshake(lenient, client.get(), first.session.get());
    ASSERT_TRUE(back.ok) << back.error;
    EXPECT_TRUE(back.server_reused);
}

TEST_F(server_tls, the_previous_key_still_opens_tickets_and_older_ones_do_not) {
    auto now = ticket_key_store::clock::time_point{};
    auto keys = std::make_shared<ticket_key_store>(std::chrono::hours(12), [&now] { return now; });
    auto server = make_server_context(ecdsa_only());
    use_ticket_keys(server, keys);
    EXPECT_EQ(ticket_keys_of(server), keys);
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
        now = {};
        keys->rotate();  // a fresh key made "now" for each round
        auto client = client_context({.max_version = version});
        const auto first = handshake(server, client.get());
        ASSERT_TRUE(first.ok) << first.error;

        // One period later the key that sealed the ticket is the previous one.
        now += std::chrono::hours(13);
        const auto previous = handshake(server, client.get(), first.session.get());
        ASSERT_TRUE(previous.ok) << previous.error;
        EXPECT_TRUE(previous.server_reused);

        // Another period later it is gone: a full handshake, still successful.
        now += std::chrono::hours(12);
        const auto expired = handshake(server, client.get(), first.session.get());
        ASSERT_TRUE(expired.ok) << expired.error;
        EXPECT_FALSE(expired.server_reused);
        EXPECT_FALSE(expired.client_reused);
        // The ticket renewed under the newer key still works.
        const auto renewed = handshake(server, client.get(), previous.session.get());
        ASSERT_TRUE(renewed.ok) << renewed.error;
        EXPECT_TRUE(renewed.server_reused);
    }
}

TEST_F(server_tls, rotating_twice_retires_a_key) {
    auto keys = std::make_shared<ticket_key_store>();
    auto server = make_server_context(ecdsa_only());
    use_ticket_keys(server, keys);
    auto client = client_context();
    const auto first = handshake(server, client.get());
    ASSERT_TRUE(first.ok) << first.error;
    keys->rotate();
    EXPECT_TRUE(handshake(server, client.get(), first.session.get()).server_reused);
    keys->rotate();
    const auto retired = handshake(server, client.get(), first.session.get());
    ASSERT_TRUE(retired.ok) << retired.error;
    EXPECT_FALSE(retired.server_reused);
}

TEST_F(server_tls, a_ticket_sealed_with_unknown_keys_means_a_full_handshake) {
    auto server = make_server_context(ecdsa_only());
    auto stranger = make_server_context(ecdsa_only());
    use_ticket_keys(stranger, std::make_shared<ticket_key_store>());
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
        auto client = client_context({.max_version = version});
        const auto first = handshake(server, client.get());
        ASSERT_TRUE(first.ok) << first.error;
        const auto second = handshake(stranger, client.get(), first.session.get());
        ASSERT_TRUE(second.ok) << second.error;
        EXPECT_FALSE(second.server_reused);
        EXPECT_FALSE(second.client_reused);
        EXPECT_THAT(second.description, Not(HasSubstr("resumed")));
    }
}

TEST_F(server_tls, without_tickets_the_session_cache_resumes) {
    auto tls = ecdsa_only();
    tls.session_tickets = false;
    auto server = make_server_context(tls);
    EXPECT_EQ(ticket_keys_of(server), nullptr);
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
        auto client = client_context({.max_version = version});
        const auto first = handshake(server, client.get());
        ASSERT_TRUE(first.ok) << first.error;
        const auto second = handshake(server, client.get(), first.session.get());
        ASSERT_TRUE(second.ok) << second.error;
        EXPECT_TRUE(second.server_reused);
    }
    EXPECT_GE(SSL_CTX_sess_number(server.native_handle()), 2);
    EXPECT_EQ(SSL_CTX_sess_get_cache_size(server.native_handle()), 20480);
    EXPECT_EQ(SSL_CTX_get_timeout(server.native_handle()), 7200);
}

TEST_F(server_tls, without_tickets_or_cache_nothing_resumes) {
    auto tls = ecdsa_only();
    tls.session_tickets = false;
    tls.session_cache_size = 0;
    auto server = make_server_context(tls);
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
        auto client = client_context({.max_version = version});
        const auto first = handshake(server, client.get());
        ASSERT_TRUE(first.ok) << first.error;
        const auto second = handshake(server, client.get(), first.session.get());
        ASSERT_TRUE(second.ok) << second.error;
        EXPECT_FALSE(second.server_reused);
    }
}

TEST_F(server_tls, the_session_timeout_is_the_configured_one) {
    auto tls = ecdsa_only();
    tls.session_timeout_seconds = 300;
    tls.session_cache_size = 100;
    auto server = make_server_context(tls);
    EXPECT_EQ(SSL_CTX_get_timeout(server.native_handle()), 300);
    EXPECT_EQ(SSL_CTX_sess_get_cache_size(server.native_handle()), 100);
    auto client = client_context();
    const auto first = handshake(server, client.get());
    ASSERT_TRUE(first.ok) << first.error;
    EXPECT_EQ(SSL_SESSION_get_ticket_lifetime_hint(first.session.get()), 300U);
}

// A connected loopback TCP pair; closes both ends.
struct tcp_pair {
    int client = -1;
    int server = -1;
    tcp_pair() {
        const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("loopback listener");
        client = ::socket(AF_INET, SOCK_STREAM, 0);
        if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("loopback connect");
        server = ::accept(listener, nullptr, nullptr);
        ::close(listener);
        if (server < 0) throw std::runtime_error("loopback accept");
    }
    ~tcp_pair() {
        ::close(client);
        ::close(server);
    }
    tcp_pair(const tcp_pair&) = delete;
    tcp_pair& operator=(const tcp_pair&) = delete;
};

int no_delay(int fd) {
    int value = -1;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) != 0) return -1;
    return value;
}

TEST_F(server_tls, the_handshake_turns_nagle_off_so_replies_after_the_tickets_do_not_wait) {
    auto server = make_server_context(ecdsa_only());
    auto client_ctx = client_context();
    tcp_pair tcp;
    ASSERT_EQ(no_delay(tcp.server), 0);
    bool client_ok = false;
    std::thread client([&] {
        ssl_ptr c(SSL_new(client_ctx.get()));
        client_ok = SSL_set_fd(c.get(), tcp.client) == 1 && SSL_connect(c.get()) == 1;
    });
    ssl_ptr s(SSL_new(server.native_handle()));
    ASSERT_EQ(SSL_set_fd(s.get(), tcp.server), 1);
    const int accepted = SSL_accept(s.get());
    client.join();
    ASSERT_EQ(accepted, 1) << tls_error();
    EXPECT_TRUE(client_ok);
    EXPECT_EQ(no_delay(tcp.server), 1);
    EXPECT_EQ(no_delay(tcp.client), 0);  // only the server's side
}

TEST_F(server_tls, release_buffers_stays_on) {
    auto server = make_server_context(ecdsa_only());
    EXPECT_NE(SSL_CTX_get_mode(server.native_handle()) & SSL_MODE_RELEASE_BUFFERS, 0U);
}

// ---- per-profile options --------------------------------------------------------

TEST_F(server_tls, min_version_refuses_older_clients) {
    auto by_default = make_server_context(ecdsa_only());
    auto tls12_client = client_context({.max_version = TLS1_2_VERSION});
    const auto old = handshake(by_default, tls12_client.get());
    ASSERT_TRUE(old.ok) << old.error;
    EXPECT_EQ(old.version, "TLSv1.2");
    auto tls11_client = client_context({.max_version = TLS1_1_VERSION, .security_level = 0});
    EXPECT_FALSE(handshake(by_default, tls11_client.get()).ok);

    auto tls13_only = make_server_context(ecdsa_only(), {.min_version = TLS1_3_VERSION});
    EXPECT_EQ(SSL_CTX_get_min_proto_version(tls13_only.native_handle()), TLS1_3_VERSION);
    EXPECT_FALSE(handshake(tls13_only, tls12_client.get()).ok);
    auto any_client = client_context();
    const auto current = handshake(tls13_only, any_client.get());
    ASSERT_TRUE(current.ok) << current.error;
    EXPECT_EQ(current.version, "TLSv1.3");

    EXPECT_EQ(SSL_CTX_get_min_proto_version(
                  make_server_context(ecdsa_only(), {.min_version = TLS1_VERSION}).native_handle()),
              TLS1_VERSION);
    EXPECT_THAT(error_of(ecdsa_only(), {.min_version = 0x0999}), HasSubstr("unsupported minimum TLS version"));
}

TEST_F(server_tls, security_level_decides_which_keys_may_serve) {
    conf::tls_config weak;
    weak.certificates = {write("weak", self_signed(key_kind::rsa1024, "weak.relay.test"))};
    EXPECT_THAT(error_of(weak, {.security_level = 2}),
                ::testing::AllOf(::testing::StartsWith("tls.cert_file: " + weak.certificates[0].cert_file.string() +
                                                       ": cannot load certificate: "),
                                 HasSubstr("too small")));
    auto lenient = make_server_context(weak, {.security_level = 1});
    EXPECT_EQ(SSL_CTX_get_security_level(lenient.native_handle()), 1);
    auto client = client_context({.security_level = 0});
    const auto r = handshake(lenient, client.get());
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.peer_key_type, EVP_PKEY_RSA);

    // -1 leaves OpenSSL's own level.
    ctx_ptr plain(SSL_CTX_new(TLS_server_method()));
    EXPECT_EQ(SSL_CTX_get_security_level(make_server_context(ecdsa_only()).native_handle()),
              SSL_CTX_get_security_level(plain.get()));
}

TEST_F(server_tls, ciphers_limit_what_tls12_clients_get) {
    auto server = make_server_context(ecdsa_only(), {.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"});
    auto client = client_context({.max_version = TLS1_2_VERSION});
    const auto r = handshake(server, client.get());
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");

    auto other = client_context({.max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384"});
    EXPECT_FALSE(handshake(server, other.get()).ok);
    // Without the option the server takes any of its defaults.
    auto by_default = make_server_context(ecdsa_only());
    const auto d = handshake(by_default, other.get());
    ASSERT_TRUE(d.ok) << d.error;
    EXPECT_EQ(d.cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");

    EXPECT_THAT(error_of(ecdsa_only(), {.ciphers = "NO-SUCH-CIPHER"}), HasSubstr("no usable cipher"));
}

}  // namespace
}  // namespace subrelay::relay
