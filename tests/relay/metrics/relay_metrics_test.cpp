#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "relay/metrics/relay_metrics.hpp"

namespace subrelay::metrics {
namespace {

using ::testing::HasSubstr;

TEST(relay_metrics, reply_classes) {
    EXPECT_EQ(reply_class("250 2.0.0 Ok"), "2xx");
    EXPECT_EQ(reply_class("451 4.3.0 later"), "4xx");
    EXPECT_EQ(reply_class("550 5.7.60 no"), "5xx");
    EXPECT_EQ(reply_class(""), "none");
    EXPECT_EQ(reply_class("connection refused"), "none");
}

TEST(relay_metrics, every_family_has_the_prefix_and_help) {
    registry r;
    relay_metrics m(r);
    for (const auto& name : r.names()) EXPECT_EQ(name.rfind("subrelay_", 0), 0U) << name;
    EXPECT_THAT(r.expose(), HasSubstr("# TYPE subrelay_delivery_latency_seconds histogram\n"));
}

TEST(relay_metrics, deliveries_count_attempts_and_the_latency_of_messages_sent) {
    registry r;
    relay_metrics m(r);
    m.delivery_attempt("deferred", "451 4.4.1 later", 5);
    m.delivery_attempt("sent", "250 2.0.0 OK", 20);
    m.connection_failed("");
    EXPECT_EQ(m.delivery_attempts.value({"deferred", "4xx"}), 1);
    EXPECT_EQ(m.delivery_attempts.value({"sent", "2xx"}), 1);
    EXPECT_EQ(m.delivery_attempts.value({"connection_failed", "none"}), 1);
    EXPECT_EQ(m.delivery_latency.value().count, 1U);
    EXPECT_DOUBLE_EQ(m.delivery_latency.value().sum, 20);
}

TEST(relay_metrics, accepted_and_refused_messages) {
    registry r;
    relay_metrics m(r);
    m.note_accepted(1000);
    m.refused("rcpt", 550);
    EXPECT_EQ(m.messages.value({"accepted", "data", "250"}), 1);
    EXPECT_EQ(m.messages.value({"refused", "rcpt", "550"}), 1);
    EXPECT_EQ(m.accepted_bytes.value(), 1000);
}

}  // namespace
}  // namespace subrelay::metrics
