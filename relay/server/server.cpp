#include "relay/server/server.hpp"

#include <sys/resource.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <list>
#include <optional>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "auth/sasl_server.hpp"
#include "auth/token_provider.hpp"
#include "policy/audit.hpp"
#include "policy/policy.hpp"
#include "policy/reload.hpp"
#include "relay/metrics/relay_metrics.hpp"
#include "relay/server/account_activity.hpp"
#include "relay/server/account_lockout.hpp"
#include "relay/console/users.hpp"
#include "relay/server/console_backend.hpp"
#include "relay/server/admin.hpp"
#include "relay/server/client_table.hpp"
#include "relay/server/context.hpp"
#include "relay/server/login_pool.hpp"
#include "relay/server/control.hpp"
#include "relay/delivery/credentials.hpp"
#include "relay/cluster/shared_limits.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/server/device_tls.hpp"
#include "relay/server/limits_keeper.hpp"
#include "relay/server/listener.hpp"
#include "relay/server/logging.hpp"
#include "relay/server/private_files.hpp"
#include "relay/server/privileges.hpp"
#include "relay/server/service_notify.hpp"
#include "relay/server/session.hpp"
#include "relay/spool/spool.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/server/tls.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;
using asio::use_awaitable;
constexpr auto with_error = asio::as_tuple(use_awaitable);

namespace {

std::shared_ptr<const policy::engine> load_policy(const conf::config& cfg) {
    auto loaded = policy::load_file(cfg.policy.file);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) spdlog::error("{}", e.to_string());
        return nullptr;
    }
    return std::make_shared<const policy::engine>(std::move(loaded.policy));
}

// How often the policy file's stamp is looked at. A change is read once the
// stamp is the same at two polls in a row: one to two polls after the edit.
constexpr auto policy_poll_interval = std::chrono::seconds(1);

// Takes in hand edits, CLI edits (noticed by polling) and SIGHUP. Used on
// the sessions' event loop only.
class policy_reloader {
public:
    explicit policy_reloader(relay_context& ctx)
        : ctx_(ctx), watch_(policy::stamp_of(ctx.cfg.policy.file)) {}

    // Reads the file now (SIGHUP).
    void reload(std::string_view why) { load(policy::stamp_of(file()), why); }

    // One poll: reads the file once it has stopped changing.
    void poll() {
        const auto now = policy::stamp_of(file());
        switch (watch_.poll(now)) {
        case policy::change_watch::verdict::unchanged:
            return;
        case policy::change_watch::verdict::settling:
            spdlog::info("policy file {} changed; it is read once it stays unchanged for one more poll",
                         file().string());
            return;
        case policy::change_watch::verdict::read:
            if (!now.exists) {
                watch_.read_at(now);
                spdlog::error("policy file {} is missing; the previous policy stays in force", file().string());
                return;
            }
            load(now, "file changed");
            return;
        }
    }

private:
    [[nodiscard]] const std::filesystem::path& file() const { return ctx_.cfg.policy.file; }

    // Loads the file, whose stamp was `stamp` before; swaps it in when it is
    // valid and may replace the policy in force, else keeps that one.
    void load(const policy::file_stamp& stamp, std::string_view why) {
        auto loaded = policy::load_file(file());
        if (policy::stamp_of(file()) != stamp) {
            // Written to while it was read: the polls see it again once it stops changing.
            spdlog::info("policy file {} changed while it was read ({}); it is read again once it stays unchanged",
                         file().string(), why);
            return;
        }
        watch_.read_at(stamp);
        if (!loaded.ok()) {
            for (const auto& e : loaded.errors) spdlog::error("{}", e.to_string());
            spdlog::error("policy file {} is invalid; the previous policy stays in force", file().string());
            metrics::relay().policy_reload_failures.inc();
            return;
        }
        const auto check = policy::check_reload(ctx_.policy()->file(), loaded, file());
        if (!check.apply) {
            spdlog::error("{}", check.message);
            spdlog::error("policy file {} is not applied; the previous policy stays in force", file().string());
            metrics::relay().policy_reload_failures.inc();
            return;
        }
        if (check.warn) spdlog::warn("{}", check.message);
        const auto accounts = loaded.policy.mailboxes.size();
        auto changes = policy::policy_changes(ctx_.policy()->file(), loaded.policy);
        ctx_.set_policy(std::make_shared<const policy::engine>(std::move(loaded.policy)));
        spdlog::info("policy reloaded ({}): {} account(s)", why, accounts);
        metrics::relay().policy_reloads.inc();
        record_hand_edit(std::move(changes));
    }

