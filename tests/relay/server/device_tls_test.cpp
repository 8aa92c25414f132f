#include "relay/server/device_tls.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>

#include "tests/relay/temp_dir.hpp"

namespace subrelay::relay {
namespace {

namespace fs = std::filesystem;

class device_tls : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test_support::make_temp_dir("subrelay-device-tls");
        make_certificate();
        cfg_.tls.certificates = {{dir_ / "cert.pem", dir_ / "key.pem"}};
    }
    // A new key and certificate in the same files.
    void make_certificate() {
        const int rc = std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                                    "-subj /CN=localhost -keyout " + (dir_ / "key.pem").string() + " -out " +
                                    (dir_ / "cert.pem").string() + " 2>/dev/null")
                                       .c_str());
        ASSERT_EQ(rc, 0);
    }
    void TearDown() override { fs::remove_all(dir_); }

    conf::device_network& add_device() {
        cfg_.device_networks.emplace_back();
        return cfg_.device_networks.back();
    }

    fs::path dir_;
    conf::config cfg_;
};

TEST_F(device_tls, profiles_without_tls_settings_share_the_default_context) {
    add_device().accept_bare_lf = true;
    server_tls tls(cfg_);
    SSL_CTX* def = tls.context_for(nullptr)->native_handle();
    EXPECT_EQ(tls.context_for(&cfg_.device_networks[0])->native_handle(), def);
    EXPECT_EQ(SSL_CTX_get_min_proto_version(def), TLS1_2_VERSION);
}

TEST_F(device_tls, each_profile_gets_its_own_settings) {
    add_device().tls_min_version = conf::tls_version::v1_0;
    auto& sha1 = add_device();
    sha1.tls_security_level = 0;
    sha1.tls_ciphers = "ECDHE-ECDSA-AES128-SHA";
    auto& modern = add_device();
    modern.tls_min_version = conf::tls_version::v1_3;
    modern.tls_security_level = 3;
    server_tls tls(cfg_);

    SSL_CTX* def = tls.context_for(nullptr)->native_handle();
    SSL_CTX* old = tls.context_for(&cfg_.device_networks[0])->native_handle();
    SSL_CTX* weak = tls.context_for(&cfg_.device_networks[1])->native_handle();
    SSL_CTX* strict = tls.context_for(&cfg_.device_networks[2])->native_handle();
    EXPECT_NE(old, def);
    EXPECT_NE(weak, def);
    EXPECT_NE(old, weak);

    EXPECT_EQ(SSL_CTX_get_min_proto_version(old), TLS1_VERSION);
    EXPECT_EQ(SSL_CTX_get_security_level(old), 0) << "TLS 1.0 needs level 0 in OpenSSL 3";
    EXPECT_EQ(SSL_CTX_get_min_proto_version(weak), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_security_level(weak), 0);
    EXPECT_EQ(SSL_CTX_get_min_proto_version(strict), TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_get_security_level(strict), 3);
    EXPECT_NE(SSL_CTX_get_security_level(def), 0);

    // The cipher list applies to that profile only.
    const auto first_cipher = [](SSL_CTX* ctx) {
        STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx);
        std::string names;
        for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
            const char* name = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(ciphers, i));
            if (std::string_view(name).rfind("TLS_", 0) != 0) return std::string(name);  // not a TLS 1.3 suite
        }
        return std::string();
    };
    EXPECT_EQ(first_cipher(weak), "ECDHE-ECDSA-AES128-SHA");
    EXPECT_NE(first_cipher(def), "ECDHE-ECDSA-AES128-SHA");
}

TEST_F(device_tls, a_cipher_list_openssl_refuses_names_its_key) {
    add_device();
    add_device().tls_ciphers = "NO-SUCH-CIPHER";
    try {
        server_tls tls(cfg_);
        FAIL() << "expected tls_setting_error";
    } catch (const tls_setting_error& e) {
        EXPECT_EQ(e.key(), "device_network[1].tls_ciphers");
        EXPECT_THAT(e.what(), ::testing::StartsWith("device_network[1].tls_ciphers: no usable cipher in \"NO-SUCH-CIPHER\""));
    }
}

// The certificate a context serves, as DER.
std::string served_certificate(boost::asio::ssl::context& ctx) {
    X509* cert = SSL_CTX_get0_certificate(ctx.native_handle());
    if (cert == nullptr) return {};
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    std::string out(reinterpret_cast<const char*>(der), n > 0 ? static_cast<std::size_t>(n) : 0);
    OPENSSL_free(der);
    return out;
}

TEST_F(device_tls, a_reload_reads_the_certificate_again_and_keeps_what_sessions_hold) {
    server_tls tls(cfg_);
    const auto before = tls.context_for(nullptr);
    const std::string old_cert = served_certificate(*before);
    ASSERT_FALSE(old_cert.empty());
    // The certificate is renewed in place, as certbot or an admin does.
    make_certificate();
    tls.reload();
    const auto after = tls.context_for(nullptr);
    EXPECT_NE(served_certificate(*after), old_cert) << "new sessions get the new certificate";
    EXPECT_EQ(served_certificate(*before), old_cert) << "a session under way keeps its context";
}

TEST_F(device_tls, a_reload_that_fails_keeps_the_current_certificate) {
    server_tls tls(cfg_);
    const std::string cert = served_certificate(*tls.context_for(nullptr));
    fs::resize_file(dir_ / "key.pem", 10);  // a half-written key
    EXPECT_THROW(tls.reload(), tls_setting_error);
    EXPECT_EQ(served_certificate(*tls.context_for(nullptr)), cert);
}

}  // namespace
}  // namespace subrelay::relay
