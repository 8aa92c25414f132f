#pragma once
// Where passwords are checked (the SASL steps, which run crypt(3)): threads
// of their own, so that a storm of guesses never holds the blocking pool's
// threads that spool writes and fsyncs need, and a bound on the logins
// waiting for them, beyond which a login is answered 454 4.7.0 at once.
#include <chrono>
#include <cstddef>

#include <boost/asio/thread_pool.hpp>

namespace subrelay::relay {

class login_pool {
public:
    login_pool(unsigned threads, std::size_t max_waiting) : pool_(threads == 0 ? 1 : threads), max_(max_waiting) {}

    // A place in the queue, held while one SASL step waits or runs. Used on
    // the sessions' event loop only.
    class ticket {
    public:
        explicit ticket(login_pool& p) : pool_(&p) { ++pool_->waiting_; }
        ticket(const ticket&) = delete;
        ticket& operator=(const ticket&) = delete;
        ~ticket() { --pool_->waiting_; }

    private:
        login_pool* pool_;
    };

    // Whether another step may be queued now (max_waiting 0: no bound).
    [[nodiscard]] bool has_room() const { return max_ == 0 || waiting_ < max_; }
    [[nodiscard]] std::size_t waiting() const { return waiting_; }
    [[nodiscard]] std::size_t max_waiting() const { return max_; }
    // Whether a full queue at `now` should be logged: once a minute.
    bool log_full(std::chrono::steady_clock::time_point now) {
        if (logged_ && now - full_logged_ < std::chrono::minutes(1)) return false;
        logged_ = true;
        full_logged_ = now;
        return true;
    }
    boost::asio::thread_pool& pool() { return pool_; }
    void join() { pool_.join(); }

private:
    boost::asio::thread_pool pool_;
    std::size_t max_;
    std::size_t waiting_ = 0;
    bool logged_ = false;
    std::chrono::steady_clock::time_point full_logged_{};
};

}  // namespace subrelay::relay
