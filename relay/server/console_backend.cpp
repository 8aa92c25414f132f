#include "relay/server/console_backend.hpp"

#include <ctime>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "relay/delivery/blocking.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/server/account_activity.hpp"
#include "relay/server/client_table.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;

relay_console_backend::relay_console_backend(relay_context& ctx, std::function<void()> reload)
    : ctx_(ctx), reload_(std::move(reload)),
      lockout_({ctx.cfg.auth.lockout_threshold, std::chrono::seconds(ctx.cfg.auth.lockout_seconds)}) {}

console::account_activity relay_console_backend::activity(std::string_view identity) const {
    if (ctx_.activity == nullptr) return {};
    return ctx_.activity->of(identity, static_cast<std::int64_t>(std::time(nullptr)));
}

asio::awaitable<void> relay_console_backend::off_loop(const std::function<void()>& work) {
    co_await run_blocking(ctx_.blocking, work);
}

bool relay_console_backend::sign_in_refused(const std::string& user, const std::string& client) {
    const auto now = std::chrono::steady_clock::now();
    return (ctx_.clients != nullptr && ctx_.clients->blocked(client, now)) || lockout_.refuses(user, client, now);
}

void relay_console_backend::sign_in_failed(const std::string& user, const std::string& client) {
    const auto now = std::chrono::steady_clock::now();
    if (ctx_.clients != nullptr) ctx_.clients->auth_failed(client, now);
    if (const auto lock = lockout_.failed(user, client, now); lock.count() > 0)
        spdlog::warn("console: user '{}' locked for {} s after failed sign-ins from unfamiliar addresses; its "
                     "familiar addresses may still sign in",
                     user.substr(0, 64), std::chrono::duration_cast<std::chrono::seconds>(lock).count());
}

void relay_console_backend::sign_in_succeeded(const std::string& user, const std::string& client) {
    if (ctx_.clients != nullptr) ctx_.clients->auth_succeeded(client);
    lockout_.succeeded(user, client);
}

asio::awaitable<boost::json::object> relay_console_backend::control(boost::json::object request) {
    boost::json::object reply =
        co_await asio::co_spawn(ctx_.delivery.executor(), ctx_.delivery.control(std::move(request)), asio::use_awaitable);
    co_return reply;
}

}  // namespace subrelay::relay
