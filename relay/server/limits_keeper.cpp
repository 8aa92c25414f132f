#include "relay/server/limits_keeper.hpp"

#include <chrono>
#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "policy/limits_state.hpp"
#include "relay/delivery/blocking.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;

namespace {

constexpr auto save_interval = std::chrono::seconds(1);

}  // namespace

limits_keeper::limits_keeper(policy::limiter& limits, std::filesystem::path file)
    : limits_(limits), file_(std::move(file)), saved_(limits.changes()) {}

void limits_keeper::restore() {
    try {
        const auto loaded = policy::load_limits_state(file_);
        if (!loaded) return;
        limits_.restore(*loaded, std::chrono::system_clock::now());
        spdlog::info("limits: counters of {} account(s) restored from {}", loaded->accounts.size(), file_.string());
    } catch (const std::exception& e) {
        spdlog::warn("limits: {}; the message and recipient counters start empty", e.what());
    }
}

bool limits_keeper::changed() const { return limits_.changes() != saved_.load(std::memory_order_acquire); }

void limits_keeper::save_if_changed() {
    std::lock_guard lock(mutex_);
    // Read before the snapshot: what is counted meanwhile is in the snapshot
    // or makes the next call save again, never neither.
    const std::uint64_t changes = limits_.changes();
    if (changes == saved_.load(std::memory_order_acquire)) return;
    try {
        policy::save_limits_state(file_, limits_.snapshot(std::chrono::system_clock::now()));
        saved_.store(changes, std::memory_order_release);
        if (!failing_.empty()) {
            spdlog::info("limits: {} saved again", file_.string());
            failing_.clear();
        }
    } catch (const std::exception& e) {
        if (failing_ != e.what()) {
            spdlog::warn("limits: cannot save the message and recipient counters: {} (tried again while they change)",
                         e.what());
            failing_ = e.what();
        }
    }
}

asio::awaitable<void> keep_limits(limits_keeper& keeper, asio::thread_pool& blocking, asio::steady_timer& timer) {
    // A named function object: see run_blocking.
    const auto save = [&keeper] { keeper.save_if_changed(); };
    for (;;) {
        timer.expires_after(save_interval);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        if (keeper.changed()) co_await run_blocking(blocking, save);
    }
}

}  // namespace subrelay::relay
