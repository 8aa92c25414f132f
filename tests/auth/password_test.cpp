#include "auth/password.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

using subrelay::auth::dummy_hash;
using subrelay::auth::hash_password;
using subrelay::auth::verify_password;

TEST(password, yescrypt_is_the_default) {
    const std::string hash = hash_password("correct horse");
    EXPECT_EQ(hash.rfind("$y$", 0), 0U) << hash;
    EXPECT_TRUE(verify_password("correct horse", hash));
    EXPECT_FALSE(verify_password("correct horsE", hash));
    EXPECT_FALSE(verify_password("", hash));
}

TEST(password, salts_are_random) {
    EXPECT_NE(hash_password("same"), hash_password("same"));
}

TEST(password, bcrypt) {
    const std::string hash = hash_password("s3cret!", "$2b$");
    EXPECT_EQ(hash.rfind("$2b$", 0), 0U) << hash;
    EXPECT_TRUE(verify_password("s3cret!", hash));
    EXPECT_FALSE(verify_password("s3cret", hash));
}

TEST(password, sha512_crypt) {
    const std::string hash = hash_password("printer-pass", "$6$");
    EXPECT_EQ(hash.rfind("$6$", 0), 0U) << hash;
    EXPECT_TRUE(verify_password("printer-pass", hash));
    EXPECT_FALSE(verify_password("printer-pas", hash));
}

TEST(password, known_hashes_from_other_tools) {
    // sha512-crypt, from `mkpasswd -m sha-512 -S saltsalt password`
    EXPECT_TRUE(verify_password(
        "password",
        "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"));
    EXPECT_FALSE(verify_password(
        "Password",
        "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"));
}

TEST(password, malformed_hashes_never_verify) {
    EXPECT_FALSE(verify_password("x", ""));
    EXPECT_FALSE(verify_password("x", "*"));
    EXPECT_FALSE(verify_password("x", "!"));
    EXPECT_FALSE(verify_password("x", "*0"));
    EXPECT_FALSE(verify_password("x", "$y$"));
    EXPECT_FALSE(verify_password("x", "$6$"));
    EXPECT_FALSE(verify_password("x", "$2b$99$abc"));
    EXPECT_FALSE(verify_password("x", "$unknown$salt$hash"));
    EXPECT_FALSE(verify_password("", "$y$j9T$garbage"));
    // A valid hash with a trailing byte changed is no longer the same hash.
    std::string hash = hash_password("pw");
    hash.back() = hash.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(verify_password("pw", hash));
    // Truncated hash.
    const std::string good = hash_password("pw");
    EXPECT_FALSE(verify_password("pw", good.substr(0, good.size() - 5)));
}

TEST(password, embedded_nul_is_rejected) {
    const std::string with_nul("pw\0more", 7);
    EXPECT_THROW(hash_password(with_nul), std::runtime_error);
    const std::string hash = hash_password("pw");
    EXPECT_FALSE(verify_password(with_nul, hash));
}

TEST(password, unsupported_prefix_throws) {
    EXPECT_THROW(hash_password("pw", "$nope$"), std::runtime_error);
    EXPECT_THROW(hash_password("pw", ""), std::runtime_error);
}

TEST(password, dummy_hash_is_stable_and_usable) {
    const std::string& a = dummy_hash();
    const std::string& b = dummy_hash();
    EXPECT_EQ(&a, &b);
    EXPECT_EQ(a.rfind("$y$", 0), 0U);
    EXPECT_FALSE(verify_password("", a));
    EXPECT_FALSE(verify_password("password", a));
}

}  // namespace