    // What the reload changed and no admin verb recorded is recorded as the
    // file's (policy::hand_edit_recorder).
    void record_hand_edit(std::vector<policy::object_change> changes) {
        try {
            const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            for (const auto& e : hand_edits_.record(std::move(changes), now))
                spdlog::info("policy edited by hand ({}): {}", file().string(), e.what);
        } catch (const std::exception& e) {
            spdlog::error("policy edited by hand ({}), but not recorded in the audit log: {}", file().string(),
                          e.what());
        }
    }

    relay_context& ctx_;
    policy::change_watch watch_;
    policy::hand_edit_recorder hand_edits_{policy::audit_log_path(ctx_.cfg.spool.dir)};
};

// Records hand edits of the web console's users file ([admin] users_file)
// in the audit log, as policy_reloader does for the policy (the console reads
// the file at every request: nothing is reloaded). Used on the sessions'
// event loop only.
class console_users_watch {
public:
    explicit console_users_watch(relay_context& ctx)
        : ctx_(ctx), watch_(policy::stamp_of(file())), users_(console::load_users(file()).users) {}

    void poll() {
        const auto stamp = policy::stamp_of(file());
        if (watch_.poll(stamp) != policy::change_watch::verdict::read) return;
        auto loaded = console::load_users(file());
        if (policy::stamp_of(file()) != stamp) return;  // written to while read: again once it settles
        watch_.read_at(stamp);
        if (!loaded.ok()) return;  // the console says why at each request
        auto changes = console::user_changes(users_, loaded.users);
        users_ = std::move(loaded.users);
        try {
            const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            for (const auto& e : hand_edits_.record(std::move(changes), now))
                spdlog::info("console users edited by hand ({}): {}", file().string(), e.what);
        } catch (const std::exception& e) {
            spdlog::error("console users edited by hand ({}), but not recorded in the audit log: {}", file().string(),
                          e.what());
        }
    }

private:
    [[nodiscard]] const std::filesystem::path& file() const { return ctx_.cfg.admin.users_file; }

    relay_context& ctx_;
    policy::change_watch watch_;
    console::users_file users_;  // as last read
    policy::hand_edit_recorder hand_edits_{policy::audit_log_path(ctx_.cfg.spool.dir)};
};

// Notices hand edits and CLI edits of the policy file (and of the console's
// users file, when there is a console).
asio::awaitable<void> watch_policy(policy_reloader& reloader, console_users_watch* users, asio::steady_timer& timer) {
    for (;;) {
        timer.expires_after(policy_poll_interval);
        auto [ec] = co_await timer.async_wait(with_error);
        if (ec) co_return;
        reloader.poll();
        if (users != nullptr) users->poll();
    }
}

// "10.1.20.0/24 192.0.2.7 on submissions: TLS >= 1.0, security level 0, AUTH without TLS, bare LF accepted"
std::string describe(const conf::device_network& d) {
    static constexpr std::array<const char*, 4> versions{"1.0", "1.1", "1.2", "1.3"};
    std::string out;
    for (const auto& n : d.networks) out += (out.empty() ? "" : " ") + n.to_string();
    if (!d.listeners.empty()) {
        out += " on";
        for (const auto& l : d.listeners) out += " " + l;
    }
    out += std::string(": TLS >= ") + versions.at(static_cast<std::size_t>(d.tls_min_version));
    if (d.tls_security_level >= 0) out += ", security level " + std::to_string(d.tls_security_level);
    if (!d.tls_ciphers.empty()) out += ", ciphers " + d.tls_ciphers;
    if (d.auth_without_tls) out += ", AUTH without TLS";
    if (d.accept_bare_lf) out += ", bare LF accepted";
    return out;
}

