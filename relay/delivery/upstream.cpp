#include "relay/delivery/upstream.hpp"

#include <array>
#include <ctime>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "auth/xoauth2.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/delivery/message_content.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

namespace {

smtp::client_options client_options_for(const conf::config& cfg, const upstream_endpoint& to) {
    smtp::client_options o;
    o.ehlo_name = cfg.server.hostname;
    switch (to.tls) {
    case conf::upstream_tls::starttls: o.tls = smtp::client_tls::starttls; break;
    case conf::upstream_tls::implicit: o.tls = smtp::client_tls::implicit; break;
    case conf::upstream_tls::none: o.tls = smtp::client_tls::none; break;
    }
    o.auth = cfg.upstream.auth == conf::upstream_auth::xoauth2 ? smtp::client_auth::xoauth2 : smtp::client_auth::none;
    return o;
}

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// "CN=localhost,O=subrelay tests" (RFC 2253).
std::string name_text(const X509_NAME* name) {
    if (name == nullptr) return {};
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio == nullptr) return {};
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out = n > 0 && data != nullptr ? std::string(data, static_cast<std::size_t>(n)) : std::string();
    BIO_free(bio);
    return out;
}

std::string common_name(const X509_NAME* name) {
    if (name == nullptr) return {};
    const int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (at < 0) return {};
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)));
    if (n < 0) return {};
    std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    return out;
}

}  // namespace

void note_certificate(const void* x509, upstream_tls_facts& facts) {
    const auto* cert = static_cast<const X509*>(x509);
    if (cert == nullptr || !facts.subject.empty()) return;
    facts.subject = name_text(X509_get_subject_name(cert));
    facts.subject_cn = common_name(X509_get_subject_name(cert));
    facts.issuer = name_text(X509_get_issuer_name(cert));
    const ASN1_TIME* until = X509_get0_notAfter(cert);
    std::tm tm{};
    if (until != nullptr && ASN1_TIME_to_tm(until, &tm) == 1) {
        facts.not_after = text::utc_date_time(::timegm(&tm));
        int days = 0;
        int seconds = 0;
        // days and seconds have the same sign: a few hours past is expired too.
        if (ASN1_TIME_diff(&days, &seconds, nullptr, until) == 1)
            facts.days_left = days == 0 && seconds < 0 ? -1 : days;
    }
}

struct upstream_connection::impl {
    const conf::config& cfg;
    upstream_endpoint to;
    ssl::context& tls_ctx;
    auth::token_source* tokens;
    std::optional<ssl::stream<beast::tcp_stream>> stream;
    std::optional<smtp::client_session> session;
    bool tls = false;
    bool connected = false;         // of the last attempt (test-upstream)
    upstream_tls_facts tls_facts;   // of the last attempt (test-upstream)
    std::string last_token;
    std::optional<std::chrono::steady_clock::time_point> token_expires_at;  // of the token it authenticated with
    std::chrono::steady_clock::time_point opened_at{};
    std::string where;  // "host:port" for messages
    message_content* content = nullptr;  // of the message being sent

    impl(const conf::config& c, upstream_endpoint e, ssl::context& t, auth::token_source* tk)
        : cfg(c), to(std::move(e)), tls_ctx(t), tokens(tk), where(to.host + ":" + std::to_string(to.port)) {}

    beast::tcp_stream& tcp() { return stream->next_layer(); }

    void arm(std::uint32_t seconds) { tcp().expires_after(std::chrono::seconds(seconds)); }

    asio::awaitable<void> write(std::string_view data) {
        if (data.empty()) co_return;
        arm(cfg.upstream.command_timeout_seconds);
        auto [ec, n] = tls ? co_await asio::async_write(*stream, asio::buffer(data), with_error)
                           : co_await asio::async_write(tcp(), asio::buffer(data), with_error);
        (void)n;
        if (ec) throw upstream_error(where + ": write failed: " + ec.message(), true);
    }

