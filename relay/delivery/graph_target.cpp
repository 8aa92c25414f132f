// Microsoft Graph as a delivery target, on a kept HTTPS connection with a
// token of the mailbox's profile; the message goes as MIME (text/plain, the
// message as base64). With save_to_sent_items, one sendMail
// (POST {graph_url}/v1.0/users/{mailbox}/sendMail), which keeps a copy in
// Sent Items; without, a draft is made from the MIME (POST .../messages),
// marked to be deleted once sent (PATCH, PidTagDeleteAfterSubmit), and sent
// (POST .../messages/{id}/send). What Graph answers is read by graph_rules.
#include <optional>

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
          save_to_sent_items_(profile.save_to_sent_items),
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

        if (save_to_sent_items_) co_return co_await send_mime(id, body, to);
        co_return co_await send_draft(id, body, to);
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
    using request = auth::https_session::request;

    // save_to_sent_items: one MIME sendMail, which keeps a copy in Sent Items.
    asio::awaitable<smtp::message_result> send_mime(const std::string& id, const std::string& body,
                                                    const std::vector<std::string>& to) {
        const step_result r = co_await step(id, graph_mime_post(graph_send_path(mailbox_), body), 202, false);
        co_return every(to, r.done ? smtp::reply(250, "2.0.0", "Accepted by Microsoft Graph") : r.failure);
    }

    // Otherwise: a draft made from the MIME, marked to be deleted once sent
    // (PidTagDeleteAfterSubmit), then sent; a draft that cannot be sent is
    // deleted again.
    asio::awaitable<smtp::message_result> send_draft(const std::string& id, const std::string& body,
                                                     const std::vector<std::string>& to) {
        const step_result made = co_await step(id, graph_mime_post(graph_messages_path(mailbox_), body), 201, true);
        if (!made.done) co_return every(to, made.failure);
        const std::string draft = read_created_id(made.body);
        if (draft.empty()) co_return every(to, smtp::reply(451, "4.3.0", "Microsoft Graph made a draft without an id"));

        request mark;
        mark.method = "PATCH";
        mark.path = graph_message_path(mailbox_, draft);
        mark.content_type = "application/json";
        mark.body = delete_after_submit_patch();
        std::optional<step_result> failed;
        std::optional<mailbox_refusal> refused;
        try {
            const step_result marked = co_await step(id, std::move(mark), 200, false);
            if (!marked.done) failed = marked;
            if (!failed) {
                request send;
                send.method = "POST";
                send.path = graph_draft_send_path(mailbox_, draft);
                const step_result sent = co_await step(id, std::move(send), 202, false);
                if (sent.done) co_return every(to, smtp::reply(250, "2.0.0", "Sent by Microsoft Graph"));
                failed = sent;
            }
        } catch (const mailbox_refusal& e) {
            refused = e;  // the draft goes first
        }
        co_await delete_draft(id, draft);
        if (refused) throw *refused;
        co_return every(to, failed->failure);
    }

    // Best effort: a draft left behind is clutter in Drafts, never mail.
    asio::awaitable<void> delete_draft(const std::string& id, const std::string& draft) {
        if (broken_) co_return;
        request del;
        del.method = "DELETE";
        del.path = graph_message_path(mailbox_, draft);
        del.bearer_token = token_;
        try {
            const auth::http_response res = co_await http_.send(std::move(del));
            if (res.status != 204 && res.status != 200 && res.status != 404)
                spdlog::warn("delivery id={} upstream={}: the draft that was not sent could not be deleted ({})", id,
                             mailbox_, res.status);
        } catch (const std::exception& e) {
            broken_ = true;
            spdlog::warn("delivery id={} upstream={}: the draft that was not sent could not be deleted: {}", id,
                         mailbox_, e.what());
        }
    }

    struct step_result {
        bool done = false;
        std::string body;       // done: the answer's body
        smtp::reply failure;    // not done: the message's reply (retry, or failed for good)
    };

    // One request that Graph should answer with `ok`: a 401 renews the token
    // and repeats it once; throttling and a mailbox that cannot send throw
    // mailbox_refusal; a broken exchange throws (the connection is gone).
    // `creates_draft`: the first request of a draft, which needs Mail.ReadWrite.
    asio::awaitable<step_result> step(const std::string& id, request req, int ok, bool creates_draft) {
        bool renewed = false;
        for (;;) {
            req.bearer_token = token_;
            auth::http_response res;
            try {
                res = co_await http_.send(req);
            } catch (...) {
                written_ = written_ || http_.request_written();
                broken_ = true;
                throw;
            }
            written_ = true;
            if (res.status == ok) co_return step_result{true, std::move(res.body), {}};
            graph_answer a;
            a.status = res.status;
            a.retry_after = parse_retry_after(res.retry_after);
            read_graph_error(res.body, a);
            const graph_outcome o = classify_graph(a, mailbox_, renewed);
            hint_ = o.hint;
            if (creates_draft && a.error_code == "ErrorAccessDenied") hint_ = draft_access_hint(mailbox_);
            switch (o.what) {
            case graph_outcome::kind::renew_token:
                // The token was refused (expired early, revoked): a new one, once.
                spdlog::info("delivery id={} upstream={}: Microsoft Graph refused the token; asking for a new one",
                             id, mailbox_);
                tokens_->invalidate(token_);
                token_ = (co_await tokens_->get()).value;
                renewed = true;
                continue;
            case graph_outcome::kind::pause_mailbox:
                throw mailbox_refusal(mailbox_refusal::kind::paused, o.reply, hint_, o.wait);
            case graph_outcome::kind::mailbox_unavailable:
                throw mailbox_refusal(mailbox_refusal::kind::unavailable, o.reply, hint_);
            case graph_outcome::kind::sent:  // a 202 where another answer was due: take it as done
                co_return step_result{true, std::move(res.body), {}};
            case graph_outcome::kind::failed:
            case graph_outcome::kind::retry: co_return step_result{false, {}, o.reply};
            }
        }
    }

    // Graph sends to all of a message's recipients or to none.
    static smtp::message_result every(const std::vector<std::string>& to, const smtp::reply& r) {
        smtp::message_result out;
        for (const auto& a : to) out.recipients.push_back({a, r});
        out.final_reply = r;
        return out;
    }

    const conf::config& cfg_;
    bool save_to_sent_items_;
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
