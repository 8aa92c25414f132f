#pragma once
// One connection to the upstream SMTP server, driven by the pure
// smtp::client_session: connect, (STARTTLS | implicit TLS), EHLO,
// AUTH XOAUTH2 with a token from the token source, then messages.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/delivery/credentials.hpp"
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

// What the TLS handshake with the upstream showed (for `subrelay test-upstream`).
struct upstream_tls_facts {
    bool established = false;    // the handshake completed
    std::string version;         // "TLSv1.3"
    std::string cipher;          // "TLS_AES_256_GCM_SHA384"
    std::string subject;         // the server certificate's subject, "CN=localhost,O=subrelay tests"
    std::string subject_cn;      // its common name, "localhost"
    std::string issuer;          // "CN=subrelay test CA,O=subrelay tests"
    std::string not_after;       // "2026-11-30 12:00:00 UTC"
    long days_left = 0;          // until not_after (negative once expired)
    std::string verify_result;   // "ok", or why the certificate was not trusted
};

// Fills the certificate's part of `facts` (subject, issuer, expiry) from
// an X509* (the server's leaf), unless it is filled already.
void note_certificate(const void* x509, upstream_tls_facts& facts);

class message_content;

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
    // Sends one message: a streamed one (m.streamed) with its content read
    // from `content` as it goes. Throws upstream_error when the connection
    // fails, spool_error when the content cannot be read.
    boost::asio::awaitable<smtp::message_result> send(const smtp::outgoing_message& m,
                                                      message_content* content = nullptr);
    // QUIT, then close. Never throws.
    boost::asio::awaitable<void> quit();
    // Closes the socket at once: whatever is pending fails (shutdown).
    void cancel();
    // Whether the last message's content reached the wire (see
    // smtp::client_session::content_sent).
    [[nodiscard]] bool content_sent() const;
    // Whether the connection may carry another message at `now`: younger
    // than upstream.max_connection_age_seconds, and the token it
    // authenticated with not expired (Exchange may end such a session at any
    // moment, mid-transaction).
    [[nodiscard]] bool reusable(std::chrono::steady_clock::time_point now) const;

    [[nodiscard]] const std::string& mailbox() const { return mailbox_; }
    // Of the last connection attempt, for `subrelay test-upstream`:
    // whether the TCP connection was made,
    [[nodiscard]] bool connected() const;
    // the TLS handshake (the certificate is known even when it did not verify; empty without TLS),
    [[nodiscard]] const upstream_tls_facts& tls_facts() const;
    // the keywords of the last EHLO reply, upper-cased (empty before it, and again after STARTTLS).
    [[nodiscard]] std::vector<std::string> extensions() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::string mailbox_;
};

}  // namespace subrelay::relay
