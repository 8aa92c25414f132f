#include "relay/server/account_lockout.hpp"

#include <algorithm>

namespace subrelay::relay {

bool account_lockout::is_familiar(const entry& e, const std::string& client) const {
    return std::find(e.familiar.begin(), e.familiar.end(), client) != e.familiar.end();
}

bool account_lockout::refuses(const std::string& account, const std::string& client, clock::time_point now) const {
    if (settings_.threshold == 0) return false;
    std::lock_guard lock(mutex_);
    const auto it = accounts_.find(account);
    if (it == accounts_.end() || now >= it->second.locked_until) return false;
    return !is_familiar(it->second, client);
}

account_lockout::clock::duration account_lockout::failed(const std::string& account, const std::string& client,
                                                          clock::time_point now) {
    if (settings_.threshold == 0) return clock::duration::zero();
    std::lock_guard lock(mutex_);
    entry& e = accounts_[account];
    // Failures where the account is at home are the per-client limit's
    // business: a device with a stale password does not lock out the rest.
    if (is_familiar(e, client)) return clock::duration::zero();
    if (e.failures == 0 || now - e.failures_since >= failure_window) {
        e.failures_since = now;
        e.failures = 0;
    }
    if (++e.failures < settings_.threshold) return clock::duration::zero();
    e.failures = 0;
    const bool again = e.last_lock != clock::duration::zero() && now - e.locked_until < lock_memory;
    e.last_lock = again ? std::min<clock::duration>(e.last_lock * 2, longest_lock)
                        : std::min<clock::duration>(settings_.first_lock, longest_lock);
    e.locked_until = now + e.last_lock;
    return e.last_lock;
}

void account_lockout::succeeded(const std::string& account, const std::string& client) {
    std::lock_guard lock(mutex_);
    entry& e = accounts_[account];
    e.failures = 0;
    const auto it = std::find(e.familiar.begin(), e.familiar.end(), client);
    if (it != e.familiar.end()) e.familiar.erase(it);
    e.familiar.push_back(client);
    if (e.familiar.size() > max_familiar) e.familiar.pop_front();
}

bool account_lockout::familiar(const std::string& account, const std::string& client) const {
    std::lock_guard lock(mutex_);
    const auto it = accounts_.find(account);
    return it != accounts_.end() && is_familiar(it->second, client);
}

}  // namespace subrelay::relay
