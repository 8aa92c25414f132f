#pragma once
// The web console's view of the running relay (console::backend): the
// policy in force and its reload, the accounts' activity, the delivery's
// control verbs (run on its thread), blocking work on the relay's pool, and
// sign-in throttling by the same rules as SMTP AUTH: per console user (the
// lockout's failures from unfamiliar addresses) and per client address.
#include <functional>

#include "relay/console/console.hpp"
#include "relay/server/account_lockout.hpp"
#include "relay/server/context.hpp"

namespace subrelay::relay {

class relay_console_backend final : public console::backend {
public:
    // `reload`: takes the policy file in now (the relay's policy reloader).
    relay_console_backend(relay_context& ctx, std::function<void()> reload);

    [[nodiscard]] const conf::config& config() const override { return ctx_.cfg; }
    [[nodiscard]] std::shared_ptr<const policy::engine> policy() const override { return ctx_.policy(); }
    void policy_changed() override { reload_(); }
    [[nodiscard]] console::account_activity activity(std::string_view identity) const override;
    boost::asio::awaitable<void> off_loop(const std::function<void()>& work) override;
    bool sign_in_refused(const std::string& user, const std::string& client) override;
    void sign_in_failed(const std::string& user, const std::string& client) override;
    void sign_in_succeeded(const std::string& user, const std::string& client) override;
    boost::asio::awaitable<boost::json::object> control(boost::json::object request) override;

private:
    relay_context& ctx_;
    std::function<void()> reload_;
    account_lockout lockout_;  // the console users' own: their names are not accounts'
};

}  // namespace subrelay::relay
