// Planning and recording one delivery attempt: pure functions, no sockets.
#include "relay/delivery/attempt.hpp"

#include <gtest/gtest.h>

namespace subrelay::relay {
namespace {

spool_envelope envelope(std::vector<std::string> rcpts) {
    spool_envelope e;
    e.sender = "scanner@contoso.com";
    e.recipients = std::move(rcpts);
    return e;
}

smtp::message_result result_of(std::vector<std::pair<std::string, smtp::reply>> rcpts, smtp::reply final_reply) {
    smtp::message_result r;
    for (auto& [a, reply] : rcpts) r.recipients.push_back({a, reply});
    r.final_reply = std::move(final_reply);
    return r;
}

constexpr std::int64_t t0 = 1'800'000'000;

TEST(attempt, remaining_skips_delivered_and_failed_recipients) {
    queue_state st;
    st.delivered = {"a@x.org"};
    st.failed = {{"b@x.org", "550 5.1.1 no"}};
    EXPECT_EQ(remaining(envelope({"a@x.org", "b@x.org", "c@x.org"}), st), std::vector<std::string>{"c@x.org"});
}

TEST(attempt, a_result_sorts_recipients_into_delivered_failed_and_left) {
    queue_state st;
    const std::vector<std::string> to = {"a@x.org", "b@x.org", "c@x.org"};
    const auto r = result_of({{"a@x.org", smtp::reply(250, "2.1.5", "OK")},
                              {"b@x.org", smtp::reply(550, "5.1.1", "User unknown")},
                              {"c@x.org", smtp::reply(451, "4.3.0", "Try later")}},
                             smtp::reply(250, "2.0.0", "Queued"));
    const recorded rec = record_result(st, to, r, t0, "relay@contoso.com");
    EXPECT_EQ(st.delivered, std::vector<std::string>{"a@x.org"});
    ASSERT_EQ(st.failed.size(), 1u);
    EXPECT_EQ(st.failed[0].address, "b@x.org");
    EXPECT_EQ(st.failed[0].reply, "550 5.1.1 User unknown");
    EXPECT_EQ(remaining(envelope(to), st), std::vector<std::string>{"c@x.org"});
    EXPECT_EQ(st.attempts, 1u);
    EXPECT_EQ(st.first_attempt, t0);
    EXPECT_EQ(rec.reply_line, "250 2.0.0 Queued");
    EXPECT_EQ(st.last_upstream_reply, "250 2.0.0 Queued");
    ASSERT_EQ(st.history.size(), 1u);
    EXPECT_EQ(st.history[0], "2027-01-15T08:00:00Z attempt 1: 250 2.0.0 Queued");
}

TEST(attempt, a_mail_from_refused_for_good_fails_every_recipient) {
    queue_state st;
    const std::vector<std::string> to = {"a@x.org", "b@x.org"};
    const auto r = result_of({}, smtp::reply(550, "5.7.60", "SMTP; Client does not have permissions to send as this sender"));
    record_result(st, to, r, t0, "relay@contoso.com");
    EXPECT_EQ(st.failed.size(), 2u);
    EXPECT_TRUE(remaining(envelope(to), st).empty());
}

TEST(attempt, a_throttling_reply_asks_the_lane_to_slow_down) {
    queue_state st;
    const auto r = result_of({}, smtp::reply(432, "4.3.2", "Concurrent connections limit exceeded."));
    EXPECT_TRUE(record_result(st, {"a@x.org"}, r, t0, "relay@contoso.com").throttled);
    EXPECT_TRUE(st.failed.empty());
}

TEST(attempt, a_broken_transfer_counts_but_keeps_the_last_upstream_reply) {
    queue_state st;
    st.last_upstream_reply = "451 4.3.0 Try later";
    const recorded rec = record_failure(st, "127.0.0.1:25: connection lost: End of file", t0, "relay@contoso.com");
    EXPECT_EQ(st.attempts, 1u);
    EXPECT_EQ(st.last_reply, "127.0.0.1:25: connection lost: End of file");
    EXPECT_EQ(st.last_upstream_reply, "451 4.3.0 Try later") << "a failure of ours is never quoted in a notice";
    EXPECT_EQ(rec.reply_line, st.last_reply);
}

TEST(attempt, expiry_quotes_the_message_reply_else_the_lane_reply) {
    retry_schedule s;
    s.lifetime = std::chrono::hours(24 * 5);
    queue_state own;
    own.last_upstream_reply = "451 4.7.500 Server busy";
    expire(own, {"a@x.org"}, s, "421 4.3.2 Service not available");
    ASSERT_EQ(own.failed.size(), 1u);
    EXPECT_EQ(own.failed[0].reply, "4.4.7 message expired after 5 days in the queue; last reply: 451 4.7.500 Server busy");
    queue_state none;
    expire(none, {"a@x.org"}, s, "421 4.3.2 Service not available");
    EXPECT_EQ(none.failed[0].reply,
              "4.4.7 message expired after 5 days in the queue; last reply: 421 4.3.2 Service not available");
    queue_state bare;
    expire(bare, {"a@x.org"}, s);
    EXPECT_EQ(bare.failed[0].reply, "4.4.7 message expired after 5 days in the queue");
}

TEST(attempt, history_keeps_the_last_twenty_lines) {
    queue_state st;
    for (int i = 0; i < 25; ++i) note_attempt(st, t0 + i, "451 4.3.0 again", "451 4.3.0 again", "");
    EXPECT_EQ(st.attempts, 25u);
    ASSERT_EQ(st.history.size(), 20u);
    EXPECT_NE(st.history.front().find("attempt 6:"), std::string::npos) << st.history.front();
}

}  // namespace
}  // namespace subrelay::relay
