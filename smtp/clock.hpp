#pragma once
// What the notice and trace-header builders would otherwise read from the
// system: the wall clock and random numbers. smtp/ only declares them; the
// relay passes the real ones and tests pass fixed ones, so that the same
// inputs build the same bytes.
#include <cstdint>

namespace subrelay::smtp {

// A moment: seconds since the epoch, and the offset east of UTC of the
// local time zone at that moment (Date: and Received: show local time).
struct wall_time {
    std::int64_t unix_seconds = 0;
    long utc_offset_seconds = 0;
};

class clock {
public:
    virtual ~clock() = default;
    [[nodiscard]] virtual wall_time now() const = 0;
};

class random_source {
public:
    virtual ~random_source() = default;
    // 64 random bits.
    virtual std::uint64_t next() = 0;
};

}  // namespace subrelay::smtp
