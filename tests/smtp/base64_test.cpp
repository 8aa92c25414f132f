#include "smtp/base64.hpp"

#include <gtest/gtest.h>

namespace subrelay::smtp {
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

}  // namespace
}  // namespace subrelay::smtp