struct listening {
    asio::ip::tcp::acceptor acceptor;
    listener_kind kind;
};

// An event loop whose shutdown (which destroys every handler and coroutine
// frame still queued on it) is run at a chosen point of the shutdown order,
// while everything those frames refer to still exists: left to the loop's
// destructor, it ran after ~delivery, and a worker stuck on a silent
// upstream then touched a freed lane.
class event_loop : public asio::io_context {
public:
    using asio::io_context::io_context;
    using asio::execution_context::shutdown;
};

// Runs the delivery's event loop on a thread of its own until finish()
// stops it and joins.
class delivery_thread {
public:
    explicit delivery_thread(event_loop& io)
        : io_(io), work_(asio::make_work_guard(io)), thread_([&io] { io.run(); }) {}
    ~delivery_thread() { finish(); }
    delivery_thread(const delivery_thread&) = delete;
    delivery_thread& operator=(const delivery_thread&) = delete;
    void finish() {
        if (!thread_.joinable()) return;
        work_.reset();
        io_.stop();
        thread_.join();
    }

private:
    event_loop& io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::thread thread_;
};

// The end of the shutdown order, also when start-up fails half-way: stop
// and join the delivery thread, let the blocking pool finish what it runs
// (its completions are posted to the stopped loops), then shut both loops
// down, destroying what is left on them while the objects it refers to
// exist. The objects themselves go afterwards, in reverse order of creation.
class shutdown_order {
public:
    shutdown_order(event_loop& io, event_loop& delivery_io, asio::thread_pool& blocking, login_pool& logins,
                   cluster::shared_limits* shared)
        : io_(io), delivery_io_(delivery_io), blocking_(blocking), logins_(logins), shared_(shared) {}
    // Runs the delivery's loop on its own thread from now on.
    void start_delivery() { delivering_.emplace(delivery_io_); }
    ~shutdown_order() {
        io_.stop();
        if (delivering_) delivering_->finish();
        delivery_io_.stop();
        blocking_.join();
        logins_.join();
        // Redis's thread answers what is pending before the loops it answers on go.
        if (shared_ != nullptr) shared_->stop();
        delivery_io_.shutdown();
        io_.shutdown();
    }
    shutdown_order(const shutdown_order&) = delete;
    shutdown_order& operator=(const shutdown_order&) = delete;

private:
    event_loop& io_;
    event_loop& delivery_io_;
    asio::thread_pool& blocking_;
    login_pool& logins_;
    cluster::shared_limits* shared_;
    std::optional<delivery_thread> delivering_;
};

// Shutdown: stop accepting, let sessions say 421, let delivery finish the
// message in hand, then stop the loop.
asio::awaitable<void> stop_delivery(relay_context& ctx, control_server& control) {
    control.stop();
    co_await ctx.delivery.stop();
}

asio::awaitable<void> shut_down(relay_context& ctx, std::list<listening>& listeners, asio::steady_timer& watcher,
                                control_server& control, admin_server* admin) {
    watcher.cancel();
    if (admin != nullptr) admin->stop();
    for (auto& l : listeners) {
        boost::system::error_code ec;
        l.acceptor.close(ec);
    }
    // Each session answers 421 4.3.2 at its next read (one busy spooling
    // answers its client first); the last one to end wakes this wait.
    ctx.sessions.stop_all();
    co_await ctx.sessions.wait_until_empty(std::chrono::seconds(10));
    // The delivery runs on its own thread: stop it there.
    co_await asio::co_spawn(ctx.delivery.executor(), stop_delivery(ctx, control), use_awaitable);
    ctx.io.stop();
}

asio::awaitable<std::size_t> count_queue(delivery& d) { co_return d.queued(); }

