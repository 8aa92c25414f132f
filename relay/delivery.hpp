#pragma once
// Delivery from the spool to the upstream: per upstream mailbox at most
// max_connections_per_mailbox connections, each reused for the next
// message; transient failures retried with exponential backoff; permanent
// ones removed with a log line saying why.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/spool.hpp"

namespace subrelay::relay {

class delivery {
public:
    // tokens may be null for upstream.kind = "directory".
    delivery(boost::asio::io_context& io, boost::asio::thread_pool& blocking, const conf::config& cfg,
             relay::spool& spool, auth::token_source* tokens);
    ~delivery();

    // Queues every message already in the spool.
    void start();
    // Queues a newly stored message.
    void enqueue(const std::string& id, const std::string& upstream_mailbox);
    // Stops taking new work; resolves when every connection has finished
    // its current message and said QUIT.
    boost::asio::awaitable<void> stop();

    struct lane;  // one per upstream mailbox (defined in delivery.cpp)

private:
    boost::asio::awaitable<void> smtp_worker(lane& l);
    boost::asio::awaitable<void> directory_worker(lane& l);
    boost::asio::awaitable<void> retry_later(std::string id, std::string mailbox, std::chrono::seconds wait);
    lane& lane_for(const std::string& mailbox);
    void kick(lane& l);
    void defer(const std::string& id, const std::string& mailbox);
    [[nodiscard]] std::chrono::seconds backoff(unsigned attempts) const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    const conf::config& cfg_;
    relay::spool& spool_;
    auth::token_source* tokens_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    std::map<std::string, std::unique_ptr<lane>> lanes_;
    std::set<std::string> known_;                     // queued, in flight or waiting to retry
    std::map<std::string, unsigned> attempts_;
    std::set<boost::asio::steady_timer*> timers_;     // retry and idle timers, cancelled on stop
    bool stopping_ = false;
    unsigned workers_ = 0;
};

}  // namespace subrelay::relay
