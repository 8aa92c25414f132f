#include "relay/server/session.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "auth/openssl_ptr.hpp"
#include "auth/sasl_server.hpp"
#include "relay/cluster/shared_limits.hpp"
#include "relay/delivery/blocking.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/delivery/graph_rules.hpp"
#include "relay/server/account_activity.hpp"
#include "relay/server/account_lockout.hpp"
#include "relay/server/client_table.hpp"
#include "relay/server/login_pool.hpp"
#include "relay/server/device_tls.hpp"
#include "relay/spool/spool.hpp"
#include "relay/metrics/relay_metrics.hpp"
#include "relay/server/counted_policy.hpp"
#include "relay/delivery/system_clock.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/server/tls.hpp"
#include "smtp/address.hpp"
#include "smtp/header.hpp"
#include "smtp/received.hpp"
#include "smtp/server_session.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

namespace {

// A message larger than Microsoft Graph's MIME send takes.
smtp::reply graph_too_big() {
    return smtp::reply(552, "5.3.4", "Message size exceeds fixed maximum message size: at most " +
                                         std::to_string(conf::graph_max_message_size) +
                                         " bytes go through Microsoft Graph");
}

// [cluster]: how long an address an account logged in from stays familiar
// to every node (each node also remembers its own last 16).
constexpr std::chrono::hours familiar_for{24 * 30};

// The label of an AUTH refused by the policy (subrelay_auth_total).
const char* auth_refusal_reason(policy::auth_source source) {
    switch (source) {
    case policy::auth_source::security_defaults: return "security_defaults";
    case policy::auth_source::authentication_policy: return "policy";
    case policy::auth_source::mailbox: return "mailbox";
    case policy::auth_source::organization: return "tenant";
    }
    return "policy";
}

// The policy as the state machine sees it, read afresh at each check so a
// reload takes effect for sessions already open: at each MAIL the account's
// decision is taken again (an account revoked after its AUTH sends no more),
// and a bound session's binding must still cover the client.
class policy_adapter final : public smtp::server_policy {
public:
    policy_adapter(const relay_context& ctx, const smtp::server_session& session, const std::string& client_ip,
                   const listener_kind& kind)
        : ctx_(ctx), session_(session), client_ip_(client_ip), kind_(kind) {}

    std::optional<smtp::reply> check_sender(const std::string& identity, const std::string& address) override {
        // Refuse before DATA rather than fail the spool write after it.
        if (auto free = ctx_.spool.free_bytes(); free && *free < ctx_.cfg.spool.min_free_bytes) {
            spdlog::warn("spool {}: only {} bytes free (spool.min_free_bytes = {}); refusing new mail",
                         ctx_.spool.dir().string(), *free, ctx_.cfg.spool.min_free_bytes);
            return smtp::reply(452, "4.3.1", "Insufficient system storage");
        }
        auto engine = ctx_.policy();
        const policy::mailbox* m = engine->find(identity);
        if (m == nullptr) return smtp::replies::send_as_denied();
        if (session_.bound()) {
            // The binding may have been removed (or given to another account) since the session began.
            const policy::binding* b = engine->binding_for(client_ip_, kind_name(), kind_.address);
            if (b == nullptr || !text::iequals(b->identity, m->identity)) {
                spdlog::info("session {}: MAIL refused: no binding covers this client for account {} any more",
                             client_ip_, m->identity);
                return smtp::replies::not_authenticated();
            }
        }
        // No AUTH happened, or it happened before a reload: the account's
        // SMTP AUTH setting as it is now.
        if (auto refusal = engine->recheck_at_mail(*m)) {
            const auto decision = engine->may_authenticate(*m);
            spdlog::info("session {}: MAIL refused: account={} may not send now ({}) reason=\"{}\"", client_ip_,
                         m->identity, session_.bound() ? "bound" : "authenticated",
                         decision.steps.empty() ? refusal->summary() : decision.steps.back());
            return refusal;
        }
        if (auto r = engine->check_sender(identity, address)) return r;
        // The message is held against the account's quotas from here until
        // it is accepted or the transaction ends.
        held_.reset();
        smtp::reply refusal;
        held_ = ctx_.limits.reserve_message(m->identity, local_limits(*engine, *m), refusal);
        if (!held_) return refusal;
        return std::nullopt;
    }

    std::optional<smtp::reply> check_recipient(const std::string& identity, const std::string&,
                                               const std::string& address) override {
        auto engine = ctx_.policy();
        const policy::mailbox* m = engine->find(identity);
        if (m == nullptr) return smtp::replies::send_as_denied();
        if (auto r = engine->check_recipient(identity, address)) return r;
        if (!held_) return smtp::replies::send_as_denied();  // no MAIL of ours: cannot happen
        return ctx_.limits.reserve_recipient(*held_, local_limits(*engine, *m));
    }

    // The account's limits as they apply on this node: the whole of each,
    // or with [cluster] while Redis is unreachable, this node's share.
    [[nodiscard]] policy::effective_limits local_limits(const policy::engine& engine, const policy::mailbox& m) const {
        policy::effective_limits l = engine.limits_for(m);
        if (ctx_.shared != nullptr && !ctx_.shared->available() && !ctx_.shared->connecting()) {
            l.max_messages_per_minute = cluster::shared_limits::share(l.max_messages_per_minute, ctx_.shared->nodes());
            l.max_recipients_per_day = cluster::shared_limits::share(l.max_recipients_per_day, ctx_.shared->nodes());
        }
        return l;
    }
    // The account's limits, whole (for the quotas the nodes share).
    [[nodiscard]] std::optional<policy::effective_limits> limits_of(const std::string& identity) const {
        auto engine = ctx_.policy();
        const policy::mailbox* m = engine->find(identity);
        if (m == nullptr) return std::nullopt;
        return engine->limits_for(*m);
    }
    // The last recipient was refused by the shared quota after all.
    void release_recipient() {
        if (held_) held_->release_recipient();
    }

