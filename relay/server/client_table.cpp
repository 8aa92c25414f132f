#include "relay/server/client_table.hpp"

namespace subrelay::relay {

namespace {
constexpr auto minute = std::chrono::minutes(1);
}

client_table::verdict client_table::admit(const std::string& client, clock::time_point now) {
    prune(now);
    entry& e = clients_[client];
    if (e.attempts == 0 || now - e.window_start >= minute) {
        e.window_start = now;
        e.attempts = 0;
    }
    ++e.attempts;
    if (now < e.blocked_until) return verdict::blocked;
    if (limits_.max_rate_per_minute != 0 && e.attempts > limits_.max_rate_per_minute) return verdict::too_fast;
    if (limits_.max_connections != 0 && e.open >= limits_.max_connections) return verdict::too_many_connections;
    ++e.open;
    return verdict::accept;
}

void client_table::release(const std::string& client) {
    const auto it = clients_.find(client);
    if (it != clients_.end() && it->second.open > 0) --it->second.open;
}

bool client_table::auth_failed(const std::string& client, clock::time_point now) {
    if (limits_.max_auth_failures == 0) return false;
    entry& e = clients_[client];
    if (e.failures == 0 || now - e.failures_since >= auth_failure_window) {
        e.failures_since = now;
        e.failures = 0;
    }
    if (++e.failures < limits_.max_auth_failures) return false;
    e.failures = 0;
    e.last_block = e.last_block == clock::duration::zero() ? clock::duration(first_block)
                                                          : std::min<clock::duration>(e.last_block * 2, longest_block);
    e.blocked_until = now + e.last_block;
    return true;
}

void client_table::auth_succeeded(const std::string& client) {
    const auto it = clients_.find(client);
    if (it != clients_.end()) it->second.failures = 0;
}

bool client_table::blocked(const std::string& client, clock::time_point now) const {
    const auto it = clients_.find(client);
    return it != clients_.end() && now < it->second.blocked_until;
}

bool client_table::log_refusal(const std::string& client, clock::time_point now) {
    entry& e = clients_[client];
    if (e.ever_logged && now - e.logged < minute) return false;
    e.ever_logged = true;
    e.logged = now;
    return true;
}

std::uint32_t client_table::open(const std::string& client) const {
    const auto it = clients_.find(client);
    return it == clients_.end() ? 0 : it->second.open;
}

// Forgets clients with nothing open whose minute is over, at most once a
// minute: the table holds the clients of the last minute or two.
void client_table::prune(clock::time_point now) {
    if (now - last_prune_ < minute) return;
    last_prune_ = now;
    for (auto it = clients_.begin(); it != clients_.end();) {
        const entry& e = it->second;
        // A client's block history is kept a day after its last block ends,
        // so that one coming back soon after gets a longer one.
        const bool quiet = e.open == 0 && now - e.window_start >= minute &&
                           (!e.ever_logged || now - e.logged >= minute) &&
                           (e.failures == 0 || now - e.failures_since >= auth_failure_window) &&
                           (e.last_block == clock::duration::zero() || now - e.blocked_until >= std::chrono::hours(24));
        it = quiet ? clients_.erase(it) : std::next(it);
    }
}

}  // namespace subrelay::relay