// The queue as the service manager shows it (systemctl status): at start
// and every 10 s, asked of the delivery on its own thread.
asio::awaitable<void> report_status(relay_context& ctx) {
    asio::steady_timer timer(ctx.io);
    for (;;) {
        const std::size_t queued = co_await asio::co_spawn(ctx.delivery.executor(), count_queue(ctx.delivery),
                                                           use_awaitable);
        notify_status(queue_status(queued));
        timer.expires_after(std::chrono::seconds(10));
        auto [ec] = co_await timer.async_wait(with_error);
        if (ec) co_return;
    }
}

// The first SIGTERM (or SIGINT) shuts down in order; a second one during
// that stops at once: accepted mail is on disk, and a message cut off on
// its way upstream stays queued.
asio::awaitable<void> handle_signals(relay_context& ctx, policy_reloader& reloader, asio::signal_set& signals,
                                     std::list<listening>& listeners, asio::steady_timer& watcher,
                                     control_server& control, admin_server* admin) {
    bool shutting_down = false;
    for (;;) {
        auto [ec, sig] = co_await signals.async_wait(with_error);
        if (ec) co_return;
        if (sig == SIGHUP) {
            notify_reloading();
            reloader.reload("SIGHUP");
            // A renewed certificate needs no restart: new sessions get it.
            try {
                ctx.tls.reload();
                spdlog::info("TLS certificates and keys reloaded (SIGHUP)");
            } catch (const std::exception& e) {
                spdlog::error("TLS certificates and keys not reloaded (SIGHUP): {}; the current ones stay", e.what());
            }
            notify_ready("reloaded");
            continue;
        }
        if (shutting_down) {
            spdlog::warn("signal {} during shutdown: stopping now", sig);
            ctx.io.stop();
            co_return;
        }
        shutting_down = true;
        spdlog::info("signal {}: shutting down", sig);
        notify_stopping();
        asio::co_spawn(ctx.io, shut_down(ctx, listeners, watcher, control, admin), asio::detached);
    }
}

}  // namespace

namespace {

// Each session is a socket, and the relay needs descriptors besides
// (listeners, upstream connections, spool and state files, the control
// socket): run short and a device's spool write fails with EMFILE. The soft
// limit is raised to what is needed when the hard limit allows it; if it
// does not, the relay does not start.
bool enough_file_descriptors(const conf::config& cfg, const std::filesystem::path& config_file) {
    constexpr rlim_t headroom = 256;
    const rlim_t needed = static_cast<rlim_t>(cfg.server.max_connections) + headroom;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return true;  // nothing to go by
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
        if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
            spdlog::error("{}: server.max_connections: {} connections need {} file descriptors, but the process may "
                          "open {} at most (ulimit -Hn); raise the limit (LimitNOFILE= in a systemd unit) or lower "
                          "server.max_connections",
                          config_file.string(), cfg.server.max_connections, needed, limit.rlim_max);
            return false;
        }
        const rlim_t was = limit.rlim_cur;
        limit.rlim_cur = needed;
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            spdlog::error("{}: server.max_connections: cannot raise the file descriptor limit from {} to {}: {}",
                          config_file.string(), was, needed, std::strerror(errno));
            return false;
        }
        spdlog::info("file descriptor limit raised from {} to {} for server.max_connections = {}", was, needed,
                     cfg.server.max_connections);
    }
    return true;
}

}  // namespace