    // The message was accepted: what it held is counted for good.
    void commit_held() {
        if (held_) held_->commit();
        held_.reset();
    }
    // The transaction ended without a message (RSET, a refusal, a failure):
    // what it held is free for the account's other sessions.
    void release_held() { held_.reset(); }
    [[nodiscard]] bool holding() const { return held_.has_value(); }

private:
    [[nodiscard]] std::string_view kind_name() const { return kind_.implicit_tls ? "submissions" : "submission"; }

    const relay_context& ctx_;
    const smtp::server_session& session_;
    const std::string& client_ip_;
    const listener_kind& kind_;
    std::optional<policy::reservation> held_;
};

// The session's rules: the server's, with what a device profile relaxes.
smtp::server_options session_options(const conf::config& cfg, bool implicit_tls, const conf::device_network* device) {
    smtp::server_options o;
    o.hostname = cfg.server.hostname;
    // The SIZE advertised and enforced leaves room for the Received: header
    // the relay adds, so that a message accepted at the limit is not refused
    // upstream for the relay's own header.
    o.max_message_size = cfg.server.max_message_size > 2 * smtp::max_received_header
                             ? cfg.server.max_message_size - smtp::max_received_header
                             : cfg.server.max_message_size;
    // When every upstream mailbox sends through Microsoft Graph, SIZE says
    // what Graph takes (refusals come at MAIL otherwise).
    if (cfg.all_through_graph())
        o.max_message_size = std::min<std::size_t>(o.max_message_size, conf::graph_max_message_size);
    o.max_recipients = cfg.server.max_recipients;
    o.tls_available = true;
    o.implicit_tls = implicit_tls;
    o.require_tls_for_auth = cfg.server.require_tls_for_auth && !(device != nullptr && device->auth_without_tls);
    o.bare_lf_mode = device != nullptr && device->accept_bare_lf ? smtp::bare_lf::accept : smtp::bare_lf::reject;
    // MAIL and RCPT are decided here (decide()), where a decision may wait.
    o.deferred_policy = true;
    return o;
}

std::string_view listener_kind_name(const listener_kind& kind) {
    return kind.implicit_tls ? "submissions" : "submission";
}

// The index of a device profile in the configuration, for log lines.
std::string device_name(const conf::config& cfg, const conf::device_network* device) {
    if (device == nullptr) return {};
    return "device_network[" + std::to_string(device - cfg.device_networks.data()) + "]";
}

// What an OpenSSL call that returned `ret` left, as an error code in the
// terms Asio's TLS stream uses (a peer that leaves mid-record is
// stream_truncated, a close_notify is eof).
boost::system::error_code tls_error(SSL* ssl, int ret, int saved_errno) {
    const int err = SSL_get_error(ssl, ret);
    if (err == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) {
        if (err == SSL_ERROR_SYSCALL && saved_errno != 0)
            return {saved_errno, boost::system::system_category()};
        return ssl::error::stream_truncated;
    }
    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return ssl::error::stream_truncated;
    return {static_cast<int>(e), asio::error::get_ssl_category()};
}

std::chrono::milliseconds failed_auth_delay() {
    thread_local std::mt19937 rng{std::random_device{}()};
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(400, 1200)(rng));
}


}  // namespace

// One connection. Lives in the registry while it runs.
class session : public std::enable_shared_from_this<session> {
public:
    session(relay_context& ctx, asio::ip::tcp::socket socket, listener_kind kind, std::string client)
        : ctx_(ctx),
          kind_(std::move(kind)),
          socket_(std::move(socket)),
          timer_(socket_.get_executor()),
          client_ip_(client.empty() ? peer_address(socket_) : std::move(client)),
          device_(ctx.cfg.device_network_for(client_ip_, listener_kind_name(kind_), kind_.address)),
          adapter_(ctx, smtp_, client_ip_, kind_),
          smtp_(session_options(ctx.cfg, kind_.implicit_tls, device_), &counted_),
          started_(std::chrono::steady_clock::now()) {
        // What the state machine refuses by itself (530 before AUTH, bad
        // syntax, too big...) counts among the refused messages too.
        smtp_.set_refusal_observer(
            [](std::string_view stage, const smtp::reply& r) { metrics::relay().refused(stage, r.code); });
        boost::system::error_code ec;
        // Reads are tried first and waited for only when nothing is there,
        // so an idle session holds no read buffer (and OpenSSL, which reads
        // the socket itself, sees EAGAIN instead of blocking).
        socket_.non_blocking(true, ec);
        if (device_ != nullptr)
            spdlog::info("session {} {}: device profile {}", client_ip_, kind_.name, device_name(ctx.cfg, device_));
        auto engine = ctx.policy();
        if (const policy::binding* b = engine->binding_for(client_ip_, listener_kind_name(kind_), kind_.address)) {
            if (const policy::mailbox* m = engine->find(b->identity)) {
                smtp_.set_bound_identity(m->identity);
                spdlog::info("session {}: bound to account {} by network {}", client_ip_, m->identity,
                             b->network_text);
            }
        }
    }

    asio::awaitable<void> run();
    // Drops the message being received, if any (a session that ended in
    // the middle of DATA), off the I/O thread.
    asio::awaitable<void> drop_message();

    void request_stop() {
        stop_requested_ = true;
        boost::system::error_code ignored;
        if (reading_) socket_.cancel(ignored);
    }

private:
    enum class io_result { ok, closed, timeout, stopped };
    enum class attempt { done, want_read, want_write, failed };

    // The I/O deadline: when it passes, the pending operation is cancelled
    // and ends with error::timed_out.
    void expires_after(std::chrono::steady_clock::duration d);
    asio::awaitable<boost::system::error_code> wait(attempt a);
    template <class Call>
    asio::awaitable<boost::system::error_code> tls_call(Call call);
    attempt try_read(std::string& out, boost::system::error_code& ec);

