#pragma once
// What the listeners, sessions and delivery of one running relay share.
#include <atomic>
#include <memory>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "conf/config.hpp"
#include "policy/limits.hpp"
#include "policy/policy.hpp"

namespace subrelay::relay {

class spool;
class delivery;
class session_registry;
class client_table;
class account_lockout;
class login_pool;
class account_activity_log;
class server_tls;
}  // namespace subrelay::relay
namespace subrelay::cluster {
class shared_limits;
}  // namespace subrelay::cluster
namespace subrelay::relay {

struct relay_context {
    const conf::config& cfg;
    boost::asio::io_context& io;          // run by one thread: listeners and sessions
    boost::asio::thread_pool& blocking;   // crypt(3), fsync: work that must not stall io
    // Runs on its own io_context and thread; sessions only call enqueue(), which posts there.
    relay::server_tls& tls;               // the listeners' TLS contexts, per device profile
    relay::spool& spool;
    relay::delivery& delivery;
    session_registry& sessions;
    policy::limiter& limits;              // per-account counters; outlive policy reloads

    // The policy in force; replaced as a whole on reload (SIGHUP).
    [[nodiscard]] std::shared_ptr<const policy::engine> policy() const {
        std::lock_guard lock(policy_mutex_);
        return policy_;
    }
    void set_policy(std::shared_ptr<const policy::engine> p) {
        std::lock_guard lock(policy_mutex_);
        policy_ = std::move(p);
    }

    std::shared_ptr<const policy::engine> policy_;
    mutable std::mutex policy_mutex_;
    // Per client address: connections and failed logins (the listeners' and
    // the sessions' event loop only). Null in tests that need none.
    client_table* clients = nullptr;
    // Per account: Smart Lockout's failures, locks and familiar addresses.
    // Null: no lockout.
    account_lockout* lockout = nullptr;
    // Where SASL steps (crypt(3)) run, with a bound on those waiting.
    // Null: on `blocking`, unbounded.
    login_pool* logins = nullptr;
    // Each account's last sign-in and messages today (the console shows
    // them). Null: not kept.
    account_activity_log* activity = nullptr;
    // The limits shared with the other nodes ([cluster]). Null: one node.
    cluster::shared_limits* shared = nullptr;
};

}  // namespace subrelay::relay