int serve(const std::filesystem::path& config_file) {
    // Whatever the relay creates (spool, state, notices, outbox) is its
    // own: no file of it is readable or writable by other users unless a
    // mode is given explicitly.
    ::umask(077);
    auto parsed = conf::parse_file(config_file);
    if (!parsed.ok()) {
        for (const auto& e : parsed.errors) std::cerr << e.to_string() << '\n';
        return 1;
    }
    const conf::config& cfg = parsed.cfg;
    if (!setup_logging(cfg.log.level, cfg.log.format == "json" ? log_format::json : log_format::text)) {
        std::cerr << config_file.string() << ": log.level: unknown level\n";
        return 1;
    }
    for (const auto& w : parsed.warnings) spdlog::warn("{}: {}: {}", config_file.string(), w.key, w.message);
    for (const auto& w : exposed_secret_files(cfg)) spdlog::warn("{}: {}: {}", config_file.string(), w.key, w.message);

    if (!enough_file_descriptors(cfg, config_file)) return 1;
    std::signal(SIGPIPE, SIG_IGN);
    try {
        auto policy = load_policy(cfg);
        if (!policy) return 1;
        auth::sasl_server::global_init();
        relay::server_tls tls(cfg);

        // Two event loops: one for the submission sessions, one for the
        // delivery (upstream connections, token requests, retries). They meet
        // only in delivery::enqueue, which posts to the delivery's loop.
        event_loop io(1);
        event_loop delivery_io(1);

        // The ports are bound (as root, for 587 and 465) and the TLS keys
        // read before the switch to server.user; the spool is the user's.
        std::list<listening> listeners;
        for (const auto& a : cfg.server.submission)
            listeners.push_back({open_acceptor(io, a), {false, "submission " + a.to_string(), a.to_string()}});
        for (const auto& a : cfg.server.submissions)
            listeners.push_back({open_acceptor(io, a), {true, "submissions " + a.to_string(), a.to_string()}});
        if (!cfg.server.user.empty()) {
            const run_as user = find_user(cfg.server.user);
            if (auto problem = spool_ownership_problem(cfg.spool.dir, user); !problem.empty())
                throw std::runtime_error(problem);
            switch_to(user);
            spdlog::info("running as user {} (uid {}, gid {})", user.name, user.uid, user.gid);
        }

        relay::spool spool(cfg.spool.dir);
        spool.open();
        for (const auto& id : spool.imports_finished())
            spdlog::info("queue import id={}: queued now (its import from another spool was interrupted)", id);
        for (const auto& problem : spool.import_problems()) spdlog::error("queue import: {}", problem);
        // fsync and crypt(3) wait more than they compute: more threads than cores.
        asio::thread_pool blocking(8);
        // Password checks have threads of their own: guesses cannot take
        // the spool's.
        login_pool logins(cfg.auth.verify_threads, cfg.auth.max_waiting_logins);

        std::unique_ptr<upstream_credentials> credentials;
        if (cfg.uses_oauth()) {
            credentials = std::make_unique<upstream_credentials>(delivery_io.get_executor(), cfg);
        } else if (cfg.upstream.kind == conf::upstream_kind::smtp) {
            credentials = std::make_unique<upstream_credentials>(cfg, nullptr);
            spdlog::info("upstream: {}:{} without authentication (a connector relay)", cfg.upstream.host,
                         cfg.upstream.port);
        } else {
            spdlog::info("upstream: writing messages to directory {}", cfg.upstream.directory.string());
        }

        // [cluster]: the upstream mailboxes' limits shared with the other nodes, in Redis.
        std::unique_ptr<cluster::shared_limits> shared;
        if (cfg.cluster.redis) {
            shared = std::make_unique<cluster::shared_limits>(cfg.cluster);
            spdlog::info("cluster: {} node(s) share the upstream mailboxes' limits through Redis at {}",
                         cfg.cluster.nodes, shared->location());
        }

        relay::delivery delivery(delivery_io, blocking, cfg, spool, credentials.get());
        delivery.share_limits(shared.get());
        session_registry sessions;
        policy::limiter limits;
        // The counters of the last run, before any session counts: a restart
        // does not give an account a fresh quota.
        limits_keeper kept_limits(limits, spool.dir() / "limits.state");
        kept_limits.restore();
        relay_context ctx{cfg, io, blocking, tls, spool, delivery, sessions, limits, policy, {}};
        ctx.shared = shared.get();
        // Messages imported from another node's spool may name upstream
        // mailboxes this one is not set up for: the log says so.
        delivery.set_mailbox_check([&ctx](const std::string& mailbox) {
            const auto current = ctx.policy();
            return policy::upstream_mailbox_configured(ctx.cfg, current.get(), mailbox);
        });

        // Signals are caught before any port opens: a SIGTERM that arrives
        // during start-up is handled like any other.
        asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
        asio::steady_timer watcher(io);
        asio::steady_timer limits_timer(io);
        client_table clients({cfg.server.max_connections_per_client, cfg.server.max_connection_rate_per_client,
                              cfg.auth.max_failures_per_client});
        ctx.clients = &clients;
        account_lockout lockout({cfg.auth.lockout_threshold, std::chrono::seconds(cfg.auth.lockout_seconds)});
        ctx.lockout = &lockout;
        account_activity_log activity;
        ctx.activity = &activity;
        ctx.logins = &logins;
        for (auto& l : listeners) {
            auto ep = l.acceptor.local_endpoint();
            spdlog::info("listening on {}:{} ({})", ep.address().to_string(), ep.port(),
                         l.kind.implicit_tls ? "implicit TLS" : "STARTTLS");
            asio::co_spawn(io, run_listener(ctx, clients, l.acceptor, l.kind), asio::detached);
        }

        for (std::size_t i = 0; i < cfg.device_networks.size(); ++i)
            spdlog::info("device_network[{}]: {}", i, describe(cfg.device_networks[i]));

        policy_reloader reloader(ctx);
        std::optional<console_users_watch> users_watch;
        if (cfg.admin.listen && !cfg.admin.users_file.empty()) users_watch.emplace(ctx);
        asio::co_spawn(io, watch_policy(reloader, users_watch ? &*users_watch : nullptr, watcher), asio::detached);
        asio::co_spawn(io, keep_limits(kept_limits, blocking, limits_timer), asio::detached);
        // `subrelay queue` and `subrelay oauth status` talk to the delivery here.
        control_server control(delivery_io, cfg.spool.dir, [&delivery](boost::json::object request) {
            return delivery.control(std::move(request));
        });
        control.start();
        // /metrics, /healthz and /readyz ([admin] listen), and the web
        // console with [admin] users_file, on the sessions' loop.
        std::optional<admin_server> admin;
        std::optional<relay_console_backend> console_backend;
        std::optional<console::web_console> console;
        if (cfg.admin.listen) {
            auto handlers = relay_admin_handlers(ctx);
            if (!cfg.admin.users_file.empty()) {
                console_backend.emplace(ctx, [&reloader] { reloader.reload("console"); });
                console.emplace(*console_backend);
                handlers.console = [&console](console::request r) { return console->handle(std::move(r)); };
            }
            // Passwords and session cookies cross no network in the clear.
            const bool https = admin_needs_tls(*cfg.admin.listen, console.has_value());
            if (https) handlers.tls = [&ctx] { return ctx.tls.context_for(nullptr); };
            admin.emplace(io, *cfg.admin.listen, std::move(handlers));
            const auto ep = admin->local_endpoint();
            spdlog::info("admin listening on {}:{} (/metrics, /healthz, /readyz{}{})", ep.address().to_string(), ep.port(),
                         console ? ", the web console" : "", https ? "; HTTPS" : "");
            admin->start();
        }
        asio::co_spawn(io, handle_signals(ctx, reloader, signals, listeners, watcher, control, admin ? &*admin : nullptr),
                       asio::detached);

        shutdown_order order(io, delivery_io, blocking, logins, shared.get());
        delivery.start();
        order.start_delivery();
        spdlog::info("subrelay {} ready as {}", SUBRELAY_VERSION, cfg.server.hostname);
        // Every listener is bound and the spool open: systemd's Type=notify may go on.
        notify_ready("ready");
        asio::co_spawn(io, report_status(ctx), asio::detached);
        io.run();
        // No session counts any more: what was counted since the last
        // snapshot is saved now (the timer may be saving one meanwhile).
        kept_limits.save_if_changed();
        spdlog::info("stopped");
        return 0;
    } catch (const tls_setting_error& e) {
        spdlog::critical("cannot start: {}: {}", config_file.string(), e.what());
        return 1;
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        return 1;
    }
}

}  // namespace subrelay::relay