    asio::awaitable<io_result> read_some(std::string& out);
    // Writes everything, or gives up when `limit` has passed.
    asio::awaitable<bool> write(std::string_view data, std::chrono::steady_clock::duration limit);
    asio::awaitable<void> say_goodbye(const std::string& bye);
    asio::awaitable<bool> handshake();
    asio::awaitable<void> authenticate();
    // DATA, as the state machine hands it out: each piece appended to the
    // message's spool file as it comes, the file made durable at the end.
    asio::awaitable<void> receive_data();
    asio::awaitable<void> store();
    // The policy's decision about a MAIL or RCPT (nullopt: accepted).
    asio::awaitable<std::optional<smtp::reply>> decide(const smtp::policy_check& c);
    // Smart Lockout: whether a login as `account` from this client is
    // refused without checking its password. With [cluster] a lock made by
    // any node counts, and so does an address familiar to any node. Called
    // on the password checks' pool, which may wait for Redis.
    bool locked_out(const std::string& account);
    // [cluster]: Smart Lockout shared by the nodes (failures, locks and
    // familiar addresses in Redis); while Redis is unreachable each node
    // goes by what it saw itself.
    [[nodiscard]] bool shares_lockout() const {
        return ctx_.shared != nullptr && ctx_.lockout != nullptr && ctx_.cfg.auth.lockout_threshold > 0;
    }
    asio::awaitable<void> count_shared_failure(const std::string& account);
    // The transaction ended without a message: its quotas are free again, here and in the cluster.
    void release_quota();
    void prepare_message();
    void write_chunk();
    smtp::reply spool_failure(const std::exception& e) const;  // logs, and says which 4xx
    // The From:/Sender: check at the end of DATA (policy::engine::check_header_from); logs a refusal.
    std::optional<smtp::reply> header_from_refusal() const;
    // The upstream mailbox an account's messages go through, and whether
    // that is Microsoft Graph.
    [[nodiscard]] std::string upstream_mailbox_of(const std::string& identity) const;
    [[nodiscard]] bool through_graph(const std::string& identity) const;
    // For an account whose messages go through Graph, which sends to the
    // header's addresses: a message naming an address that is no envelope
    // recipient, or too big for Graph's request, is refused at its end.
    [[nodiscard]] std::optional<smtp::reply> graph_refusal() const;
    asio::awaitable<void> close();
    // Above 80 % of server.max_connections the relay is under pressure, and
    // idle clients get 10 s (as in Postfix's stress mode) instead of the
    // configured timeout, and whole sessions
    // server.stress_session_timeout_seconds, so that slots come free for
    // devices with mail.
    [[nodiscard]] bool under_pressure() const {
        return ctx_.sessions.size() * 5 > static_cast<std::size_t>(ctx_.cfg.server.max_connections) * 4;
    }
    [[nodiscard]] std::chrono::seconds idle_timeout() const {
        const auto configured = std::chrono::seconds(ctx_.cfg.server.idle_timeout_seconds);
        return under_pressure() ? std::min(configured, stress_idle_timeout) : configured;
    }
    // DATA that arrives more slowly than server.min_data_rate (on average,
    // once it has run for data_rate_grace) is drip-feeding: the session ends.
    [[nodiscard]] bool data_too_slow(std::chrono::steady_clock::time_point now) const;
    [[nodiscard]] std::chrono::steady_clock::duration deadline(std::chrono::seconds limit) const;
    void note_bare_lf();

    static std::string peer_address(const asio::ip::tcp::socket& socket) {
        boost::system::error_code ec;
        auto ep = socket.remote_endpoint(ec);
        return ec ? "unknown" : ep.address().to_string();
    }

    relay_context& ctx_;
    listener_kind kind_;
    asio::ip::tcp::socket socket_;
    asio::steady_timer timer_;  // the I/O deadline
    std::uint64_t deadline_generation_ = 0;
    bool timed_out_ = false;
    // OpenSSL on the socket itself, made at the handshake: a session that
    // never starts TLS does not pay for it, and an idle TLS session holds
    // only the SSL object (its record buffers are released between records).
    std::shared_ptr<ssl::context> tls_context_;  // the context ssl_ was made from (kept across a reload)
    auth::ssl_ptr ssl_;
    std::string client_ip_;
    const conf::device_network* device_;  // the client's device profile, or nullptr
    policy_adapter adapter_;
    counted_policy counted_{adapter_};  // adapter_ with its refusals counted
    // [cluster]: what the transaction holds of its account's quotas in
    // Redis, given back with the local reservation (RSET, a refusal, the
    // session's end) or left to count at the 250.
    class shared_quota {
    public:
        explicit shared_quota(cluster::shared_limits* limits) : limits_(limits) {}
        ~shared_quota() { release(); }
        shared_quota(const shared_quota&) = delete;
        shared_quota& operator=(const shared_quota&) = delete;
        void add(cluster::reservation r) {
            if (!r.empty()) held_.push_back(std::move(r));
        }
        void release() {
            for (const auto& r : held_) limits_->release(r);
            held_.clear();
        }
        void commit() { held_.clear(); }

    private:
        cluster::shared_limits* limits_;
        std::vector<cluster::reservation> held_;
    } shared_quota_{ctx_.shared};
    smtp::server_session smtp_;
    std::unique_ptr<auth::sasl_server> sasl_;
    std::string tls_description_;
    std::string attempted_identity_;  // the account the last AUTH tried, as typed, for the log
    std::string attempted_account_;   // its canonical identity, when there is such an account
    bool attempt_locked_ = false;     // it was refused by the account's lockout
    bool in_data_ = false;                                  // the client is sending DATA
    std::chrono::steady_clock::time_point data_started_{};
    std::uint64_t data_bytes_ = 0;                          // read since DATA began
    bool bare_lf_logged_ = false;
    bool plaintext_auth_logged_ = false;
    std::chrono::steady_clock::time_point started_;
    bool tls_ = false;
    bool reading_ = false;
    bool stop_requested_ = false;
    // The message being received: its envelope and Received: header (both
    // fixed when its first piece is written), its file in the spool, and the
    // piece on its way there. Nothing here grows with the message.
    spool_envelope record_;
    smtp::received_info received_;
    spool::incoming incoming_;
    std::string chunk_;
    // The message's header section, for the From:/Sender: check (at most
    // smtp::header_collector::default_limit octets).
    smtp::header_collector header_;
};

void session::note_bare_lf() {
    if (bare_lf_logged_) return;
    bare_lf_logged_ = true;
    spdlog::warn("session {} {}: bare LF refused (lines must end in CRLF); a [[device_network]] with "
                 "bare_lf = \"accept\" for this client's network accepts it",
                 client_ip_, kind_.name);
}

