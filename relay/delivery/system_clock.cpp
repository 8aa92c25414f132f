#include "relay/delivery/system_clock.hpp"

#include <ctime>
#include <random>

namespace subrelay::relay {

namespace {

class system_clock_source final : public smtp::clock {
public:
    [[nodiscard]] smtp::wall_time now() const override {
        const std::time_t now = std::time(nullptr);
        std::tm local{};
        localtime_r(&now, &local);
        return {static_cast<std::int64_t>(now), local.tm_gmtoff};
    }
};

class system_random_source final : public smtp::random_source {
public:
    std::uint64_t next() override {
        thread_local std::mt19937_64 generator = [] {
            std::random_device rd;
            return std::mt19937_64((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
        }();
        return generator();
    }
};

}  // namespace

const smtp::clock& system_wall_clock() {
    static const system_clock_source instance;
    return instance;
}

smtp::random_source& system_random() {
    static system_random_source instance;
    return instance;
}

}  // namespace subrelay::relay
