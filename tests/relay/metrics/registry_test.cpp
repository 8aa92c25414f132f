#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "relay/metrics/registry.hpp"

namespace subrelay::metrics {
namespace {

using ::testing::HasSubstr;

TEST(registry, counter_without_labels_is_exposed_at_zero_with_help_and_type) {
    registry r;
    r.counter("subrelay_things_total", "Things seen.");
    EXPECT_EQ(r.expose(),
              "# HELP subrelay_things_total Things seen.\n"
              "# TYPE subrelay_things_total counter\n"
              "subrelay_things_total 0\n");
}

TEST(registry, counters_count_per_label_set_in_label_order) {
    registry r;
    auto& c = r.counter("subrelay_replies_total", "Replies.", {"code", "stage"});
    c.inc({"550", "rcpt"});
    c.inc({"550", "rcpt"});
    c.inc({"250", "data"}, 3);
    EXPECT_EQ(c.value({"550", "rcpt"}), 2);
    EXPECT_EQ(c.value({"250", "data"}), 3);
    EXPECT_EQ(c.value({"451", "data"}), 0);
    EXPECT_EQ(r.expose(),
              "# HELP subrelay_replies_total Replies.\n"
              "# TYPE subrelay_replies_total counter\n"
              "subrelay_replies_total{code=\"250\",stage=\"data\"} 3\n"
              "subrelay_replies_total{code=\"550\",stage=\"rcpt\"} 2\n");
}

TEST(registry, a_labelled_family_without_series_has_only_help_and_type) {
    registry r;
    r.gauge("subrelay_queue_messages", "Queued.", {"upstream_mailbox"});
    EXPECT_EQ(r.expose(), "# HELP subrelay_queue_messages Queued.\n# TYPE subrelay_queue_messages gauge\n");
}

TEST(registry, counters_do_not_go_down_and_label_counts_must_match) {
    registry r;
    auto& c = r.counter("subrelay_x_total", "X.", {"a"});
    EXPECT_THROW(c.inc({"v"}, -1), std::invalid_argument);
    EXPECT_THROW(c.inc({}), std::invalid_argument);
    EXPECT_THROW(c.inc({"v", "w"}), std::invalid_argument);
}

TEST(registry, names_are_checked_and_unique) {
    registry r;
    EXPECT_THROW(r.counter("9bad", "x"), std::invalid_argument);
    EXPECT_THROW(r.counter("bad-name", "x"), std::invalid_argument);
    EXPECT_THROW(r.counter("ok_total", "x", {"__reserved"}), std::invalid_argument);
    EXPECT_THROW(r.counter("ok_total", "x", {"a:b"}), std::invalid_argument);
    r.counter("ok_total", "x");
    EXPECT_THROW(r.gauge("ok_total", "again"), std::invalid_argument);
    EXPECT_THROW(r.histogram("h_seconds", "x", {"le"}, {1}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h2_seconds", "x", {}, {2, 1}), std::invalid_argument);
    EXPECT_THAT(r.names(), ::testing::ElementsAre("ok_total"));
    EXPECT_TRUE(valid_metric_name("a:b_c1"));
    EXPECT_TRUE(valid_label_name("_a1"));
    EXPECT_FALSE(valid_label_name(""));
}

TEST(registry, label_values_and_help_are_escaped) {
    registry r;
    auto& c = r.counter("subrelay_e_total", "Back\\slash and\nnewline.", {"v"});
    c.inc({"a\"b\\c\nd"});
    EXPECT_THAT(r.expose(), HasSubstr("# HELP subrelay_e_total Back\\\\slash and\\nnewline.\n"));
    EXPECT_THAT(r.expose(), HasSubstr("subrelay_e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
    EXPECT_EQ(escape_label_value("plain é"), "plain é");
}

TEST(registry, values_are_formatted_as_prometheus_reads_them) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(0.5), "0.5");
    EXPECT_EQ(format_value(1e20), "1e+20");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(registry, gauges_set_add_and_replace_their_series) {
    registry r;
    auto& g = r.gauge("subrelay_g", "G.", {"m"});
    g.set({"a"}, 5);
    g.add({"a"}, -2);
    g.set({"b"}, 1);
    EXPECT_EQ(g.value({"a"}), 3);
    g.replace({{{"c"}, 7}});
    EXPECT_EQ(g.value({"a"}), 0);
    EXPECT_EQ(r.expose(), "# HELP subrelay_g G.\n# TYPE subrelay_g gauge\nsubrelay_g{m=\"c\"} 7\n");
}

TEST(registry, histogram_buckets_are_cumulative_with_sum_and_count) {
    registry r;
    auto& h = r.histogram("subrelay_latency_seconds", "Latency.", {}, {1, 5});
    h.observe(0.5);
    h.observe(1);  // on a bound: counted in it (le)
    h.observe(3);
    h.observe(10);
    const auto s = h.value();
    EXPECT_THAT(s.buckets, ::testing::ElementsAre(2U, 3U, 4U));
    EXPECT_EQ(s.count, 4U);
    EXPECT_DOUBLE_EQ(s.sum, 14.5);
    EXPECT_EQ(r.expose(),
              "# HELP subrelay_latency_seconds Latency.\n"
              "# TYPE subrelay_latency_seconds histogram\n"
              "subrelay_latency_seconds_bucket{le=\"1\"} 2\n"
              "subrelay_latency_seconds_bucket{le=\"5\"} 3\n"
              "subrelay_latency_seconds_bucket{le=\"+Inf\"} 4\n"
              "subrelay_latency_seconds_sum 14.5\n"
              "subrelay_latency_seconds_count 4\n");
}

TEST(registry, an_empty_histogram_without_labels_is_exposed_at_zero) {
    registry r;
    r.histogram("subrelay_h_seconds", "H.", {}, {1});
    EXPECT_THAT(r.expose(), HasSubstr("subrelay_h_seconds_bucket{le=\"+Inf\"} 0\nsubrelay_h_seconds_sum 0\n"
                                      "subrelay_h_seconds_count 0\n"));
}

TEST(registry, labelled_histograms_put_le_last) {
    registry r;
    auto& h = r.histogram("subrelay_h_seconds", "H.", {"m"}, {1});
    h.observe({"x"}, 2);
    EXPECT_THAT(r.expose(), HasSubstr("subrelay_h_seconds_bucket{m=\"x\",le=\"1\"} 0\n"));
    EXPECT_THAT(r.expose(), HasSubstr("subrelay_h_seconds_count{m=\"x\"} 1\n"));
}

// Sessions and the delivery count from their own threads while a scrape reads.
TEST(registry, counts_from_several_threads_while_exposing) {
    registry r;
    auto& c = r.counter("subrelay_c_total", "C.", {"t"});
    auto& h = r.histogram("subrelay_h_seconds", "H.", {}, {1, 2});
    auto& g = r.gauge("subrelay_g", "G.");
    constexpr int per_thread = 2000;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                c.inc({t % 2 == 0 ? "even" : "odd"});
                h.observe(i % 3);
                g.add({}, 1);
            }
        });
    }
    threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) (void)r.expose();
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(c.value({"even"}), 2 * per_thread);
    EXPECT_EQ(c.value({"odd"}), 2 * per_thread);
    EXPECT_EQ(h.value().count, 4U * per_thread);
    EXPECT_EQ(g.value(), 4 * per_thread);
}

}  // namespace
}  // namespace subrelay::metrics
