#pragma once
// Signed-in console users: a random token in a cookie names a session; the
// session holds the user, the role it had at sign-in and the CSRF token its
// forms carry. A session ends when signed out, after `idle` without a
// request, after `longest` in any case, or when its user is removed or
// changed (the pages check the users file on every request). Time is
// passed in. Thread-safe.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "relay/console/users.hpp"

namespace subrelay::console {

struct session {
    std::string token;     // the cookie's value
    std::string user;
    role access = role::reader;
    std::string csrf;      // what each form of this session must carry
    std::string password_hash;  // the user's at sign-in: a reset password ends the session
};

class session_store {
public:
    using clock = std::chrono::steady_clock;
    static constexpr auto default_idle = std::chrono::minutes(30);
    static constexpr auto default_longest = std::chrono::hours(12);
    static constexpr std::size_t max_sessions = 1000;  // the oldest goes first

    explicit session_store(clock::duration idle = default_idle, clock::duration longest = default_longest)
        : idle_(idle), longest_(longest) {}

    // A new session for `user`. Throws std::runtime_error (no randomness).
    session open(const console_user& user, clock::time_point now);
    // The session `token` names, if it has not expired; its idle time starts again.
    std::optional<session> find(std::string_view token, clock::time_point now);
    void close(std::string_view token);
    [[nodiscard]] std::size_t size() const;

private:
    struct entry {
        session s;
        clock::time_point opened;
        clock::time_point last_used;
    };
    void expire(clock::time_point now);  // mutex_ held

    clock::duration idle_;
    clock::duration longest_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> sessions_;
};

}  // namespace subrelay::console
