#pragma once
// What tests ask of a policy::limiter, through the reservations that
// sessions use: count an accepted message, or see what MAIL or the next
// RCPT would be answered now (nothing counted).
#include <cstddef>
#include <optional>
#include <string_view>

#include <gtest/gtest.h>

#include "policy/limits.hpp"

namespace subrelay::policy::test_calls {

inline const effective_limits unlimited{0, 0, 0};

inline void record(limiter& l, std::string_view identity, std::size_t recipients) {
    smtp::reply refusal;
    auto r = l.reserve_message(identity, unlimited, refusal);
    ASSERT_TRUE(r);
    for (std::size_t i = 0; i < recipients; ++i) ASSERT_EQ(l.reserve_recipient(*r, unlimited), std::nullopt);
    r->commit();
}

inline std::optional<smtp::reply> check_message(limiter& l, std::string_view identity, const effective_limits& lim) {
    smtp::reply refusal;
    if (auto r = l.reserve_message(identity, lim, refusal)) return std::nullopt;  // given back as it goes
    return refusal;
}

// The reply to one more recipient of a message that has `in_message`.
inline std::optional<smtp::reply> check_recipient(limiter& l, std::string_view identity, const effective_limits& lim,
                                                  std::size_t in_message) {
    smtp::reply refusal;
    auto r = l.reserve_message(identity, unlimited, refusal);
    EXPECT_TRUE(r);
    if (!r) return refusal;
    for (std::size_t i = 0; i < in_message; ++i) EXPECT_EQ(l.reserve_recipient(*r, unlimited), std::nullopt);
    return l.reserve_recipient(*r, lim);
}

}  // namespace subrelay::policy::test_calls
