#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "policy/limits.hpp"

namespace subrelay::policy {
namespace {

using namespace std::chrono_literals;

class limiter_test : public ::testing::Test {
protected:
    std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
    limiter limits_{[this] { return now_; }};
};

effective_limits make(std::uint32_t per_minute, std::uint32_t per_day, std::uint32_t per_message) {
    return {per_minute, per_day, per_message};
}

TEST_F(limiter_test, messages_per_minute) {
    const auto l = make(3, 0, 0);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(limits_.check_message("a@contoso.com", l), std::nullopt) << i;
        limits_.record("a@contoso.com", 1);
        now_ += 1s;
    }
    EXPECT_EQ(limits_.check_message("a@contoso.com", l), replies::message_rate_exceeded());
    EXPECT_EQ(limits_.check_message("a@contoso.com", l), replies::message_rate_exceeded()) << "checking does not count";
    EXPECT_EQ(limits_.check_message("b@contoso.com", l), std::nullopt) << "per account";
}

TEST_F(limiter_test, the_minute_slides) {
    const auto l = make(2, 0, 0);
    limits_.record("a@contoso.com", 1);  // t = 0
    now_ += 30s;
    limits_.record("a@contoso.com", 1);  // t = 30
    now_ += 29s;                         // t = 59: both in the window
    EXPECT_TRUE(limits_.check_message("a@contoso.com", l).has_value());
    now_ += 1s;  // t = 60: the first is a minute old
    EXPECT_EQ(limits_.check_message("a@contoso.com", l), std::nullopt);
    limits_.record("a@contoso.com", 1);
    EXPECT_TRUE(limits_.check_message("a@contoso.com", l).has_value());
    now_ += 30s;  // t = 90: the second leaves
    EXPECT_EQ(limits_.check_message("a@contoso.com", l), std::nullopt);
}

TEST_F(limiter_test, identities_are_case_insensitive) {
    const auto l = make(1, 10, 0);
    limits_.record("Scanner@Contoso.com", 4);
    EXPECT_TRUE(limits_.check_message("scanner@CONTOSO.COM", l).has_value());
    EXPECT_EQ(limits_.check_recipient("SCANNER@contoso.com", l, 5), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("SCANNER@contoso.com", l, 6), replies::daily_recipients_exceeded());
}

TEST_F(limiter_test, recipients_per_day) {
    const auto l = make(0, 10, 0);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 9), std::nullopt) << "the 10th recipient is allowed";
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 10), replies::daily_recipients_exceeded());
    limits_.record("a@contoso.com", 6);
    now_ += 12h;
    limits_.record("a@contoso.com", 3);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 0), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 1), replies::daily_recipients_exceeded());
    now_ += 12h - 1s;
    EXPECT_TRUE(limits_.check_recipient("a@contoso.com", l, 1).has_value());
    now_ += 1s;  // the 6 recipients are a day old
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 6), std::nullopt);
    EXPECT_TRUE(limits_.check_recipient("a@contoso.com", l, 7).has_value());
    now_ += 24h;
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 9), std::nullopt);
}

TEST_F(limiter_test, recipients_per_message_come_first) {
    const auto l = make(0, 3, 2);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 0), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 1), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 2), replies::too_many_recipients());
    limits_.record("a@contoso.com", 3);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 0), replies::daily_recipients_exceeded());
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 2), replies::too_many_recipients());
}

TEST_F(limiter_test, zero_means_no_limit) {
    const auto l = make(0, 0, 0);
    for (int i = 0; i < 1000; ++i) limits_.record("a@contoso.com", 1000);
    EXPECT_EQ(limits_.check_message("a@contoso.com", l), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", l, 1'000'000), std::nullopt);
    // The counts were kept: a limit applies as soon as the policy sets one.
    EXPECT_TRUE(limits_.check_message("a@contoso.com", make(1000, 0, 0)).has_value());
}

TEST_F(limiter_test, thread_safe_counting) {
    const auto l = make(1'000'000, 0, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([this, t, &l] {
            for (int i = 0; i < 250; ++i) {
                (void)limits_.check_message(t % 2 == 0 ? "a@contoso.com" : "A@CONTOSO.COM", l);
                limits_.record(t % 2 == 0 ? "a@contoso.com" : "A@CONTOSO.COM", 1);
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(limits_.check_message("a@contoso.com", make(1000, 0, 0)), replies::message_rate_exceeded());
    EXPECT_EQ(limits_.check_message("a@contoso.com", make(1001, 0, 0)), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", make(0, 1001, 0), 0), std::nullopt);
    EXPECT_EQ(limits_.check_recipient("a@contoso.com", make(0, 1001, 0), 1), replies::daily_recipients_exceeded());
}


// Ten parallel sessions of an account limited to 3 messages a minute and
// 10 recipients a day were all accepted: the checks counted accepted
// messages only. What a transaction holds counts from MAIL and RCPT on.
TEST_F(limiter_test, parallel_transactions_share_the_quotas) {
    limiter& l = limits_;
    const effective_limits lim = make(3, 10, 0);
    std::vector<reservation> held;
    smtp::reply refusal;
    for (int i = 0; i < 3; ++i) {
        auto r = l.reserve_message("scanner@contoso.com", lim, refusal);
        ASSERT_TRUE(r) << i;
        held.push_back(std::move(*r));
    }
    EXPECT_FALSE(l.reserve_message("Scanner@Contoso.com", lim, refusal)) << "a fourth at once";
    EXPECT_EQ(refusal.code, 421);
    for (int i = 0; i < 10; ++i) EXPECT_FALSE(l.reserve_recipient(held[i % 3], lim)) << i;
    EXPECT_TRUE(l.reserve_recipient(held[0], lim)) << "an eleventh recipient the same day";
    // An abandoned transaction gives its share back; an accepted one keeps it.
    const std::size_t given_back = held[2].recipients();
    held[2].release();
    for (std::size_t i = 0; i < given_back; ++i) EXPECT_FALSE(l.reserve_recipient(held[0], lim));
    held[0].commit();
    held[1].commit();
    auto again = l.reserve_message("scanner@contoso.com", lim, refusal);
    EXPECT_TRUE(again) << "two accepted in this minute, one free";
    EXPECT_FALSE(l.reserve_message("scanner@contoso.com", lim, refusal));
}

TEST_F(limiter_test, a_dropped_reservation_frees_its_share) {
    limiter& l = limits_;
    const effective_limits lim = make(1, 0, 0);
    smtp::reply refusal;
    {
        auto r = l.reserve_message("a@contoso.com", lim, refusal);
        ASSERT_TRUE(r);
        EXPECT_FALSE(l.reserve_message("a@contoso.com", lim, refusal));
    }  // the session ended
    EXPECT_TRUE(l.reserve_message("a@contoso.com", lim, refusal));
}

}  // namespace
}  // namespace subrelay::policy
