#include "relay/server/account_lockout.hpp"

#include <gtest/gtest.h>

namespace subrelay::relay {
namespace {

using namespace std::chrono_literals;

const account_lockout::clock::time_point t0 = account_lockout::clock::time_point{} + 1000h;
const std::string account = "scanner@contoso.com";
const std::string home = "192.0.2.10";
const std::string guesser = "198.51.100.7";

TEST(account_lockout, failures_from_unfamiliar_addresses_lock_the_account) {
    account_lockout l({3, 60s});
    l.succeeded(account, home);
    EXPECT_EQ(l.failed(account, guesser, t0), 0s);
    EXPECT_EQ(l.failed(account, "198.51.100.8", t0 + 1s), 0s) << "counted per account, from any address";
    EXPECT_FALSE(l.refuses(account, guesser, t0 + 2s));
    EXPECT_EQ(l.failed(account, guesser, t0 + 2s), 60s);
    EXPECT_TRUE(l.refuses(account, guesser, t0 + 3s));
    EXPECT_TRUE(l.refuses(account, "203.0.113.1", t0 + 3s)) << "every unfamiliar address";
    EXPECT_FALSE(l.refuses(account, home, t0 + 3s)) << "the familiar address still logs in";
    EXPECT_FALSE(l.refuses("printer@contoso.com", guesser, t0 + 3s)) << "other accounts are not affected";
    EXPECT_FALSE(l.refuses(account, guesser, t0 + 62s)) << "the lock ends";
}

TEST(account_lockout, each_lock_lasts_twice_as_long_as_the_one_before_up_to_an_hour) {
    account_lockout l({2, 60s});
    auto now = t0;
    std::chrono::seconds expected = 60s;
    for (int lock = 0; lock < 8; ++lock) {
        EXPECT_EQ(l.failed(account, guesser, now), 0s);
        EXPECT_EQ(l.failed(account, guesser, now), expected) << "lock " << lock;
        now += expected;  // the moment it ends
        expected = std::min<std::chrono::seconds>(expected * 2, 3600s);
    }
    // A day without a lock: the next one is the first again.
    now += 25h;
    l.failed(account, guesser, now);
    EXPECT_EQ(l.failed(account, guesser, now), 60s);
}

TEST(account_lockout, failures_are_counted_within_an_hour) {
    account_lockout l({2, 60s});
    l.failed(account, guesser, t0);
    EXPECT_EQ(l.failed(account, guesser, t0 + 61min), 0s) << "the first has expired";
    EXPECT_EQ(l.failed(account, guesser, t0 + 62min), 60s);
}

TEST(account_lockout, failures_at_a_familiar_address_are_not_counted) {
    account_lockout l({2, 60s});
    l.succeeded(account, home);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(l.failed(account, home, t0), 0s);
    EXPECT_FALSE(l.refuses(account, guesser, t0));
}

TEST(account_lockout, a_login_forgets_the_failures_and_makes_the_address_familiar) {
    account_lockout l({2, 60s});
    l.failed(account, guesser, t0);
    l.succeeded(account, "192.0.2.20");
    EXPECT_EQ(l.failed(account, guesser, t0 + 1s), 0s) << "counting starts again";
    EXPECT_TRUE(l.familiar(account, "192.0.2.20"));
    EXPECT_FALSE(l.familiar(account, guesser));
}

TEST(account_lockout, only_the_most_recent_familiar_addresses_are_kept) {
    account_lockout l({2, 60s});
    for (std::size_t i = 0; i <= account_lockout::max_familiar; ++i) l.succeeded(account, "10.0.0." + std::to_string(i));
    EXPECT_FALSE(l.familiar(account, "10.0.0.0"));
    EXPECT_TRUE(l.familiar(account, "10.0.0.1"));
    l.succeeded(account, "10.0.0.1");  // now the most recent
    l.succeeded(account, "10.0.0.99");
    EXPECT_TRUE(l.familiar(account, "10.0.0.1"));
    EXPECT_FALSE(l.familiar(account, "10.0.0.2"));
}

TEST(account_lockout, zero_threshold_means_no_lockout) {
    account_lockout l({0, 60s});
    for (int i = 0; i < 100; ++i) EXPECT_EQ(l.failed(account, guesser, t0), 0s);
    EXPECT_FALSE(l.refuses(account, guesser, t0));
}

}  // namespace
}  // namespace subrelay::relay
