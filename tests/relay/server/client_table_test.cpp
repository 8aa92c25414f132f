#include "relay/server/client_table.hpp"

#include <gtest/gtest.h>

namespace subrelay::relay {
namespace {

using namespace std::chrono_literals;
using verdict = client_table::verdict;

const client_table::clock::time_point t0 = client_table::clock::time_point{} + 1000h;

TEST(client_table, one_client_cannot_hold_more_than_its_share) {
    client_table t({3, 0});
    for (int i = 0; i < 3; ++i) EXPECT_EQ(t.admit("192.0.2.1", t0), verdict::accept);
    EXPECT_EQ(t.admit("192.0.2.1", t0), verdict::too_many_connections);
    EXPECT_EQ(t.admit("192.0.2.2", t0), verdict::accept) << "another client is not affected";
    t.release("192.0.2.1");
    EXPECT_EQ(t.open("192.0.2.1"), 2u);
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 1s), verdict::accept);
}

TEST(client_table, the_rate_counts_attempts_in_a_minute) {
    client_table t({0, 5});
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(t.admit("192.0.2.1", t0 + std::chrono::seconds(i)), verdict::accept);
        t.release("192.0.2.1");
    }
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 10s), verdict::too_fast);
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 59s), verdict::too_fast) << "refused attempts count too";
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 61s), verdict::accept) << "a new minute";
}

TEST(client_table, zero_means_no_limit) {
    client_table t({0, 0});
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(t.admit("192.0.2.1", t0), verdict::accept);
    EXPECT_EQ(t.open("192.0.2.1"), 1000u);
}

TEST(client_table, refusals_are_logged_once_a_minute_per_client) {
    client_table t({1, 0});
    EXPECT_TRUE(t.log_refusal("192.0.2.1", t0));
    EXPECT_FALSE(t.log_refusal("192.0.2.1", t0 + 30s));
    EXPECT_TRUE(t.log_refusal("192.0.2.2", t0 + 30s));
    EXPECT_TRUE(t.log_refusal("192.0.2.1", t0 + 60s));
}

TEST(client_table, quiet_clients_are_forgotten) {
    client_table t({2, 10});
    for (int i = 0; i < 100; ++i) {
        const std::string client = "192.0.2." + std::to_string(i);
        t.admit(client, t0);
        t.release(client);
    }
    t.admit("198.51.100.1", t0);  // stays open
    EXPECT_EQ(t.size(), 101u);
    t.admit("198.51.100.2", t0 + 2min);
    EXPECT_EQ(t.size(), 2u) << "only the open one and the newcomer are kept";
}


TEST(client_table, failed_logins_block_an_address_for_longer_each_time) {
    client_table t({0, 0, 3});
    EXPECT_FALSE(t.auth_failed("192.0.2.1", t0));
    EXPECT_FALSE(t.auth_failed("192.0.2.1", t0 + 1s));
    EXPECT_TRUE(t.auth_failed("192.0.2.1", t0 + 2s)) << "the third blocks";
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 3s), verdict::blocked);
    EXPECT_EQ(t.admit("192.0.2.2", t0 + 3s), verdict::accept) << "only that address";
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 2s + 1min), verdict::accept) << "a first block lasts a minute";
    for (int i = 0; i < 3; ++i) t.auth_failed("192.0.2.1", t0 + 2min);
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 2min + 119s), verdict::blocked) << "the second lasts two";
    EXPECT_EQ(t.admit("192.0.2.1", t0 + 4min + 1s), verdict::accept);
}

TEST(client_table, failures_count_within_ten_minutes_and_a_success_forgets_them) {
    client_table t({0, 0, 3});
    t.auth_failed("192.0.2.1", t0);
    t.auth_failed("192.0.2.1", t0 + 1s);
    EXPECT_FALSE(t.auth_failed("192.0.2.1", t0 + 11min)) << "the window started again";
    t.auth_failed("192.0.2.1", t0 + 11min);
    t.auth_succeeded("192.0.2.1");
    EXPECT_FALSE(t.auth_failed("192.0.2.1", t0 + 12min));
    client_table unlimited({0, 0, 0});
    for (int i = 0; i < 100; ++i) EXPECT_FALSE(unlimited.auth_failed("192.0.2.1", t0));
}

}  // namespace
}  // namespace subrelay::relay
