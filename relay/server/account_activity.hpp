#pragma once
// What the console's Active users page shows of each account besides its
// policy: its last successful sign-in and the messages it had accepted
// today (local time), since the relay started. Sessions record; the
// console reads. Thread-safe.
#include <cstdint>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "relay/console/console.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

class account_activity_log {
public:
    void signed_in(std::string_view identity, std::int64_t now) {
        std::lock_guard lock(mutex_);
        accounts_[text::ascii_lower(identity)].last_sign_in = now;
    }
    void accepted(std::string_view identity, std::int64_t now) {
        const long day = local_day(now);
        std::lock_guard lock(mutex_);
        auto& e = accounts_[text::ascii_lower(identity)];
        if (e.day != day) {
            e.day = day;
            e.today = 0;
        }
        ++e.today;
    }
    [[nodiscard]] console::account_activity of(std::string_view identity, std::int64_t now) const {
        const long day = local_day(now);
        std::lock_guard lock(mutex_);
        const auto it = accounts_.find(text::ascii_lower(identity));
        if (it == accounts_.end()) return {};
        return {it->second.last_sign_in, it->second.day == day ? it->second.today : 0};
    }

private:
    // Days since the epoch in local time.
    static long local_day(std::int64_t t) {
        const std::time_t tt = static_cast<std::time_t>(t);
        std::tm tm{};
        ::localtime_r(&tt, &tm);
        return static_cast<long>((t + tm.tm_gmtoff) / 86400);
    }
    struct entry {
        std::optional<std::int64_t> last_sign_in;
        long day = -1;
        std::uint64_t today = 0;
    };
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> accounts_;
};

}  // namespace subrelay::relay
