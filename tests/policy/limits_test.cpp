#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "policy/limits.hpp"
#include "tests/policy/limiter_calls.hpp"

namespace subrelay::policy {
namespace {

using namespace test_calls;

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
        EXPECT_EQ(check_message(limits_, "a@contoso.com", l), std::nullopt) << i;
        record(limits_, "a@contoso.com", 1);
        now_ += 1s;
    }
    EXPECT_EQ(check_message(limits_, "a@contoso.com", l), replies::message_rate_exceeded());
    EXPECT_EQ(check_message(limits_, "a@contoso.com", l), replies::message_rate_exceeded()) << "checking does not count";
    EXPECT_EQ(check_message(limits_, "b@contoso.com", l), std::nullopt) << "per account";
}

TEST_F(limiter_test, the_minute_slides) {
    const auto l = make(2, 0, 0);
    record(limits_, "a@contoso.com", 1);  // t = 0
    now_ += 30s;
    record(limits_, "a@contoso.com", 1);  // t = 30
    now_ += 29s;                         // t = 59: both in the window
    EXPECT_TRUE(check_message(limits_, "a@contoso.com", l).has_value());
    now_ += 1s;  // t = 60: the first is a minute old
    EXPECT_EQ(check_message(limits_, "a@contoso.com", l), std::nullopt);
    record(limits_, "a@contoso.com", 1);
    EXPECT_TRUE(check_message(limits_, "a@contoso.com", l).has_value());
    now_ += 30s;  // t = 90: the second leaves
    EXPECT_EQ(check_message(limits_, "a@contoso.com", l), std::nullopt);
}

TEST_F(limiter_test, identities_are_case_insensitive) {
    const auto l = make(1, 10, 0);
    record(limits_, "Scanner@Contoso.com", 4);
    EXPECT_TRUE(check_message(limits_, "scanner@CONTOSO.COM", l).has_value());
    EXPECT_EQ(check_recipient(limits_, "SCANNER@contoso.com", l, 5), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "SCANNER@contoso.com", l, 6), replies::daily_recipients_exceeded());
}

TEST_F(limiter_test, recipients_per_day) {
    const auto l = make(0, 10, 0);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 9), std::nullopt) << "the 10th recipient is allowed";
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 10), replies::daily_recipients_exceeded());
    record(limits_, "a@contoso.com", 6);
    now_ += 12h;
    record(limits_, "a@contoso.com", 3);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 0), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 1), replies::daily_recipients_exceeded());
    now_ += 12h - 1s;
    EXPECT_TRUE(check_recipient(limits_, "a@contoso.com", l, 1).has_value());
    now_ += 1s;  // the 6 recipients are a day old
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 6), std::nullopt);
    EXPECT_TRUE(check_recipient(limits_, "a@contoso.com", l, 7).has_value());
    now_ += 24h;
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 9), std::nullopt);
}

TEST_F(limiter_test, recipients_per_message_come_first) {
    const auto l = make(0, 3, 2);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 0), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 1), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 2), replies::too_many_recipients());
    record(limits_, "a@contoso.com", 3);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 0), replies::daily_recipients_exceeded());
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 2), replies::too_many_recipients());
}

TEST_F(limiter_test, zero_means_no_limit) {
    const auto l = make(0, 0, 0);
    for (int i = 0; i < 1000; ++i) record(limits_, "a@contoso.com", 1000);
    EXPECT_EQ(check_message(limits_, "a@contoso.com", l), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 1'000'000), std::nullopt);
    // The counts were kept: a limit applies as soon as the policy sets one.
    EXPECT_TRUE(check_message(limits_, "a@contoso.com", make(1000, 0, 0)).has_value());
}