void session_registry::add(const std::shared_ptr<session>& s) {
    sessions_.insert(s);
    if (stopping_) s->request_stop();  // accepted just before the listener closed
}

void session_registry::remove(const std::shared_ptr<session>& s) {
    sessions_.erase(s);
    if (sessions_.empty() && empty_ != nullptr) empty_->cancel();
}

void session_registry::stop_all() {
    stopping_ = true;
    for (const auto& s : sessions_) s->request_stop();
}

asio::awaitable<void> session_registry::wait_until_empty(std::chrono::steady_clock::duration limit) {
    if (sessions_.empty()) co_return;
    const auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, limit);
    empty_ = &timer;
    co_await timer.async_wait(with_error);
    empty_ = nullptr;
}

bool session::data_too_slow(std::chrono::steady_clock::time_point now) const {
    const std::uint32_t rate = ctx_.cfg.server.min_data_rate;
    const auto elapsed = now - data_started_;
    if (rate == 0 || elapsed < data_rate_grace) return false;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    return static_cast<double>(data_bytes_) < static_cast<double>(rate) * seconds;
}

std::chrono::steady_clock::duration session::deadline(std::chrono::seconds limit) const {
    // Under pressure a session as a whole gets less too, so that the slots
    // of clients that keep a session busy (NOOPs, slow messages) come free.
    auto session_limit = std::chrono::seconds(ctx_.cfg.server.session_timeout_seconds);
    if (under_pressure())
        session_limit = std::min(session_limit, std::chrono::seconds(ctx_.cfg.server.stress_session_timeout_seconds));
    auto left = started_ + session_limit - std::chrono::steady_clock::now();
    return std::max<std::chrono::steady_clock::duration>(std::min<std::chrono::steady_clock::duration>(limit, left),
                                                         std::chrono::milliseconds(1));
}

void session::expires_after(std::chrono::steady_clock::duration d) {
    timed_out_ = false;
    const std::uint64_t generation = ++deadline_generation_;
    timer_.expires_after(d);
    timer_.async_wait([weak = weak_from_this(), generation](boost::system::error_code ec) {
        if (ec) return;
        auto self = weak.lock();
        if (!self || self->deadline_generation_ != generation) return;
        self->timed_out_ = true;
        boost::system::error_code ignored;
        self->socket_.cancel(ignored);
    });
}

asio::awaitable<boost::system::error_code> session::wait(attempt a) {
    auto [ec] = co_await socket_.async_wait(
        a == attempt::want_write ? asio::socket_base::wait_write : asio::socket_base::wait_read, with_error);
    if (ec && timed_out_) co_return asio::error::timed_out;
    co_return ec;
}

// Runs an OpenSSL call (which returns > 0 when done) until it completes,
// waiting for the socket whenever OpenSSL asks for it.
template <class Call>
asio::awaitable<boost::system::error_code> session::tls_call(Call call) {
    for (;;) {
        ERR_clear_error();
        errno = 0;
        const int ret = call();
        const int saved_errno = errno;
        if (ret > 0) co_return boost::system::error_code{};
        const int err = SSL_get_error(ssl_.get(), ret);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            co_return tls_error(ssl_.get(), ret, saved_errno);
        if (auto ec = co_await wait(err == SSL_ERROR_WANT_WRITE ? attempt::want_write : attempt::want_read)) co_return ec;
    }
}

// One read that does not wait. The buffer is on the thread's stack, not in
// the session's coroutine frame, so nothing is held while the client idles.
// With TLS, OpenSSL is always asked first: it may hold decrypted bytes that
// the socket will never signal.
session::attempt session::try_read(std::string& out, boost::system::error_code& ec) {
    std::array<char, 16384> buf;
    if (tls_) {
        ERR_clear_error();
        errno = 0;
        std::size_t n = 0;
        const int ret = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
        const int saved_errno = errno;
        if (ret == 1) {
            out.assign(buf.data(), n);
            return attempt::done;
        }
        const int err = SSL_get_error(ssl_.get(), ret);
        if (err == SSL_ERROR_WANT_READ) return attempt::want_read;
        if (err == SSL_ERROR_WANT_WRITE) return attempt::want_write;
        ec = tls_error(ssl_.get(), ret, saved_errno);
        return attempt::failed;
    }
    const std::size_t n = socket_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        return attempt::want_read;
    }
    if (ec) return attempt::failed;
    out.assign(buf.data(), n);
    return attempt::done;
}

asio::awaitable<session::io_result> session::read_some(std::string& out) {
    if (stop_requested_) co_return io_result::stopped;
    expires_after(deadline(idle_timeout()));
    boost::system::error_code ec;
    for (;;) {
        const attempt a = try_read(out, ec);
        if (a == attempt::done || a == attempt::failed) break;
        reading_ = true;
        ec = co_await wait(a);
        reading_ = false;
        if (ec || stop_requested_) break;
    }
    if (stop_requested_) co_return io_result::stopped;
    if (ec == asio::error::timed_out) co_return io_result::timeout;
    if (ec) co_return io_result::closed;
    co_return io_result::ok;
}

asio::awaitable<bool> session::write(std::string_view data, std::chrono::steady_clock::duration limit) {
    if (data.empty()) co_return true;
    expires_after(limit);
    if (tls_) {
        auto ec = co_await tls_call([this, data] {
            std::size_t written = 0;
            return SSL_write_ex(ssl_.get(), data.data(), data.size(), &written);
        });
        co_return !ec;
    }
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(data), with_error);
    (void)n;
    co_return !ec;
}

// The 421 before the session closes (idle timeout, shutdown): a client that
// no longer reads gets goodbye_timeout for it, not another idle timeout.
asio::awaitable<void> session::say_goodbye(const std::string& bye) {
    co_await write(bye, std::min<std::chrono::steady_clock::duration>(goodbye_timeout, idle_timeout()));
}

