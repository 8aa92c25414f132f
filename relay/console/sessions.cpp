#include "relay/console/sessions.hpp"

#include <algorithm>

#include "relay/console/http.hpp"

namespace subrelay::console {

session session_store::open(const console_user& user, clock::time_point now) {
    session s{random_token(), user.name, user.access, random_token(), user.password_hash};
    std::lock_guard lock(mutex_);
    expire(now);
    if (sessions_.size() >= max_sessions) {
        const auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
            return a.second.last_used < b.second.last_used;
        });
        sessions_.erase(oldest);
    }
    sessions_.emplace(s.token, entry{s, now, now});
    return s;
}

std::optional<session> session_store::find(std::string_view token, clock::time_point now) {
    std::lock_guard lock(mutex_);
    expire(now);
    const auto it = sessions_.find(std::string(token));
    // (The map's lookup is by hash; the token itself is 256 random bits.)
    if (it == sessions_.end() || !same_secret(it->first, token)) return std::nullopt;
    it->second.last_used = now;
    return it->second.s;
}

void session_store::close(std::string_view token) {
    std::lock_guard lock(mutex_);
    sessions_.erase(std::string(token));
}

std::size_t session_store::size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

void session_store::expire(clock::time_point now) {
    std::erase_if(sessions_, [&](const auto& kv) {
        return now - kv.second.last_used >= idle_ || now - kv.second.opened >= longest_;
    });
}

}  // namespace subrelay::console
