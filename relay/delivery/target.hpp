#pragma once
// Where the delivery hands a message over: one interface, one
// implementation per upstream kind. The scheduler (relay/delivery/delivery.hpp)
// knows lanes and due times; a target knows one upstream protocol.
//
// A target is made per connection (per worker): open() sets it up (for
// SMTP: connect, TLS, AUTH: failures there are failures of the lane, not of
// any message), send() carries one message to the given recipients, close()
// ends it politely. All of it runs on the delivery's executor.
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/delivery/credentials.hpp"
#include "relay/spool/spool.hpp"
#include "smtp/client_session.hpp"

namespace subrelay::relay {

class upstream_connection;

// Thrown by send() when the answer concerns the upstream mailbox, not the
// message (Graph's throttling, a permission the app lacks): the message was
// not taken, and goes again uncounted once the mailbox may be tried again.
class mailbox_refusal : public std::runtime_error {
public:
    enum class kind {
        paused,       // wait `wait` (Retry-After), then go on
        unavailable,  // the mailbox cannot send: probed again with the lane's backoff
    };
    mailbox_refusal(kind k, smtp::reply r, std::string hint, std::chrono::seconds wait = {})
        : std::runtime_error(r.summary()), kind_(k), reply_(std::move(r)), hint_(std::move(hint)), wait_(wait) {}
    [[nodiscard]] kind refusal() const noexcept { return kind_; }
    [[nodiscard]] const smtp::reply& reply() const { return reply_; }
    [[nodiscard]] const std::string& hint() const { return hint_; }
    [[nodiscard]] std::chrono::seconds wait() const { return wait_; }

private:
    kind kind_;
    smtp::reply reply_;
    std::string hint_;
    std::chrono::seconds wait_;
};

class delivery_target {
public:
    virtual ~delivery_target() = default;
    // Throws upstream_error or auth::token_error when the target cannot be
    // reached: the lane is unavailable.
    virtual boost::asio::awaitable<void> open() = 0;
    // One transaction: each recipient's reply and the final reply. The
    // message's content is read from its spool file as it goes. Throws
    // (std::exception) when the transfer itself broke off.
    virtual boost::asio::awaitable<smtp::message_result> send(const std::string& id,
                                                              const spool::stored_message& msg,
                                                              const std::vector<std::string>& to) = 0;
    // After send() threw: whether any of the message reached the target
    // (false: it may go again at once, uncounted).
    [[nodiscard]] virtual bool content_sent() const = 0;
    // Whether a transfer broke off: the connection is gone.
    [[nodiscard]] virtual bool broken() const = 0;
    // Whether another message may go through this target at `now` (not with
    // an expired token or past the connection's age).
    [[nodiscard]] virtual bool reusable(std::chrono::steady_clock::time_point now) const = 0;
    // Ends it: QUIT for SMTP. Never throws.
    virtual boost::asio::awaitable<void> close() = 0;
    // Breaks off whatever is under way (shutdown): pending operations fail.
    virtual void cancel() = 0;
    // After send(): the fix for what the upstream answered, when the target
    // knows one better than the SMTP rules (rules.hpp) would; "" otherwise.
    [[nodiscard]] virtual std::string hint() const { return {}; }
};

// SMTP (with XOAUTH2 or without authentication) to the lane's endpoint.
std::unique_ptr<delivery_target> make_smtp_target(const conf::config& cfg, upstream_endpoint to,
                                                  boost::asio::ssl::context& tls, auth::token_source* tokens,
                                                  std::string mailbox, boost::asio::thread_pool& blocking);
// Microsoft Graph's MIME sendMail for `mailbox`, with tokens of its profile
// (graph_target.cpp).
std::unique_ptr<delivery_target> make_graph_target(boost::asio::any_io_executor ex, const conf::config& cfg,
                                                   const conf::oauth_config& profile,
                                                   auth::token_source* tokens, std::string mailbox,
                                                   boost::asio::thread_pool& blocking);
// upstream.kind = "directory": ID.eml and ID.json in upstream.directory,
// written on the blocking pool.
std::unique_ptr<delivery_target> make_directory_target(const conf::config& cfg, boost::asio::thread_pool& blocking);

}  // namespace subrelay::relay
