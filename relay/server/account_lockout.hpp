#pragma once
// Per account, what keeps its password from being guessed from many
// addresses at once (as Entra ID's Smart Lockout): failed logins from
// addresses the account has never logged in from lock it for a while, and
// while it is locked only its familiar addresses (where it has logged in
// before) may still log in. A locked attempt is answered like a wrong
// password and costs no hashing. Pure bookkeeping with the time passed in;
// thread-safe (the password lookup runs on the verification pool).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace subrelay::relay {

class account_lockout {
public:
    using clock = std::chrono::steady_clock;

    struct settings {
        std::uint32_t threshold = 10;              // failures from unfamiliar addresses; 0: no lockout
        std::chrono::seconds first_lock{60};       // then doubled at each lock, up to longest_lock
    };
    // Failures count within this window from the first; a lock forgets them.
    static constexpr auto failure_window = std::chrono::hours(1);
    static constexpr auto longest_lock = std::chrono::hours(1);
    // After a day without a lock, the next lock is the first again.
    static constexpr auto lock_memory = std::chrono::hours(24);
    // Addresses remembered per account as familiar (the most recent).
    static constexpr std::size_t max_familiar = 16;

    explicit account_lockout(settings s) : settings_(s) {}

    // Whether a login as `account` from `client` at `now` is refused
    // without checking its password: the account is locked and the client
    // is not one of its familiar addresses.
    [[nodiscard]] bool refuses(const std::string& account, const std::string& client, clock::time_point now) const;

    // A wrong password for `account` from `client` (checked, not refused
    // by a lock). Counted when the client is unfamiliar; returns the
    // length of the lock it starts, or zero.
    clock::duration failed(const std::string& account, const std::string& client, clock::time_point now);

    // A successful login: the client becomes familiar, the failures are
    // forgotten (not the lock history).
    void succeeded(const std::string& account, const std::string& client);

    [[nodiscard]] bool familiar(const std::string& account, const std::string& client) const;

private:
    struct entry {
        std::deque<std::string> familiar;   // most recent last
        clock::time_point failures_since{};
        std::uint32_t failures = 0;
        clock::time_point locked_until{};
        clock::duration last_lock{};        // zero: never locked
    };
    [[nodiscard]] bool is_familiar(const entry& e, const std::string& client) const;  // mutex_ held

    settings settings_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> accounts_;  // by canonical identity
};

}  // namespace subrelay::relay
