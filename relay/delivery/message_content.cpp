#include "relay/delivery/message_content.hpp"

#include "relay/delivery/blocking.hpp"

namespace subrelay::relay {

std::string_view message_content::read_piece() {
    if (buffer_.empty()) buffer_.resize(piece_bytes);
    const std::size_t n = msg_.read_at(offset_, buffer_);
    offset_ += n;
    return {buffer_.data(), n};
}

std::string_view message_content::next_blocking() {
    if (offset_ == 0 && !msg_.head().empty()) {
        offset_ = msg_.head().size();
        return msg_.head();
    }
    return read_piece();
}

boost::asio::awaitable<std::string_view> message_content::next() {
    if (offset_ == 0 && !msg_.head().empty()) {
        offset_ = msg_.head().size();
        co_return std::string_view(msg_.head());
    }
    if (offset_ >= msg_.size()) co_return std::string_view();
    auto read = [this] { return read_piece(); };
    co_return co_await run_blocking(blocking_, read);
}

}  // namespace subrelay::relay
