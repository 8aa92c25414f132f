#pragma once
// The web console: the Microsoft 365 admin center's pages for what subrelay
// does (Active users with each account's Manage email apps flyout, Org
// settings, Mail flow, Audit log), as server-rendered HTML forms that work
// without JavaScript. The admin listener hands it every request that is not
// /metrics, /healthz or /readyz.
//
// Every change goes through the policy's one editing path (lock, re-read,
// validate, atomic write: policy/edit.hpp), recorded in the audit log under
// the console user's name with the cmdlet that makes the same change, and
// the relay takes the new policy in at once. Sign-in is checked against
// [admin] users_file (relay/console/users.hpp) on every request, so a user
// removed or changed there loses their sessions. Readers see everything and
// change nothing; every form carries its session's CSRF token; every
// response forbids framing and caching.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include "conf/config.hpp"
#include "policy/policy.hpp"
#include "relay/console/http.hpp"
#include "relay/console/sessions.hpp"

namespace subrelay::console {

// What the relay knows of an account besides its policy.
struct account_activity {
    std::optional<std::int64_t> last_sign_in;  // unix seconds; nullopt: none since the relay started
    std::uint64_t messages_today = 0;          // accepted since midnight (local time)
};

// What the console asks of the running relay (relay/server implements it;
// tests bring a fake).
class backend {
public:
    virtual ~backend() = default;
    [[nodiscard]] virtual const conf::config& config() const = 0;
    // The policy in force.
    [[nodiscard]] virtual std::shared_ptr<const policy::engine> policy() const = 0;
    // The policy file was changed: take it in now.
    virtual void policy_changed() = 0;
    [[nodiscard]] virtual account_activity activity(std::string_view identity) const = 0;
    // Runs blocking work (crypt(3), fsync) away from the event loop and resumes when it is done.
    virtual boost::asio::awaitable<void> off_loop(const std::function<void()>& work) = 0;
    // Failed sign-ins are throttled as SMTP AUTH failures are: per user
    // (Smart Lockout) and per client address. Whether a sign-in is refused
    // without checking its password; a wrong password; a success.
    virtual bool sign_in_refused(const std::string& user, const std::string& client) = 0;
    virtual void sign_in_failed(const std::string& user, const std::string& client) = 0;
    virtual void sign_in_succeeded(const std::string& user, const std::string& client) = 0;
    // The delivery's control verbs (relay/server/control.hpp): status,
    // oauth-status, retry, hold, release, delete.
    virtual boost::asio::awaitable<boost::json::object> control(boost::json::object request) = 0;
};

class web_console {
public:
    using clock = session_store::clock;
    explicit web_console(backend& b, std::function<clock::time_point()> now = [] { return clock::now(); },
                         std::function<std::int64_t()> wall = nullptr);

    boost::asio::awaitable<response> handle(request r);

    // Cookie names.
    static constexpr const char* session_cookie = "subrelay_session";
    static constexpr const char* sign_in_cookie = "subrelay_signin";  // the sign-in form's CSRF token
    static constexpr std::size_t max_body = 64 * 1024;

private:
    struct call;  // one request being answered
    boost::asio::awaitable<response> dispatch(call& c);

    backend& backend_;
    std::function<clock::time_point()> now_;
    std::function<std::int64_t()> wall_;
    session_store sessions_;
};

// The security headers every console response carries.
void add_security_headers(response& r);

// In plain words, what decides SMTP AUTH for an account: "Enabled for this
// mailbox, which overrides the organization's Disabled."
std::string plain_explanation(const policy::engine& engine, const policy::mailbox& m);

}  // namespace subrelay::console