    asio::awaitable<void> read() {
        std::array<char, 8192> buf;
        arm(cfg.upstream.command_timeout_seconds);
        auto [ec, n] = tls ? co_await stream->async_read_some(asio::buffer(buf), with_error)
                           : co_await tcp().async_read_some(asio::buffer(buf), with_error);
        if (ec == beast::error::timeout) throw upstream_error(where + ": timed out waiting for the server", true);
        if (ec) throw upstream_error(where + ": connection lost: " + ec.message(), true);
        session->feed(std::string_view(buf.data(), n));
    }

    asio::awaitable<void> handshake() {
        SSL* native = stream->native_handle();
        const std::string& host = to.host;
        if (!is_ip_literal(host)) SSL_set_tlsext_host_name(native, host.c_str());
        // Host-name verification as before; the wrapper only notes the certificate.
        stream->set_verify_callback([this, check = ssl::host_name_verification(host)](bool preverified,
                                                                                       ssl::verify_context& vc) {
            note_certificate(X509_STORE_CTX_get0_cert(vc.native_handle()), tls_facts);
            return check(preverified, vc);
        });
        arm(cfg.upstream.connect_timeout_seconds);
        auto [ec] = co_await stream->async_handshake(ssl::stream_base::client, with_error);
        long verify = SSL_get_verify_result(native);
        tls_facts.verify_result = X509_verify_cert_error_string(verify);
        if (ec) {
            std::string why = ec.message();
            if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
            throw upstream_error(where + ": TLS handshake failed: " + why, true, {}, "tls");
        }
        tls = true;
        tls_facts.established = true;
        tls_facts.version = SSL_get_version(native);
        if (const SSL_CIPHER* c = SSL_get_current_cipher(native)) tls_facts.cipher = SSL_CIPHER_get_name(c);
        note_certificate(SSL_get0_peer_certificate(native), tls_facts);
        spdlog::debug("upstream {}: {}", where, describe_tls(native));
    }

    // Runs the state machine until it is idle, has a message result, or
    // closed. Handles STARTTLS and the token on the way.
    asio::awaitable<smtp::client_action> pump(const std::string& mailbox) {
        for (;;) {
            smtp::client_step s = session->advance();
            co_await write(s.send);
            switch (s.next) {
            case smtp::client_action::need_input: co_await read(); break;
            case smtp::client_action::send_content: {
                if (content == nullptr) throw upstream_error("no content for a streamed message", false);
                // The last piece and the terminator go out in one write: a
                // separate small write for ".\r\n" would wait for the
                // upstream's delayed ACK (Nagle) on every message.
                const std::string_view piece = co_await content->next();
                session->add_content(piece);
                if (content->done()) session->end_content();
                break;
            }
            case smtp::client_action::start_tls:
                co_await handshake();
                session->tls_started();
                break;
            case smtp::client_action::need_auth_token: {
                if (tokens == nullptr) throw upstream_error("no token source configured", false);
                auth::access_token t = co_await tokens->get();
                last_token = t.value;
                token_expires_at = t.expires_at;
                session->auth_token(auth::xoauth2_initial_response(mailbox, t.value));
                break;
            }
            case smtp::client_action::idle:
            case smtp::client_action::message_done:
            case smtp::client_action::closed: co_return s.next;
            case smtp::client_action::failed: {
                const smtp::client_error& e = session->error();
                std::string text = where + ": " + e.stage + " failed";
                if (e.server_reply.code != 0) text += ": " + e.server_reply.summary();
                else if (!e.text.empty()) text += ": " + e.text;
                bool transient = e.server_reply.code == 0 || e.server_reply.transient();
                throw upstream_error(text, transient, e.server_reply, e.stage);
            }
            }
        }
    }

