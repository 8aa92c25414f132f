#pragma once
// The real wall clock and random numbers, for the builders in smtp/ that
// take them as arguments (delivery notices, Received: headers).
#include "smtp/clock.hpp"

namespace subrelay::relay {

// The system clock, with the offset of the local time zone. Thread-safe.
const smtp::clock& system_wall_clock();

// Random bits from a generator per thread, seeded by std::random_device.
// Thread-safe.
smtp::random_source& system_random();

}  // namespace subrelay::relay