TEST_F(limiter_test, thread_safe_counting) {
    const auto l = make(1'000'000, 0, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([this, t, &l] {
            for (int i = 0; i < 250; ++i) {
                (void)check_message(limits_, t % 2 == 0 ? "a@contoso.com" : "A@CONTOSO.COM", l);
                record(limits_, t % 2 == 0 ? "a@contoso.com" : "A@CONTOSO.COM", 1);
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(check_message(limits_, "a@contoso.com", make(1000, 0, 0)), replies::message_rate_exceeded());
    EXPECT_EQ(check_message(limits_, "a@contoso.com", make(1001, 0, 0)), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", make(0, 1001, 0), 0), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", make(0, 1001, 0), 1), replies::daily_recipients_exceeded());
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

TEST_F(limiter_test, a_recipient_given_back_frees_its_place_in_the_day) {
    const effective_limits lim = make(0, 2, 0);
    smtp::reply refusal;
    auto r = limits_.reserve_message("a@contoso.com", lim, refusal);
    ASSERT_TRUE(r);
    EXPECT_EQ(limits_.reserve_recipient(*r, lim), std::nullopt);
    EXPECT_EQ(limits_.reserve_recipient(*r, lim), std::nullopt);
    EXPECT_EQ(limits_.reserve_recipient(*r, lim), replies::daily_recipients_exceeded());
    r->release_recipient();  // the second was refused elsewhere after all
    EXPECT_EQ(r->recipients(), 1U);
    EXPECT_EQ(limits_.reserve_recipient(*r, lim), std::nullopt);
    r->commit();
    auto next = limits_.reserve_message("a@contoso.com", lim, refusal);
    ASSERT_TRUE(next);
    EXPECT_EQ(limits_.reserve_recipient(*next, lim), replies::daily_recipients_exceeded())
        << "two recipients were counted for good";
}

// ---------------------------------------------------------------------------
// snapshot and restore: the counters of one process, with wall-clock times,
// taken up by the next (whose steady clock starts somewhere else).

using sys_time = std::chrono::system_clock::time_point;

// 2026-01-01 12:00:00 UTC, a wall-clock time as the relay reads one.
const sys_time noon = sys_time(std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)) + 12h;

// A second process: its steady clock is nowhere near the first one's.
class restarted_limiter {
public:
    std::chrono::steady_clock::time_point now_{std::chrono::hours(5)};
    limiter limits_{[this] { return now_; }};
};

TEST_F(limiter_test, snapshot_holds_wall_clock_times) {
    record(limits_, "Scanner@Contoso.com", 2);
    now_ += 20s;
    record(limits_, "scanner@contoso.com", 3);
    record(limits_, "b@contoso.com", 0);
    const limiter_snapshot s = limits_.snapshot(noon);
    const limiter_snapshot expected{{
        {"b@contoso.com", {noon}, {}},
        {"scanner@contoso.com", {noon - 20s, noon}, {{noon - 20s, 5}}},  // within a minute: one entry
    }};
    EXPECT_EQ(s, expected);
}

TEST_F(limiter_test, recipients_within_a_minute_share_one_entry_dated_by_the_first) {
    const auto l = make(0, 10, 0);
    record(limits_, "a@contoso.com", 4);
    now_ += 59s;
    record(limits_, "a@contoso.com", 3);
    now_ += 1s;
    record(limits_, "a@contoso.com", 2);  // a minute after the first: a new entry
    EXPECT_EQ(limits_.snapshot(noon).accounts.at(0).recipients,
              (std::vector<std::pair<sys_time, std::size_t>>{{noon - 60s, 7}, {noon, 2}}));
    now_ += 24h - 60s;  // the first entry is a day old: its 7 leave together
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 7), std::nullopt);
    EXPECT_EQ(check_recipient(limits_, "a@contoso.com", l, 8), replies::daily_recipients_exceeded());
}

TEST_F(limiter_test, snapshot_and_restore_round_trip) {
    const auto l = make(3, 6, 0);
    record(limits_, "scanner@contoso.com", 2);
    now_ += 20s;
    record(limits_, "scanner@contoso.com", 3);
    record(limits_, "b@contoso.com", 1);
    const limiter_snapshot s = limits_.snapshot(noon);

    // The relay starts again 10 s later.
    restarted_limiter next;
    next.limits_.restore(s, noon + 10s);
    EXPECT_EQ(next.limits_.snapshot(noon + 10s), s) << "nothing lost, nothing moved";
    EXPECT_EQ(check_message(next.limits_, "scanner@contoso.com", l), std::nullopt) << "two of three this minute";
    record(next.limits_, "scanner@contoso.com", 1);
    EXPECT_EQ(check_message(next.limits_, "Scanner@contoso.com", l), replies::message_rate_exceeded());
    EXPECT_EQ(check_recipient(next.limits_, "scanner@contoso.com", l, 0), replies::daily_recipients_exceeded())
        << "5 before the restart and 1 after: the day's 6 are used";
    EXPECT_EQ(check_recipient(next.limits_, "b@contoso.com", l, 4), std::nullopt);
    EXPECT_EQ(check_recipient(next.limits_, "b@contoso.com", l, 5), replies::daily_recipients_exceeded());

    // The windows go on sliding from the times of the first process: the
    // first message (30 s old at the restart) leaves 30 s later.
    next.now_ += 29s;
    EXPECT_TRUE(check_message(next.limits_, "scanner@contoso.com", l).has_value());
    next.now_ += 1s;
    EXPECT_EQ(check_message(next.limits_, "scanner@contoso.com", l), std::nullopt);
    // Its 5 recipients, and the one counted after the restart within the
    // same minute, share one entry dated by the first message: all 6 leave
    // a day after it.
    next.now_ += 24h - 61s;
    EXPECT_EQ(check_recipient(next.limits_, "scanner@contoso.com", l, 0), replies::daily_recipients_exceeded());
    next.now_ += 1s;
    EXPECT_EQ(check_recipient(next.limits_, "scanner@contoso.com", l, 5), std::nullopt);
    EXPECT_EQ(check_recipient(next.limits_, "scanner@contoso.com", l, 6), replies::daily_recipients_exceeded());
}

TEST(limiter_restore, what_left_its_window_is_dropped) {
    const limiter_snapshot s{{
        {"a@contoso.com",
         {noon - 61s, noon - 60s, noon - 59s},
         {{noon - 24h - 1s, 5}, {noon - 24h, 4}, {noon - 23h, 2}}},
        {"gone@contoso.com", {noon - 1h}, {{noon - 48h, 7}}},
    }};
    restarted_limiter next;
    next.limits_.restore(s, noon);
    const limiter_snapshot kept{{{"a@contoso.com", {noon - 59s}, {{noon - 23h, 2}}}}};
    EXPECT_EQ(next.limits_.snapshot(noon), kept) << "an event a full window old has left it";
    EXPECT_TRUE(check_message(next.limits_, "a@contoso.com", make(1, 0, 0)).has_value());
    EXPECT_EQ(check_recipient(next.limits_, "a@contoso.com", make(0, 3, 0), 0), std::nullopt);
    EXPECT_TRUE(check_recipient(next.limits_, "a@contoso.com", make(0, 3, 0), 1).has_value());
    EXPECT_EQ(check_message(next.limits_, "gone@contoso.com", make(1, 0, 0)), std::nullopt);
    EXPECT_EQ(check_recipient(next.limits_, "gone@contoso.com", make(0, 1, 0), 0), std::nullopt);
}

// The clock was set back an hour between the runs: what was counted "in
// the future" counts as now, and leaves a window later, not an hour more.
TEST(limiter_restore, times_in_the_future_count_as_now) {
    const limiter_snapshot s{{{"a@contoso.com", {noon + 1h}, {{noon + 1h, 3}}}}};
    restarted_limiter next;
    next.limits_.restore(s, noon);
    EXPECT_EQ(next.limits_.snapshot(noon), (limiter_snapshot{{{"a@contoso.com", {noon}, {{noon, 3}}}}}));
    const auto l = make(1, 3, 0);
    EXPECT_EQ(check_message(next.limits_, "a@contoso.com", l), replies::message_rate_exceeded());
    EXPECT_EQ(check_recipient(next.limits_, "a@contoso.com", l, 0), replies::daily_recipients_exceeded());
    next.now_ += 59s;
    EXPECT_TRUE(check_message(next.limits_, "a@contoso.com", l).has_value());
    next.now_ += 1s;
    EXPECT_EQ(check_message(next.limits_, "a@contoso.com", l), std::nullopt);
    next.now_ += 24h - 60s;
    EXPECT_EQ(check_recipient(next.limits_, "a@contoso.com", l, 2), std::nullopt);
}

// Times far out of any window (a damaged clock, the smallest and largest
// time points) neither overflow nor count wrongly; an unsorted snapshot and
// counts of zero are taken as they come.
TEST(limiter_restore, odd_snapshots) {
    const limiter_snapshot s{{{"A@Contoso.com",
                               {sys_time::max(), noon - 10s, sys_time::min(), noon - 30s},
                               {{sys_time::min(), 9}, {noon - 2h, 0}, {noon - 1h, 1}, {noon - 3h, 1}}}}};
    restarted_limiter next;
    next.limits_.restore(s, noon);
    EXPECT_EQ(next.limits_.snapshot(noon),
              (limiter_snapshot{
                  {{"a@contoso.com", {noon - 30s, noon - 10s, noon}, {{noon - 3h, 1}, {noon - 1h, 1}}}}}));
    next.now_ += 30s;  // the oldest leaves first
    EXPECT_EQ(check_message(next.limits_, "a@contoso.com", make(3, 0, 0)), std::nullopt);
}

TEST(limiter_restore, restore_adds_to_what_is_counted) {
    restarted_limiter next;
    record(next.limits_, "a@contoso.com", 1);
    next.limits_.restore({{{"a@contoso.com", {noon - 5s}, {{noon - 5s, 2}}}}}, noon);
    EXPECT_TRUE(check_message(next.limits_, "a@contoso.com", make(2, 0, 0)).has_value());
    EXPECT_TRUE(check_recipient(next.limits_, "a@contoso.com", make(0, 3, 0), 0).has_value());
    EXPECT_EQ(next.limits_.snapshot(noon),
              (limiter_snapshot{{{"a@contoso.com", {noon - 5s, noon}, {{noon - 5s, 2}, {noon, 1}}}}}));
}

// What is worth saving: counted messages, not checks, reservations given
// back or what was restored.
TEST_F(limiter_test, changes_count_what_was_counted) {
    const auto l = make(5, 5, 0);
    EXPECT_EQ(limits_.changes(), 0U);
    (void)check_message(limits_, "a@contoso.com", l);
    (void)check_recipient(limits_, "a@contoso.com", l, 0);
    smtp::reply refusal;
    {
        auto r = limits_.reserve_message("a@contoso.com", l, refusal);
        ASSERT_TRUE(r);
        EXPECT_FALSE(limits_.reserve_recipient(*r, l));
    }  // released
    limits_.restore({{{"a@contoso.com", {noon}, {}}}}, noon);
    EXPECT_EQ(limits_.changes(), 0U);
    auto r = limits_.reserve_message("a@contoso.com", l, refusal);
    ASSERT_TRUE(r);
    r->commit();
    EXPECT_EQ(limits_.changes(), 1U);
    record(limits_, "b@contoso.com", 2);
    EXPECT_EQ(limits_.changes(), 2U);
    (void)limits_.snapshot(noon);
    EXPECT_EQ(limits_.changes(), 2U) << "a snapshot changes nothing";
}

// Snapshots are taken on another thread than the sessions' (ThreadSanitizer
// checks the locking).
TEST_F(limiter_test, snapshots_while_counting) {
    std::atomic<bool> done{false};
    std::thread writer([this, &done] {
        smtp::reply refusal;
        for (int i = 0; i < 500; ++i) {
            auto r = limits_.reserve_message("a@contoso.com", make(0, 0, 0), refusal);
            (void)limits_.reserve_recipient(*r, make(0, 0, 0));
            r->commit();
        }
        done = true;
    });
    const auto recipients = [](const limiter_snapshot& s) {
        std::size_t n = 0;
        for (const auto& a : s.accounts)
            for (const auto& r : a.recipients) n += r.second;
        return n;
    };
    std::size_t last = 0;
    while (!done) {
        const std::size_t n = recipients(limits_.snapshot(noon));
        EXPECT_GE(n, last);
        last = n;
    }
    writer.join();
    EXPECT_EQ(recipients(limits_.snapshot(noon)), 500U);
    EXPECT_EQ(limits_.changes(), 500U);
}

}  // namespace
}  // namespace subrelay::policy
