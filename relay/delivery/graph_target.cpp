// Microsoft Graph as a delivery target: each message is one MIME sendMail
// (POST {graph_url}/v1.0/users/{mailbox}/sendMail, text/plain, the message
// as base64) on a kept HTTPS connection, with a token of the mailbox's
// profile. What Graph answers is read by graph_rules.
#include <spdlog/spdlog.h>

#include "auth/https_client.hpp"
#include "relay/delivery/graph_rules.hpp"
#include "relay/delivery/message_content.hpp"
#include "relay/delivery/target.hpp"
#include "relay/delivery/upstream.hpp"
#include "smtp/text/base64.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;

namespace {

class graph_target final : public delivery_target {
public:
    graph_target(asio::any_io_executor ex, const conf::config& cfg, const conf::oauth_config& profile,
                 auth::token_source* tokens, std::string mailbox, asio::thread_pool& blocking)
        : cfg_(cfg),
          tokens_(tokens),
          mailbox_(std::move(mailbox)),
          blocking_(blocking),
          http_(std::move(ex), profile.graph_url, profile.ca_file,
                std::chrono::seconds(cfg.upstream.command_timeout_seconds)) {}

    // A token and a connection: failures here are the lane's.
    asio::awaitable<void> open() override {
        if (tokens_ == nullptr) throw upstream_error("Microsoft Graph: no OAuth profile for " + mailbox_, false);
        token_ = (co_await tokens_->get()).value;
        try {
            co_await http_.connect();
        } catch (const std::exception& e) {
            throw upstream_error(std::string("Microsoft Graph: ") + e.what(), true, {}, "connect");
        }
        opened_at_ = std::chrono::steady_clock::now();
    }

    asio::awaitable<smtp::message_result> send(const std::string& id, const spool::stored_message& msg,
                                               const std::vector<std::string>& to) override {
        hint_.clear();
        written_ = false;
        // The whole message: Graph takes it in one request (at most 4 MiB
        // once encoded, which the listeners see to).
        std::string whole;
        whole.reserve(static_cast<std::size_t>(msg.size()));
        message_content content(msg, blocking_);
        for (std::string_view piece; !(piece = co_await content.next()).empty();) whole.append(piece);

        auto prepared = graph_message(std::move(whole), to, msg.envelope.recipients);
        if (const auto* refused = std::get_if<smtp::reply>(&prepared)) co_return every(to, *refused);
        const std::string body = text::base64_encode(std::get<std::string>(prepared));
        if (body.size() > conf::graph_max_request_bytes) {
            co_return every(to, smtp::reply(552, "5.3.4",
                                            "Message too big for Microsoft Graph's MIME send (" +
                                                std::to_string(body.size()) + " bytes encoded, at most " +
                                                std::to_string(conf::graph_max_request_bytes) + ")"));
        }

        bool renewed = false;
        for (;;) {
            const graph_answer answer = co_await post(body);
            const graph_outcome o = classify_graph(answer, mailbox_, renewed);
            hint_ = o.hint;
            switch (o.what) {
            case graph_outcome::kind::sent: co_return every(to, o.reply);
            case graph_outcome::kind::renew_token:
                // The token was refused (expired early, revoked): a new one, once.
                spdlog::info("delivery id={} upstream={}: Microsoft Graph refused the token; asking for a new one",
                             id, mailbox_);
                tokens_->invalidate(token_);
                token_ = (co_await tokens_->get()).value;
                renewed = true;
                continue;
            case graph_outcome::kind::pause_mailbox:
                throw mailbox_refusal(mailbox_refusal::kind::paused, o.reply, o.hint, o.wait);
            case graph_outcome::kind::mailbox_unavailable:
                throw mailbox_refusal(mailbox_refusal::kind::unavailable, o.reply, o.hint);
            case graph_outcome::kind::failed:
            case graph_outcome::kind::retry: co_return every(to, o.reply);
            }
        }
    }

    [[nodiscard]] bool content_sent() const override { return written_; }
    [[nodiscard]] bool broken() const override { return broken_; }
    [[nodiscard]] bool reusable(std::chrono::steady_clock::time_point now) const override {
        return !broken_ && now - opened_at_ < std::chrono::seconds(cfg_.upstream.max_connection_age_seconds);
    }
    asio::awaitable<void> close() override { co_await http_.close(); }
    void cancel() override { http_.cancel(); }
    [[nodiscard]] std::string hint() const override { return hint_; }

private:
    // One request. A broken exchange throws: the connection is gone.
    asio::awaitable<graph_answer> post(const std::string& body) {
        auth::https_session::request req;
        req.method = "POST";
        req.path = graph_send_path(mailbox_);
        req.bearer_token = token_;
        req.content_type = "text/plain";
        req.body = body;
        auth::http_response res;
        try {
            res = co_await http_.send(std::move(req));
        } catch (...) {
            written_ = http_.request_written();
            broken_ = true;
            throw;
        }
        written_ = true;
        graph_answer a;
        a.status = res.status;
        a.retry_after = parse_retry_after(res.retry_after);
        read_graph_error(res.body, a);
        co_return a;
    }

    // Graph sends to all of a message's recipients or to none.
    static smtp::message_result every(const std::vector<std::string>& to, const smtp::reply& r) {
        smtp::message_result out;
        for (const auto& a : to) out.recipients.push_back({a, r});
        out.final_reply = r;
        return out;
    }

    const conf::config& cfg_;
    auth::token_source* tokens_;
    std::string mailbox_;
    asio::thread_pool& blocking_;
    auth::https_session http_;
    std::string token_;
    std::string hint_;
    std::chrono::steady_clock::time_point opened_at_{};
    bool written_ = false;
    bool broken_ = false;
};

}  // namespace

std::unique_ptr<delivery_target> make_graph_target(asio::any_io_executor ex, const conf::config& cfg,
                                                   const conf::oauth_config& profile, auth::token_source* tokens,
                                                   std::string mailbox, asio::thread_pool& blocking) {
    return std::make_unique<graph_target>(std::move(ex), cfg, profile, tokens, std::move(mailbox), blocking);
}

}  // namespace subrelay::relay
