#pragma once
// The content of a message being delivered, piece by piece: its head (read
// with the envelope) first, then reads of up to piece_bytes on the blocking
// pool. The event loop never waits on the disk, and a delivery holds one
// piece of a message, never all of it: relay memory does not depend on
// message size on the way out either.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "relay/spool/spool.hpp"

namespace subrelay::relay {

class message_content {
public:
    static constexpr std::size_t piece_bytes = 256 * 1024;

    message_content(const spool::stored_message& msg, boost::asio::thread_pool& blocking)
        : msg_(msg), blocking_(blocking) {}

    // The next piece; empty at the end. Valid until the next call. Throws
    // spool_error when the file cannot be read.
    boost::asio::awaitable<std::string_view> next();

    // The same from a thread that may block (a target already on the pool).
    std::string_view next_blocking();

    // Message bytes handed out so far.
    [[nodiscard]] std::uint64_t offset() const { return offset_; }
    // Every byte was handed out: the next piece would be empty.
    [[nodiscard]] bool done() const { return offset_ >= msg_.size(); }

private:
    const spool::stored_message& msg_;
    boost::asio::thread_pool& blocking_;
    std::uint64_t offset_ = 0;
    std::vector<char> buffer_;
    std::string_view read_piece();
};

}  // namespace subrelay::relay
