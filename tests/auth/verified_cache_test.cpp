#include <gtest/gtest.h>

#include "auth/password.hpp"

namespace subrelay::auth {
namespace {

struct fake_clock {
    std::chrono::steady_clock::time_point t{};
    verified_cache::clock_fn fn() {
        return [this] { return t; };
    }
};

struct counting_verify {
    int calls = 0;
    verified_cache::verify_fn fn() {
        return [this](std::string_view password, const std::string& hash) {
            ++calls;
            return hash == "hash-of-" + std::string(password);
        };
    }
};

TEST(verified_cache, a_success_is_remembered_until_the_ttl) {
    fake_clock clock;
    counting_verify slow;
    verified_cache cache(std::chrono::seconds(60), 100, clock.fn());
    EXPECT_TRUE(cache.verify("pw", "hash-of-pw", slow.fn()));
    EXPECT_TRUE(cache.verify("pw", "hash-of-pw", slow.fn()));
    EXPECT_EQ(slow.calls, 1);
    clock.t += std::chrono::seconds(61);
    EXPECT_TRUE(cache.verify("pw", "hash-of-pw", slow.fn()));
    EXPECT_EQ(slow.calls, 2);
}

TEST(verified_cache, failures_are_never_remembered) {
    counting_verify slow;
    verified_cache cache;
    EXPECT_FALSE(cache.verify("wrong", "hash-of-pw", slow.fn()));
    EXPECT_FALSE(cache.verify("wrong", "hash-of-pw", slow.fn()));
    EXPECT_EQ(slow.calls, 2);
    EXPECT_EQ(cache.size(), 0u);
}

TEST(verified_cache, a_new_hash_or_another_password_misses) {
    counting_verify slow;
    verified_cache cache;
    EXPECT_TRUE(cache.verify("pw", "hash-of-pw", slow.fn()));
    // The password was changed: the account now has another hash.
    EXPECT_FALSE(cache.verify("pw", "hash-of-pw2", slow.fn()));
    EXPECT_FALSE(cache.verify("pw2", "hash-of-pw", slow.fn()));
    EXPECT_EQ(slow.calls, 3);
}

TEST(verified_cache, stays_bounded) {
    counting_verify slow;
    verified_cache cache(std::chrono::seconds(60), 8);
    for (int i = 0; i < 100; ++i) {
        std::string pw = "pw" + std::to_string(i);
        EXPECT_TRUE(cache.verify(pw, "hash-of-" + pw, slow.fn()));
        EXPECT_LE(cache.size(), 8u);
    }
}

TEST(verified_cache, works_with_real_hashes) {
    verified_cache cache;
    const std::string hash = hash_password("correct horse");
    EXPECT_TRUE(cache.verify("correct horse", hash));
    EXPECT_TRUE(cache.verify("correct horse", hash));
    EXPECT_FALSE(cache.verify("battery staple", hash));
}

}  // namespace
}  // namespace subrelay::auth
