#include "relay/delivery/target.hpp"

#include <boost/json.hpp>

#include "relay/delivery/blocking.hpp"
#include "relay/delivery/message_content.hpp"
#include "relay/spool/durable_file.hpp"
#include "relay/delivery/upstream.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

class smtp_target final : public delivery_target {
public:
    smtp_target(const conf::config& cfg, upstream_endpoint to, asio::ssl::context& tls, auth::token_source* tokens,
                std::string mailbox, asio::thread_pool& blocking)
        : conn_(cfg, std::move(to), tls, tokens, std::move(mailbox)), blocking_(blocking) {}

    asio::awaitable<void> open() override { co_await conn_.open(); }

    asio::awaitable<smtp::message_result> send(const std::string&, const spool::stored_message& msg,
                                               const std::vector<std::string>& to) override {
        smtp::outgoing_message out;
        out.sender = msg.envelope.sender;
        out.recipients = to;
        out.streamed = true;
        out.size = static_cast<std::size_t>(msg.size());
        out.eight_bit = msg.envelope.eight_bit;
        out.smtputf8 = msg.envelope.smtputf8;
        message_content content(msg, blocking_);
        try {
            co_return co_await conn_.send(out, &content);
        } catch (...) {
            broken_ = true;
            throw;
        }
    }

    [[nodiscard]] bool content_sent() const override { return conn_.content_sent(); }
    [[nodiscard]] bool broken() const override { return broken_; }
    [[nodiscard]] bool reusable(std::chrono::steady_clock::time_point now) const override {
        return conn_.reusable(now);
    }
    asio::awaitable<void> close() override { co_await conn_.quit(); }
    void cancel() override { conn_.cancel(); }

private:
    upstream_connection conn_;
    asio::thread_pool& blocking_;
    bool broken_ = false;
};

class directory_target final : public delivery_target {
public:
    directory_target(const conf::config& cfg, asio::thread_pool& blocking) : cfg_(cfg), blocking_(blocking) {}

    asio::awaitable<void> open() override { co_return; }

    asio::awaitable<smtp::message_result> send(const std::string& id, const spool::stored_message& msg,
                                               const std::vector<std::string>& to) override {
        auto write_out = [this, &id, &msg, &to] {
            const auto& dir = cfg_.upstream.directory;
            fs::create_directories(dir);
            boost::json::object j;
            j["id"] = id;
            j["sender"] = msg.envelope.sender;
            boost::json::array rcpts;
            for (const auto& r : to) rcpts.emplace_back(r);
            j["recipients"] = std::move(rcpts);
            j["identity"] = msg.envelope.identity;
            j["upstream_mailbox"] = msg.envelope.upstream_mailbox;
            j["client_address"] = msg.envelope.client_address;
            j["received_at"] = msg.envelope.received_at;
            // The message first, then the envelope: a reader that sees
            // the .json file finds the whole .eml beside it.
            const fs::path eml = dir / (id + ".eml");
            const fs::path json = dir / (id + ".json");
            const auto copy_message = [this, &msg, &eml](int fd) {
                message_content content(msg, blocking_);
                for (std::string_view piece; !(piece = content.next_blocking()).empty();) write_all(fd, piece, eml);
            };
            // 0640 whatever the relay's umask (077): a reader in the
            // directory's group may take them.
            write_file_atomically(eml, eml.string() + ".tmp", copy_message, 0640, existing_tmp::replace,
                                  file_mode::exact);
            write_file_atomically(json, json.string() + ".tmp", {boost::json::serialize(j) + "\n"}, 0640,
                                  existing_tmp::replace, file_mode::exact);
        };
        try {
            co_await run_blocking(blocking_, write_out);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("451 4.3.0 ") + e.what());
        }
        smtp::message_result r;
        for (const auto& a : to) r.recipients.push_back({a, smtp::reply(250, "2.1.5", "OK")});
        r.final_reply = smtp::reply(250, "2.0.0", "written to " + cfg_.upstream.directory.string());
        co_return r;
    }

    [[nodiscard]] bool content_sent() const override { return true; }
    [[nodiscard]] bool broken() const override { return false; }
    [[nodiscard]] bool reusable(std::chrono::steady_clock::time_point) const override { return true; }
    asio::awaitable<void> close() override { co_return; }
    void cancel() override {}

private:
    const conf::config& cfg_;
    asio::thread_pool& blocking_;
};

}  // namespace

std::unique_ptr<delivery_target> make_smtp_target(const conf::config& cfg, upstream_endpoint to,
                                                  asio::ssl::context& tls, auth::token_source* tokens,
                                                  std::string mailbox, asio::thread_pool& blocking) {
    return std::make_unique<smtp_target>(cfg, std::move(to), tls, tokens, std::move(mailbox), blocking);
}

std::unique_ptr<delivery_target> make_directory_target(const conf::config& cfg, asio::thread_pool& blocking) {
    return std::make_unique<directory_target>(cfg, blocking);
}

}  // namespace subrelay::relay