asio::awaitable<bool> session::handshake() {
    expires_after(std::chrono::seconds(ctx_.cfg.server.tls_handshake_timeout_seconds));
    boost::system::error_code ec;
    tls_context_ = ctx_.tls.context_for(device_);
    ssl_.reset(SSL_new(tls_context_->native_handle()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1) {
        const unsigned long e = ERR_get_error();
        ERR_clear_error();
        ec = e != 0 ? boost::system::error_code(static_cast<int>(e), asio::error::get_ssl_category())
                    : boost::system::error_code(asio::error::no_memory);
    } else {
        SSL_set_accept_state(ssl_.get());
        ec = co_await tls_call([this] { return SSL_do_handshake(ssl_.get()); });
    }
    if (ec) {
        // A client that connects and leaves (a port check) is not worth more than a debug line.
        const bool just_left = ec == ssl::error::stream_truncated || ec == asio::error::eof;
        spdlog::log(just_left ? spdlog::level::debug : spdlog::level::info, "session {} {}: TLS handshake failed: {}",
                    client_ip_, kind_.name, ec == asio::error::timed_out ? "timed out" : ec.message());
        metrics::relay().tls_handshake_failures.inc({kind_.name});
        co_return false;
    }
    tls_ = true;
    tls_description_ = describe_tls(ssl_.get());
    metrics::relay().tls_handshakes.inc({SSL_get_version(ssl_.get()), SSL_get_cipher_name(ssl_.get())});
    // Which devices still need old TLS: the protocol and cipher of every session.
    spdlog::info("session {} {}: {}{}{}", client_ip_, kind_.name, tls_description_, device_ ? " by " : "",
                 device_name(ctx_.cfg, device_));
    co_return true;
}

asio::awaitable<void> session::close() {
    if (tls_) {
        expires_after(std::chrono::seconds(2));
        // close_notify, then wait for the client's (as a TLS stream's shutdown does).
        co_await tls_call([this] {
            int ret = SSL_shutdown(ssl_.get());
            if (ret == 0) ret = SSL_shutdown(ssl_.get());
            return ret;
        });
    }
    timer_.cancel();
    boost::system::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
}

asio::awaitable<void> session::authenticate() {
    const smtp::auth_request& req = smtp_.pending_auth();
    auto engine = ctx_.policy();
    if (req.first) {
        if (!tls_ && !plaintext_auth_logged_) {
            plaintext_auth_logged_ = true;
            const std::string why = device_ ? device_name(ctx_.cfg, device_) : "server.require_tls_for_auth = false";
            spdlog::warn("session {} {}: AUTH without TLS ({} allows it): the password crosses the network in clear",
                         client_ip_, kind_.name, why);
        }
        attempted_identity_.clear();
        attempted_account_.clear();
        attempt_locked_ = false;
        // Called on the login pool, within the step; what it notes is read
        // on the io thread once the step is back.
        sasl_ = std::make_unique<auth::sasl_server>(
            ctx_.cfg.server.hostname,
            [engine, this](std::string_view identity) -> std::optional<auth::password_record> {
                attempted_identity_ = std::string(identity);  // for the log
                const auto* m = engine->find_login(identity, ctx_.cfg.server.auth_default_domain);
                if (m == nullptr) return std::nullopt;
                attempted_account_ = m->identity;
                attempt_locked_ = locked_out(m->identity);
                return auth::password_record(m->password_hash, attempt_locked_);
            });
    }
    // A storm of logins waits no longer than the queue allows: beyond it,
    // 454 at once (RFC 4954), and nothing is counted against the client.
    if (ctx_.logins != nullptr && !ctx_.logins->has_room()) {
        sasl_.reset();
        if (ctx_.logins->log_full(std::chrono::steady_clock::now())) {
            spdlog::warn("logins: {} waiting for a password check (auth.max_waiting_logins); new logins get 454 "
                         "until the queue shortens",
                         ctx_.logins->waiting());
        }
        smtp_.auth_failure(smtp::reply(454, "4.7.0", "Temporary authentication failure"));
        metrics::relay().auth.inc({"temporary"});
        co_return;
    }
    // SASL steps may run crypt(3), which takes tens of milliseconds: not on
    // the io thread, and not on the pool that spool writes need.
    auto sasl_step = [this, &req] {
        if (req.first)
            return sasl_->start(req.mechanism, req.has_initial_response ? std::optional<std::string_view>(req.data)
                                                                        : std::nullopt);
        return sasl_->step(req.data);
    };
    auth::sasl_result result;
    if (ctx_.logins != nullptr) {
        login_pool::ticket waiting(*ctx_.logins);
        result = co_await run_blocking(ctx_.logins->pool(), sasl_step);
    } else {
        result = co_await run_blocking(ctx_.blocking, sasl_step);
    }

    using status = auth::sasl_result::status;
    switch (result.state) {
    case status::challenge:
        smtp_.auth_challenge(result.challenge);
        co_return;
    case status::bad_mechanism:
        sasl_.reset();
        smtp_.auth_failure(smtp::reply(504, "5.5.4", "Unrecognized authentication type"));
        metrics::relay().auth.inc({"bad_mechanism"});
        co_return;
    case status::protocol_error:
        sasl_.reset();
        smtp_.auth_failure(smtp::reply(501, "5.5.2", "Invalid authentication exchange"));
        metrics::relay().auth.inc({"malformed"});
        co_return;
    case status::malformed:
    case status::failure:
        break;
    case status::success: {
        sasl_.reset();
        const policy::mailbox* m = engine->find_login(result.identity, ctx_.cfg.server.auth_default_domain);
        if (m == nullptr) break;
        auto decision = engine->may_authenticate(*m);
        if (!decision.allowed) {
            spdlog::info("auth refused: account={} client={} reason=\"{}\"", m->identity, client_ip_,
                         decision.steps.empty() ? decision.refusal->summary() : decision.steps.back());
            smtp_.auth_failure(*decision.refusal);
            metrics::relay().auth.inc({auth_refusal_reason(decision.source)});
            co_return;
        }
        spdlog::info("auth ok: account={} client={} mechanism={}", m->identity, client_ip_, req.mechanism);
        if (ctx_.activity != nullptr) ctx_.activity->signed_in(m->identity, static_cast<std::int64_t>(std::time(nullptr)));
        if (ctx_.clients != nullptr) ctx_.clients->auth_succeeded(client_ip_);
        if (ctx_.lockout != nullptr) ctx_.lockout->succeeded(m->identity, client_ip_);
        if (shares_lockout()) {
            // Familiar to every node from now on; the failures are forgotten.
            const std::string account = text::ascii_lower(m->identity);
            co_await ctx_.shared->set_with_ttl("familiar:" + account + "|" + client_ip_, "1", familiar_for);
            ctx_.shared->clear_failures(account);
        }
        smtp_.auth_success(m->identity);
        metrics::relay().auth.inc({"ok"});
        co_return;
    }
    }
    sasl_.reset();
    // A malformed user name or password is a failed attempt like a wrong
    // one: logged, answered after the same delay, and counted. So is a
    // login refused because its account is locked: the client cannot tell
    // it from a wrong password.
    const bool malformed = result.state == status::malformed;
    const auto now = std::chrono::steady_clock::now();
    const char* what = malformed         ? "malformed: "
                       : attempt_locked_ ? "account locked out"
                                         : "wrong password or unknown account";
    // One line per failure, naming the account tried (never the password):
    // what fail2ban's filter (conf/fail2ban) matches.
    spdlog::info("auth failed: account={} client={} mechanism={} ({}{})",
                 attempted_identity_.empty() ? "-" : attempted_identity_, client_ip_, req.mechanism, what,
                 malformed ? result.reason : std::string());
    if (ctx_.clients != nullptr && ctx_.clients->auth_failed(client_ip_, now)) {
        spdlog::warn("client {}: {} failed logins within 10 minutes; refused at connect for a while "
                     "(auth.max_failures_per_client)",
                     client_ip_, ctx_.cfg.auth.max_failures_per_client);
    }
    if (ctx_.lockout != nullptr && !malformed && !attempt_locked_ && !attempted_account_.empty()) {
        const auto lock = ctx_.lockout->failed(attempted_account_, client_ip_, now);
        if (lock != std::chrono::steady_clock::duration::zero())
            spdlog::warn("account {}: locked for {} s after {} failed logins from addresses it has not logged in "
                         "from (auth.lockout_threshold); its familiar addresses may still log in",
                         attempted_account_, std::chrono::duration_cast<std::chrono::seconds>(lock).count(),
                         ctx_.cfg.auth.lockout_threshold);
    }
    if (shares_lockout() && !malformed && !attempt_locked_ && !attempted_account_.empty())
        co_await count_shared_failure(attempted_account_);
    asio::steady_timer delay(socket_.get_executor(), failed_auth_delay());
    co_await delay.async_wait(with_error);
    smtp_.auth_failure(malformed ? smtp::reply(501, "5.5.2", "Invalid authentication exchange")
                                 : smtp::replies::auth_credentials_incorrect());
    metrics::relay().auth.inc({malformed ? "malformed" : attempt_locked_ ? "lockout" : "bad_credentials"});
}

// The envelope and the Received: header of the message being received, as
// they are once DATA has begun (the queue id comes from the spool).
void session::prepare_message() {
    const smtp::envelope& env = smtp_.current_envelope();
    record_ = {};
    record_.recipients = env.recipients;
    record_.identity = env.identity.empty() ? smtp_.identity() : env.identity;
    record_.sender = ctx_.policy()->envelope_sender(record_.identity, env.sender);
    record_.upstream_mailbox = upstream_mailbox_of(record_.identity);
    record_.client_address = client_ip_;
    record_.received_at = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    record_.smtputf8 = env.smtputf8;
    record_.eight_bit = env.body_type == "8BITMIME";

    received_ = {};
    received_.helo = env.helo;
    received_.client_ip = client_ip_;
    received_.by = ctx_.cfg.server.hostname;
    received_.protocol = std::string(smtp_.esmtp() ? "ESMTP" : "SMTP") + (tls_ ? "S" : "") +
                         (smtp_.authenticated() ? "A" : "");
    received_.tls = tls_description_;
    if (env.recipients.size() == 1) received_.single_recipient = env.recipients.front();
    received_.date = smtp::rfc5322_date_now(system_wall_clock());
    header_.clear();
}

// On the blocking pool: the message's file is made with its first piece.
void session::write_chunk() {
    if (!incoming_.active()) {
        incoming_ = ctx_.spool.begin(record_, [this](const std::string& queue_id) {
            smtp::received_info info = received_;
            info.id = queue_id;
            return smtp::received_header(info);
        });
    }
    if (!chunk_.empty()) incoming_.append(chunk_);
}

smtp::reply session::spool_failure(const std::exception& e) const {
    spdlog::error("spool write failed: account={} client={} from=<{}> size={}: {}", record_.identity, client_ip_,
                  record_.sender, incoming_.size(), e.what());
    const auto* error = dynamic_cast<const spool_error*>(&e);
    if (error != nullptr && error->out_of_space()) return {452, "4.3.1", "Insufficient system storage"};
    return {451, "4.3.0", "Temporary failure, message not queued, try again later"};
}

asio::awaitable<void> session::receive_data() {
    smtp_.take_data(chunk_);
    if (!incoming_.active()) prepare_message();
    header_.add(chunk_);
    std::optional<smtp::reply> failure;
    try {
        auto write_piece = [this] { write_chunk(); };
        co_await run_blocking(ctx_.blocking, write_piece);
    } catch (const std::exception& e) {
        failure = spool_failure(e);
    }
    if (failure) {
        // The rest of the message is read and dropped; its end gets the 4xx.
        co_await drop_message();
        smtp_.data_failed(*failure);
        metrics::relay().refused("data", failure->code);
    }
}

std::string session::upstream_mailbox_of(const std::string& identity) const {
    std::string mailbox = ctx_.policy()->upstream_mailbox_for(identity);
    return mailbox.empty() ? ctx_.cfg.upstream.mailbox : mailbox;
}

bool session::through_graph(const std::string& identity) const {
    return ctx_.cfg.delivery_for_mailbox(upstream_mailbox_of(identity)) == conf::upstream_kind::graph;
}

asio::awaitable<std::optional<smtp::reply>> session::decide(const smtp::policy_check& c) {
    const bool mail = c.kind == smtp::verb::mail;
    if (mail) shared_quota_.release();  // a new transaction
    if (mail && c.declared_size > conf::graph_max_message_size && through_graph(c.identity)) {
        // Graph takes one request of 4 MiB: the message base64-encoded.
        spdlog::info("session {}: MAIL refused: account={} SIZE={} is more than Microsoft Graph takes", client_ip_,
                     c.identity, c.declared_size);
        const smtp::reply refusal = graph_too_big();
        metrics::relay().refused("mail", refusal.code);
        co_return refusal;
    }
    std::optional<smtp::reply> r =
        mail ? counted_.check_sender(c.identity, c.address) : counted_.check_recipient(c.identity, c.sender, c.address);
    if (r || ctx_.shared == nullptr || !adapter_.holding()) co_return r;
    // [cluster]: the account's quota across the nodes (this node's own
    // counters, just reserved, hold its share while Redis is unreachable).
    const auto limits = adapter_.limits_of(c.identity);
    if (!limits) co_return r;
    const std::string account = text::ascii_lower(c.identity);
    // (No co_await inside ?: : GCC 12 destroys the temporaries of a
    // conditional expression's suspended branch too early.)
    const std::string key = (mail ? "account-messages:" : "account-recipients:") + account;
    const unsigned limit = mail ? limits->max_messages_per_minute : limits->max_recipients_per_day;
    const std::chrono::milliseconds window = mail ? std::chrono::minutes(1) : std::chrono::hours(24);
    cluster::reserve_result got = co_await ctx_.shared->reserve(key, limit, window, 1);
    if (got.status != cluster::reserve_status::refused) {
        shared_quota_.add(got.held);
        co_return std::nullopt;
    }
    const smtp::reply refusal = mail ? policy::replies::message_rate_exceeded() : policy::replies::daily_recipients_exceeded();
    spdlog::info("session {}: {} refused: account={} over its {} on all nodes ({})", client_ip_, mail ? "MAIL" : "RCPT",
                 c.identity, mail ? "messages a minute" : "recipients a day",
                 mail ? limits->max_messages_per_minute : limits->max_recipients_per_day);
    if (mail) {
        release_quota();
    } else {
        adapter_.release_recipient();
    }
    metrics::relay().refused(mail ? "mail" : "rcpt", refusal.code);
    co_return refusal;
}

void session::release_quota() {
    adapter_.release_held();
    shared_quota_.release();
}

bool session::locked_out(const std::string& account) {
    if (ctx_.lockout == nullptr) return false;
    const bool here = ctx_.lockout->refuses(account, client_ip_, std::chrono::steady_clock::now());
    if (!shares_lockout()) return here;
    const std::string key = text::ascii_lower(account);
    const cluster::value_result lock = ctx_.shared->get_now("lock:" + key);
    const bool elsewhere = lock.available && lock.value.has_value();
    if (!here && !elsewhere) return false;
    if (!here && ctx_.lockout->familiar(account, client_ip_)) return false;
    // An address the account logged in from through another node is familiar too.
    const cluster::value_result familiar = ctx_.shared->get_now("familiar:" + key + "|" + client_ip_);
    return !(familiar.available && familiar.value.has_value());
}

asio::awaitable<void> session::count_shared_failure(const std::string& account) {
    const std::string key = text::ascii_lower(account);
    if (ctx_.lockout->familiar(account, client_ip_)) co_return;
    const cluster::value_result familiar = co_await ctx_.shared->get("familiar:" + key + "|" + client_ip_);
    if (!familiar.available || familiar.value) co_return;  // Redis away: this node's own count decides
    const cluster::count_result failures = co_await ctx_.shared->add_failure(key, account_lockout::failure_window);
    if (!failures.available || failures.count < ctx_.cfg.auth.lockout_threshold) co_return;
    // Locked for every node; each lock twice the last one of the day, up to an hour.
    const cluster::value_result last = co_await ctx_.shared->get("lock-length:" + key);
    std::int64_t seconds = ctx_.cfg.auth.lockout_seconds;
    if (last.value) {
        try {
            seconds = std::stoll(*last.value) * 2;
        } catch (const std::exception&) {
            // not a number: the first lock again
        }
    }
    const std::int64_t longest = std::chrono::duration_cast<std::chrono::seconds>(account_lockout::longest_lock).count();
    seconds = std::clamp<std::int64_t>(seconds, 1, longest);
    co_await ctx_.shared->set_with_ttl("lock:" + key, "1", std::chrono::seconds(seconds));
    co_await ctx_.shared->set_with_ttl("lock-length:" + key, std::to_string(seconds), account_lockout::lock_memory);
    ctx_.shared->clear_failures(key);
    spdlog::warn("account {}: locked on every node for {} s after {} failed logins from addresses it has not logged "
                 "in from (auth.lockout_threshold); its familiar addresses may still log in",
                 account, seconds, failures.count);
}

asio::awaitable<void> session::drop_message() {
    if (incoming_.active()) {
        auto drop = [this] { incoming_.abort(); };
        co_await run_blocking(ctx_.blocking, drop);
    }
    std::string().swap(chunk_);  // an idle session holds no DATA buffer
    header_.clear();
}

std::optional<smtp::reply> session::header_from_refusal() const {
    const auto refusal = ctx_.policy()->check_header_from(record_.identity, header_.header(), header_.truncated());
    if (!refusal) return std::nullopt;
    if (refusal->address.empty()) {
        spdlog::info("header from refused: account={} client={} from=<> reason=\"{}\"", record_.identity, client_ip_,
                     refusal->reason);
    } else {
        spdlog::info("header from refused: account={} client={} from=<{}>", record_.identity, client_ip_,
                     refusal->address);
    }
    return refusal->reply;
}

std::optional<smtp::reply> session::graph_refusal() const {
    if (ctx_.cfg.delivery_for_mailbox(record_.upstream_mailbox) != conf::upstream_kind::graph) return std::nullopt;
    const auto refuse = [this](const char* why, smtp::reply r) {
        spdlog::info("message refused: account={} client={} from=<{}> reason=\"{}\"", record_.identity, client_ip_,
                     record_.sender, why);
        return r;
    };
    if (header_.truncated()) {
        return refuse("header too long to read for Microsoft Graph",
                      smtp::reply(552, "5.3.4", "Header section too long: Microsoft Graph sends to the addresses "
                                                "in To:, Cc: and Bcc:, which could not all be read"));
    }
    // Graph would send to an address only the header names, past every check RCPT TO had.
    const graph_header_check check = check_graph_header(header_.header(), record_.recipients, record_.recipients);
    if (check.refusal) return refuse("header recipients", *check.refusal);
    // The message as Graph gets it: the relay's Received:, the Bcc: for
    // recipients no field names, then the message.
    const std::uint64_t size = incoming_.size() + chunk_.size() + smtp::max_received_header +
                               (check.missing.empty() ? 0 : smtp::bcc_field(check.missing).size());
    if (size > conf::graph_max_encoded_message) return refuse("too big for Microsoft Graph", graph_too_big());
    return std::nullopt;
}

asio::awaitable<void> session::store() {
    smtp_.take_data(chunk_);
    if (!incoming_.active()) prepare_message();
    header_.add(chunk_);
    std::optional<smtp::reply> refused = header_from_refusal();
    if (!refused) refused = graph_refusal();
    if (refused) {
        // Nothing is queued: the spool file goes, and what the message held of the account's quotas.
        co_await drop_message();
        release_quota();
        smtp_.stored(*refused);
        metrics::relay().refused("data", refused->code);
        co_return;
    }
    std::string id;
    std::optional<smtp::reply> failure;
    try {
        auto finish = [this] {
            write_chunk();
            return incoming_.commit();
        };
        id = co_await run_blocking(ctx_.blocking, finish);
    } catch (const std::exception& e) {
        failure = spool_failure(e);
    }
    const std::uint64_t size = incoming_.size();
    co_await drop_message();
    if (failure) {
        smtp_.stored(*failure);
        metrics::relay().refused("data", failure->code);
        co_return;
    }
    spdlog::info("accepted id={} account={} client={} from=<{}> to={} size={}", id, record_.identity, client_ip_,
                 record_.sender, smtp::bracketed_list(record_.recipients), size);
    adapter_.commit_held();
    shared_quota_.commit();
    if (ctx_.activity != nullptr) ctx_.activity->accepted(record_.identity, static_cast<std::int64_t>(std::time(nullptr)));
    smtp_.stored(smtp::reply(250, "2.0.0", "Ok: queued as " + id));
    metrics::relay().note_accepted(size);
    ctx_.delivery.enqueue(id, record_.upstream_mailbox);
}

asio::awaitable<void> session::run() {
    spdlog::debug("connect from {} on {}", client_ip_, kind_.name);
    if (kind_.implicit_tls) {
        if (!co_await handshake()) {
            co_await close();
            co_return;
        }
    }
    const std::string greeting = smtp_.greeting();
    if (!co_await write(greeting, idle_timeout())) co_return;

    std::string input;
    for (;;) {
        smtp::step s = smtp_.advance();
        if (smtp_.refused_bare_lf()) note_bare_lf();
        if (!co_await write(s.send, idle_timeout())) break;
        const auto state = smtp_.current_state();
        using smtp_state = smtp::server_session::state;
        if (adapter_.holding() && state != smtp_state::mail && state != smtp_state::rcpt && state != smtp_state::data)
            release_quota();  // RSET, a new EHLO, a refused DATA: the transaction is over
        const bool in_data = state == smtp_state::data;
        if (in_data && !in_data_) {
            data_started_ = std::chrono::steady_clock::now();
            data_bytes_ = 0;
        }
        in_data_ = in_data;
        switch (s.next) {
        case smtp::action::need_input: {
            io_result r = co_await read_some(input);
            if (r == io_result::ok && in_data_) {
                data_bytes_ += input.size();
                if (data_too_slow(std::chrono::steady_clock::now())) {
                    spdlog::info("session {}: DATA below server.min_data_rate ({} bytes in {} s); closing",
                                 client_ip_, data_bytes_,
                                 std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                                  data_started_).count());
                    co_await say_goodbye(smtp::reply(421, "4.4.2", ctx_.cfg.server.hostname +
                                                                       " Error: data arrives too slowly")
                                             .wire());
                    co_await close();
                    co_return;
                }
            }
            if (r == io_result::ok) {
                smtp_.feed(input);
                continue;
            }
            if (r == io_result::stopped) {
                const std::string bye = smtp_.on_shutdown();
                co_await say_goodbye(bye);
            } else if (r == io_result::timeout) {
                spdlog::info("session {}: timeout", client_ip_);
                const std::string bye = smtp_.on_timeout();
                co_await say_goodbye(bye);
            }
            co_await close();
            co_return;
        }
        case smtp::action::start_tls:
            if (!co_await handshake()) {
                co_await close();
                co_return;
            }
            smtp_.tls_started();
            continue;
        case smtp::action::authenticate:
            co_await authenticate();
            continue;
        case smtp::action::data_chunk:
            co_await receive_data();
            continue;
        case smtp::action::discard:
            co_await drop_message();
            continue;
        case smtp::action::store:
            co_await store();
            continue;
        case smtp::action::check_policy:
            smtp_.policy_checked(co_await decide(smtp_.pending_check()));
            continue;
        case smtp::action::close:
            co_await close();
            co_return;
        }
    }
    co_await close();
}

asio::awaitable<void> run_session(relay_context& ctx, asio::ip::tcp::socket socket, listener_kind kind,
                                  std::string client) {
    std::shared_ptr<session> s;
    try {
        s = std::make_shared<session>(ctx, std::move(socket), std::move(kind), std::move(client));
        ctx.sessions.add(s);
        co_await s->run();
    } catch (const std::exception& e) {
        spdlog::error("session ended by an error: {}", e.what());
    }
    if (!s) co_return;
    try {
        co_await s->drop_message();  // a session that ended in the middle of DATA
    } catch (const std::exception& e) {
        spdlog::error("dropping the unfinished message of a session: {}", e.what());
    }
    ctx.sessions.remove(s);
}

}  // namespace subrelay::relay
