#pragma once
// Keeps the limiter's counters in the spool (spool/limits.state) so that a
// restart, or a crash loop, does not give every account a fresh quota. The
// sessions never wait for the file: a timer writes a snapshot on the
// blocking pool about once a second while something was counted since the
// last one, and once more when the relay stops.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "policy/limits.hpp"

namespace subrelay::relay {

class limits_keeper {
public:
    limits_keeper(policy::limiter& limits, std::filesystem::path file);

    // At start, before any session: the counters the last run left. A file
    // that cannot be read or is damaged is logged as a warning, and the
    // counters start empty.
    void restore();
    // Whether something was counted since the last snapshot saved. Cheap.
    [[nodiscard]] bool changed() const;
    // Writes a snapshot when changed(). Blocks (fsync): run it on the
    // blocking pool, or once the sessions' loop has stopped. Never throws: a
    // failure is logged (once until it changes) and tried again next time.
    void save_if_changed();

    [[nodiscard]] const std::filesystem::path& file() const { return file_; }

private:
    policy::limiter& limits_;
    std::filesystem::path file_;
    std::mutex mutex_;                  // one writer at a time: the timer's and the last one
    std::atomic<std::uint64_t> saved_;  // limiter::changes() read before the snapshot last saved
    std::string failing_;               // the last failure to save, until a save works (mutex_)
};

// The timer: saves at most about once a second while there is something new.
// Ends when the timer is cancelled (or its loop stops).
boost::asio::awaitable<void> keep_limits(limits_keeper& keeper, boost::asio::thread_pool& blocking,
                                         boost::asio::steady_timer& timer);

}  // namespace subrelay::relay
