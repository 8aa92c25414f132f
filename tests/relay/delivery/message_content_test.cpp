#include "relay/delivery/message_content.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>

#include "tests/relay/temp_dir.hpp"

namespace subrelay::relay {
namespace {

namespace asio = boost::asio;

class message_content_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test_support::make_temp_dir("subrelay-content");
        spool_.emplace(dir_);
        spool_->open();
    }
    void TearDown() override {
        spool_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::string store(const std::string& body) {
        spool_envelope env;
        env.sender = "scanner@contoso.com";
        env.recipients = {"alice@example.org"};
        return spool_->store(env, body);
    }

    // Every piece the delivery would send, and whether done() was true
    // right after each (the terminator goes with the piece that ends it).
    std::vector<std::pair<std::string, bool>> pieces_of(const std::string& id) {
        const spool::stored_message msg = spool_->open_message(id);
        asio::io_context io;
        asio::thread_pool blocking(2);
        std::vector<std::pair<std::string, bool>> out;
        auto read_all = [&]() -> asio::awaitable<void> {
            message_content content(msg, blocking);
            for (;;) {
                const std::string_view piece = co_await content.next();
                out.emplace_back(std::string(piece), content.done());
                if (piece.empty() || out.size() > 1000) break;
            }
        };
        asio::co_spawn(io, read_all(), asio::detached);
        io.run();
        return out;
    }

    std::filesystem::path dir_;
    std::optional<spool> spool_;
};

TEST_F(message_content_test, a_small_message_is_one_piece_and_then_done) {
    const auto pieces = pieces_of(store("Subject: x\r\n\r\nbody\r\n"));
    ASSERT_GE(pieces.size(), 1u);
    EXPECT_EQ(pieces[0].first, "Subject: x\r\n\r\nbody\r\n");
    EXPECT_TRUE(pieces[0].second) << "the one piece and the terminator must be able to go out together";
}

TEST_F(message_content_test, a_large_message_comes_in_bounded_pieces_that_add_up_to_it) {
    std::string body = "Subject: big\r\n\r\n";
    for (int i = 0; body.size() < 2 * 1024 * 1024 + 12345; ++i) body += ".line " + std::to_string(i) + "\r\n";
    const auto pieces = pieces_of(store(body));
    std::string joined;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        EXPECT_LE(pieces[i].first.size(), message_content::piece_bytes + 64 * 1024);
        joined += pieces[i].first;
        // done() turns true with the last non-empty piece, not before.
        EXPECT_EQ(pieces[i].second, joined.size() == body.size()) << "piece " << i;
    }
    EXPECT_EQ(joined, body);
    EXPECT_GT(pieces.size(), 8u);
}

TEST_F(message_content_test, an_empty_message_is_done_at_once) {
    const auto pieces = pieces_of(store(""));
    ASSERT_EQ(pieces.size(), 1u);
    EXPECT_EQ(pieces[0].first, "");
    EXPECT_TRUE(pieces[0].second);
}

}  // namespace
}  // namespace subrelay::relay
