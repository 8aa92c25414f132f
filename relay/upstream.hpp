#pragma once
// One connection to the upstream SMTP server, driven by the pure
// smtp::client_session: connect, (STARTTLS | implicit TLS), EHLO,
// AUTH XOAUTH2 with a token from the token source, then messages.
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/credentials.hpp"
#include "smtp/client_session.hpp"

namespace subrelay::relay {

// A failure that ends the connection. transient: try again later.
class upstream_error : public std::runtime_error {
public:
    upstream_error(const std::string& what, bool transient, smtp::reply r = {}, std::string stage = "connect")
        : std::runtime_error(what), transient_(transient), reply_(std::move(r)), stage_(std::move(stage)) {}
    [[nodiscard]] bool transient() const { return transient_; }
    [[nodiscard]] const smtp::reply& server_reply() const { return reply_; }
    // Where it failed: "connect", "tls", "greeting", "ehlo", "starttls", "auth", "mail", "data", ...
    [[nodiscard]] const std::string& stage() const { return stage_; }

private:
    bool transient_;
    smtp::reply reply_;
    std::string stage_;
};

class upstream_connection {
public:
    // `to` is where this mailbox's messages go (credentials.hpp).
    upstream_connection(const conf::config& cfg, upstream_endpoint to, boost::asio::ssl::context& tls,
                        auth::token_source* tokens, std::string mailbox);
    ~upstream_connection();
    upstream_connection(const upstream_connection&) = delete;
    upstream_connection& operator=(const upstream_connection&) = delete;

    // Connects and authenticates. A refused token is dropped and a fresh
    // one tried once. Throws upstream_error or auth::token_error.
    boost::asio::awaitable<void> open();
    // Sends one message. Throws upstream_error when the connection fails.
    boost::asio::awaitable<smtp::message_result> send(const smtp::outgoing_message& m);
    // QUIT, then close. Never throws.
    boost::asio::awaitable<void> quit();

    [[nodiscard]] const std::string& mailbox() const { return mailbox_; }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::string mailbox_;
};

}  // namespace subrelay::relay
