#include "relay/delivery/due_queue.hpp"

#include <gtest/gtest.h>

namespace subrelay::relay {
namespace {

TEST(due_queue, keys_come_out_earliest_first_once_due) {
    due_queue q;
    q.set("b", 20);
    q.set("a", 10);
    q.set("c", 30);
    EXPECT_EQ(q.earliest(), 10);
    EXPECT_TRUE(q.take_due(9).empty());
    EXPECT_EQ(q.take_due(20), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.earliest(), 30);
}

TEST(due_queue, setting_a_key_again_replaces_its_entry) {
    // A message rescheduled later must not fire at its old time.
    due_queue q;
    q.set("m", 5);
    q.set("m", 11);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.due_of("m"), 11);
    EXPECT_TRUE(q.take_due(10).empty());
    EXPECT_EQ(q.take_due(11), std::vector<std::string>{"m"});
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.earliest(), std::nullopt);
}

TEST(due_queue, moving_a_key_earlier_moves_the_earliest_time) {
    due_queue q;
    q.set("x", 100);
    q.set("y", 50);
    q.set("x", 10);
    EXPECT_EQ(q.earliest(), 10);
    EXPECT_EQ(q.take_due(60), (std::vector<std::string>{"x", "y"}));
}

TEST(due_queue, erase_forgets_a_key) {
    due_queue q;
    q.set("a", 1);
    EXPECT_TRUE(q.erase("a"));
    EXPECT_FALSE(q.erase("a"));
    EXPECT_TRUE(q.take_due(100).empty());
    EXPECT_EQ(q.due_of("a"), std::nullopt);
}

TEST(due_queue, equal_times_keep_every_key) {
    due_queue q;
    q.set("a", 7);
    q.set("b", 7);
    q.set("c", 7);
    EXPECT_EQ(q.take_due(7).size(), 3u);
}

}  // namespace
}  // namespace subrelay::relay