    asio::awaitable<void> connect_once(const std::string& mailbox) {
        auto ex = co_await asio::this_coro::executor;
        asio::ip::tcp::resolver resolver(ex);
        const std::string port = std::to_string(to.port);
        auto [rec, results] = co_await resolver.async_resolve(to.host, port, with_error);
        if (rec) throw upstream_error(where + ": cannot resolve: " + rec.message(), true);
        stream.emplace(beast::tcp_stream(ex), tls_ctx);
        session.emplace(client_options_for(cfg, to));
        tls = false;
        connected = false;
        tls_facts = {};
        arm(cfg.upstream.connect_timeout_seconds);
        auto [cec, ep] = co_await tcp().async_connect(results, with_error);
        (void)ep;
        if (cec) throw upstream_error(where + ": cannot connect: " + cec.message(), true);
        connected = true;
        // Every write is a whole batch (commands, or a piece of content with
        // its terminator): nothing is gained by Nagle's delay, and a small
        // last segment would wait for the upstream's delayed ACK.
        boost::system::error_code nec;
        tcp().socket().set_option(asio::ip::tcp::no_delay(true), nec);
        if (to.tls == conf::upstream_tls::implicit) co_await handshake();
        smtp::client_action a = co_await pump(mailbox);
        if (a != smtp::client_action::idle) throw upstream_error(where + ": unexpected end of session set-up", true);
    }

    void close() {
        if (!stream) return;
        boost::system::error_code ec;
        tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        tcp().close();
    }
};

upstream_connection::upstream_connection(const conf::config& cfg, upstream_endpoint to, ssl::context& tls,
                                         auth::token_source* tokens, std::string mailbox)
    : impl_(std::make_unique<impl>(cfg, std::move(to), tls, tokens)), mailbox_(std::move(mailbox)) {}

upstream_connection::~upstream_connection() { impl_->close(); }

asio::awaitable<void> upstream_connection::open() {
    impl_->opened_at = std::chrono::steady_clock::now();
    try {
        co_await impl_->connect_once(mailbox_);
        co_return;
    } catch (const upstream_error& e) {
        if (!impl_->session || !impl_->session->auth_rejected() || impl_->last_token.empty()) throw;
        // The upstream refused a token we had cached: it may have been
        // revoked early. Drop it and try once more with a fresh one.
        spdlog::warn("upstream {}: token refused for {} ({}); retrying with a new token", impl_->where, mailbox_,
                     e.server_reply().summary());
        impl_->tokens->invalidate(impl_->last_token);
        impl_->close();
    }
    co_await impl_->connect_once(mailbox_);
}

void upstream_connection::cancel() { impl_->close(); }

bool upstream_connection::connected() const { return impl_->connected; }

bool upstream_connection::content_sent() const { return impl_->session && impl_->session->content_sent(); }

bool upstream_connection::reusable(std::chrono::steady_clock::time_point now) const {
    if (impl_->token_expires_at && now >= *impl_->token_expires_at) return false;
    return now - impl_->opened_at < std::chrono::seconds(impl_->cfg.upstream.max_connection_age_seconds);
}

const upstream_tls_facts& upstream_connection::tls_facts() const { return impl_->tls_facts; }

std::vector<std::string> upstream_connection::extensions() const {
    if (!impl_->session) return {};
    return impl_->session->extensions();
}

asio::awaitable<smtp::message_result> upstream_connection::send(const smtp::outgoing_message& m,
                                                               message_content* content) {
    impl_->session->send_message(m);
    impl_->content = content;
    struct forget_content {
        impl* i;
        ~forget_content() { i->content = nullptr; }
    } forget{impl_.get()};
    smtp::client_action a = co_await impl_->pump(mailbox_);
    if (a != smtp::client_action::message_done)
        throw upstream_error(impl_->where + ": connection ended during the transaction", true);
    // Consume the message_done step so the session is idle again.
    smtp::message_result r = impl_->session->result();
    co_return r;
}

asio::awaitable<void> upstream_connection::quit() {
    try {
        if (impl_->session && impl_->stream) {
            impl_->session->quit();
            co_await impl_->pump(mailbox_);
        }
    } catch (const std::exception&) {
        // The server went away first: nothing to do.
    }
    if (impl_->tls && impl_->stream) {
        impl_->arm(2);
        co_await impl_->stream->async_shutdown(with_error);
    }
    impl_->close();
}

}  // namespace subrelay::relay
