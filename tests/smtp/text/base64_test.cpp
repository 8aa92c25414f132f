#include "smtp/text/base64.hpp"

#include <gtest/gtest.h>

namespace subrelay::text {
namespace {

TEST(base64, rfc4648_vectors) {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(plain));
    }
}

TEST(base64, binary_round_trip) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 7) {
        const auto part = all.substr(0, n);
        EXPECT_EQ(base64_decode(base64_encode(part)), std::optional<std::string>(part));
    }
}

TEST(base64, sasl_plain) {
    EXPECT_EQ(base64_encode(std::string("\0alice\0secret", 13)), "AGFsaWNlAHNlY3JldA==");
    EXPECT_EQ(base64_decode("AGFsaWNlAHNlY3JldA=="), std::optional<std::string>(std::string("\0alice\0secret", 13)));
}

TEST(base64, strict_rejections) {
    for (const char* bad : {"Zg", "Zg=", "Z===", "====", "Zm9v YmFy", "Zm9v\r\n", "Zm=v", "Zg==Zg==", "Zm9-", "Zm9_",
                            "Zh==", "Zm9=", "*"}) {
        EXPECT_FALSE(base64_decode(bad)) << bad;
    }
}

TEST(base64, decode_rejects_padding_anywhere_but_the_end) {
    for (const char* bad : {"=Zm9", "Zm9v=Zm9", "Zm==Zm9v", "Zm9v===="}) {
        EXPECT_FALSE(base64_decode(bad)) << bad;
    }
}

// ---- base64url ------------------------------------------------------------

TEST(base64url, rfc4648_vectors_without_padding) {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64url_encode(plain), encoded);
        EXPECT_EQ(base64url_decode(encoded), std::optional<std::string>(plain));
    }
}

TEST(base64url, rfc7515_examples) {
    // Appendix A.1: the JOSE header and the claims, CRLFs included.
    EXPECT_EQ(base64url_encode("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}"), "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
    EXPECT_EQ(base64url_encode("{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"),
              "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ");
    // Appendix C: the URL-safe characters.
    EXPECT_EQ(base64url_encode(std::string("\x03\xec\xff\xe0\xc1")), "A-z_4ME");
}

TEST(base64url, uses_the_url_alphabet) {
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");  // standard base64: "+/8="
    EXPECT_EQ(base64url_encode("\xff\xff\xff"), "____");
    EXPECT_EQ(base64url_encode("\xfb\xef\xbe"), "----");
}

TEST(base64url, round_trips_every_byte_value) {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
    for (std::size_t n = 0; n <= 5; ++n) {
        const auto input = bytes.substr(n);
        const auto encoded = base64url_encode(input);
        EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos);
        EXPECT_EQ(base64url_decode(encoded), std::optional<std::string>(input));
    }
}

TEST(base64url, strict_rejections) {
    for (const char* bad : {"Z", "Zg==", "Zm9v+", "Zm9v/w", "Zm9 v", "Zh", "Zm9", "*"}) {
        EXPECT_FALSE(base64url_decode(bad)) << bad;
    }
}

}  // namespace
}  // namespace subrelay::text
