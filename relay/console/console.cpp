#include "relay/console/console.hpp"

#include <ctime>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "auth/password.hpp"
#include "policy/audit.hpp"
#include "relay/console/pages.hpp"
#include "relay/spool/durable_file.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::console {

namespace asio = boost::asio;
namespace json = boost::json;

void add_security_headers(response& r) {
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    // Pages show accounts, and some a password once: nothing is kept.
    r.headers.emplace_back("Cache-Control", "no-store");
}

std::string plain_explanation(const policy::engine& engine, const policy::mailbox& m) {
    const auto d = engine.may_authenticate(m);
    const auto& org = engine.file().org;
    const std::string org_state = org.smtp_client_authentication_disabled ? "Disabled" : "Enabled";
    switch (d.source) {
    case policy::auth_source::security_defaults:
        return "Disabled: the organization's security defaults turn SMTP AUTH off for every mailbox, whatever this "
               "mailbox's setting.";
    case policy::auth_source::authentication_policy: {
        const std::string name = m.authentication_policy.empty() ? org.default_authentication_policy : m.authentication_policy;
        return "Disabled: the authentication policy '" + name +
               "' blocks basic authentication for SMTP (AllowBasicAuthSmtp is False), whatever this mailbox's setting.";
    }
    case policy::auth_source::mailbox:
        if (d.allowed)
            return org.smtp_client_authentication_disabled
                       ? "Enabled for this mailbox, which overrides the organization's Disabled."
                       : "Enabled for this mailbox; the organization's setting is Enabled too.";
        return org.smtp_client_authentication_disabled
                   ? "Disabled for this mailbox; the organization's setting is Disabled too."
                   : "Disabled for this mailbox, which overrides the organization's Enabled.";
    case policy::auth_source::organization:
        return "Follows the organization's setting: " + org_state + ".";
    }
    return {};
}

namespace {

// What a client sent, as a log line may hold it: control characters (a
// decoded %0A would start a forged line) become '?', and at most `max` bytes.
std::string log_text(std::string_view s, std::size_t max = 64) {
    std::string out(s.substr(0, max));
    for (char& ch : out)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    return out;
}

// What a redirect's ?done= says (codes, so no text comes from the URL).
std::string notice_for(std::string_view done) {
    if (done == "saved") return "Your changes have been saved.";
    if (done == "deleted") return "The user was deleted.";
    if (done == "queue") return "Done.";
    return {};
}

response redirect(std::string location) {
    response r;
    r.status = 303;
    r.headers.emplace_back("Location", std::move(location));
    return r;
}

response page(unsigned status, std::string body) {
    response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

std::string cookie(std::string_view name, std::string_view value, bool secure, std::string_view extra = {}) {
    std::string c = std::string(name) + "=" + std::string(value) + "; Path=/; HttpOnly; SameSite=Strict";
    if (secure) c += "; Secure";
    if (!extra.empty()) c += "; " + std::string(extra);
    return c;
}

// Lines or commas of a text box: each trimmed, empty ones dropped.
std::vector<std::string> items_of(std::string_view text) {
    std::vector<std::string> out;
    std::string cur;
    auto flush = [&] {
        const auto t = text::trim(cur, " \t\r");
        if (!t.empty()) out.emplace_back(t);
        cur.clear();
    };
    for (const char c : text) {
        if (c == '\n' || c == ',') flush();
        else cur += c;
    }
    flush();
    return out;
}

// A limit field: "" => nullopt (the organization's); else a number.
bool read_limit(const form& f, const char* name, std::optional<std::uint32_t>& out, std::string& error) {
    const auto v = std::string(text::trim(f.get(name), " \t"));
    if (v.empty()) {
        out.reset();
        return true;
    }
    std::uint64_t n = 0;
    for (const char c : v) {
        if (c < '0' || c > '9' || n > 4'000'000'000ULL) {
            error = std::string(name) + ": '" + v + "' is not a number";
            return false;
        }
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n > 4'000'000'000ULL) {
        error = std::string(name) + ": '" + v + "' is too large";
        return false;
    }
    out = static_cast<std::uint32_t>(n);
    return true;
}

// The three limit fields of a form (an account's or the organization's).
struct limit_fields {
    std::optional<std::uint32_t> per_minute, per_day, per_message;
};
bool read_limits(const form& f, limit_fields& out, std::string& error) {
    return read_limit(f, "max_messages_per_minute", out.per_minute, error) &&
           read_limit(f, "max_recipients_per_day", out.per_day, error) &&
           read_limit(f, "max_recipients_per_message", out.per_message, error);
}

// The three-way setting of the email apps form: follow the organization
// ($null), or the Authenticated SMTP box (checked: $false, enabled).
std::optional<bool> smtp_setting(const form& f) {
    if (f.has("follow_org")) return std::nullopt;
    return !f.has("smtp_auth");
}

policy::mailbox* find_mailbox(policy::policy_file& p, std::string_view identity) {
    for (auto& m : p.mailboxes)
        if (text::iequals(m.identity, identity)) return &m;
    return nullptr;
}

std::string not_found(std::string_view identity) {
    return "The operation couldn't be performed because object '" + std::string(identity) + "' couldn't be found.";
}

// A change of one account, refused when it is gone meanwhile.
policy::policy_change account_change(const std::string& identity, std::function<void(policy::mailbox&)> set) {
    return [identity, set = std::move(set)](policy::policy_file& p) -> std::string {
        auto* m = find_mailbox(p, identity);
        if (m == nullptr) return not_found(identity);
        set(*m);
        return "";
    };
}

std::string joined_errors(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) out += (out.empty() ? "" : "\n") + e;
    return out;
}

}  // namespace

struct web_console::call {
    request req;
    std::vector<std::string> path;
    form query;
    form body;
    std::optional<session> s;
    std::shared_ptr<const policy::engine> engine;

    [[nodiscard]] page_frame frame(std::string title, std::string nav) const {
        page_frame f{std::move(title), std::move(nav), s ? &*s : nullptr, notice_for(query.get("done")), ""};
        return f;
    }
    [[nodiscard]] std::string who() const { return s->user + " (console)"; }
};

web_console::web_console(backend& b, std::function<clock::time_point()> now, std::function<std::int64_t()> wall)
    : backend_(b), now_(std::move(now)), wall_(std::move(wall)) {
    if (!wall_) wall_ = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
}

asio::awaitable<response> web_console::handle(request r) {
    call c;
    c.path = path_segments(r.target);
    c.query = parse_form(query_of(r.target));
    c.req = std::move(r);
    response out;
    try {
        out = co_await dispatch(c);
    } catch (const std::exception& e) {
        spdlog::error("console: {} {}: {}", log_text(c.req.method), log_text(c.req.target.substr(0, c.req.target.find('?')), 200),
                      e.what());
        out = page(500, render_page(c.frame("Error", ""), message_main("Something went wrong",
                                                                        "The change was not made. The relay's log says why.")));
    }
    add_security_headers(out);
    co_return out;
}

asio::awaitable<response> web_console::dispatch(call& c) {
    const conf::config& cfg = backend_.config();
    const auto& method = c.req.method;
    const auto& path = c.path;
    if (method == "GET" && path.size() == 1 && path[0] == "console.css") {
        response r = page(200, std::string(stylesheet()));
        r.content_type = "text/css; charset=utf-8";
        co_return r;
    }
    if (method == "GET" && path.size() == 1 && path[0] == "console.js") {
        response r = page(200, std::string(script()));
        r.content_type = "text/javascript; charset=utf-8";
        co_return r;
    }
    if (method != "GET" && method != "POST") {
        response r = page(405, "");
        r.content_type = "text/plain; charset=utf-8";
        r.body = "method not allowed\n";
        r.headers.emplace_back("Allow", "GET, POST");
        co_return r;
    }
    const bool post = method == "POST";
    if (post) {
        const std::string type = text::ascii_lower(c.req.content_type.substr(0, c.req.content_type.find(';')));
        if (text::trim(type, " ") != "application/x-www-form-urlencoded") {
            co_return page(415, render_page(c.frame("Error", ""), message_main("Unsupported form",
                                                                               "Forms are sent URL-encoded.")));
        }
        c.body = parse_form(c.req.body);
    }

    // Who is asking: a session whose user is still in the users file, unchanged.
    const auto loaded = load_users(cfg.admin.users_file);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) spdlog::error("console: {}", e);
        co_return page(500, render_page(c.frame("Error", ""),
                                        message_main("The console is not available", "Its users file does not load; the "
                                                                                     "relay's log says why.")));
    }
    const std::string token = cookie_value(c.req.cookie, session_cookie);
    if (!token.empty()) {
        if (auto s = sessions_.find(token, now_())) {
            const console_user* u = loaded.users.find(s->user);
            if (u != nullptr && u->password_hash == s->password_hash && u->access == s->access) c.s = std::move(s);
            else sessions_.close(token);
        }
    }

    // Signing in and out.
    if (path.size() == 1 && path[0] == "signin") {
        if (!post) {
            if (c.s) co_return redirect("/users");
            // The browser's token, when it has one: another tab's (or a
            // favicon's) sign-in page must not outdate this one's form.
            std::string csrf = cookie_value(c.req.cookie, sign_in_cookie);
            const bool has = csrf.size() == 32 && csrf.find_first_not_of("0123456789abcdef") == std::string::npos;
            if (!has) csrf = random_token(16);
            response r = page(200, sign_in_page(csrf, "", ""));
            r.headers.emplace_back("Set-Cookie", cookie(sign_in_cookie, csrf, c.req.tls, "Max-Age=1800"));
            co_return r;
        }
        const std::string name = c.body.get("user");
        auto again = [&](unsigned status, std::string_view error) {
            const std::string csrf = random_token(16);
            response r = page(status, sign_in_page(csrf, name, error));
            r.headers.emplace_back("Set-Cookie", cookie(sign_in_cookie, csrf, c.req.tls, "Max-Age=1800"));
            return r;
        };
        if (!same_secret(cookie_value(c.req.cookie, sign_in_cookie), c.body.get("csrf")))
            co_return again(403, "The sign-in form has expired. Sign in again.");
        const console_user* u = loaded.users.find(name);
        const std::string key = text::ascii_lower(name);
        bool ok = false;
        if (!backend_.sign_in_refused(key, c.req.client_ip)) {
            const std::string password = c.body.get("password");
            const std::string hash = u != nullptr ? u->password_hash : auth::dummy_hash();
            const std::function<void()> check = [&] { ok = auth::verify_password(password, hash); };
            co_await backend_.off_loop(check);
            ok = ok && u != nullptr;
        }
        if (!ok) {
            backend_.sign_in_failed(key, c.req.client_ip);
            spdlog::warn("console: sign-in as '{}' from {} failed", log_text(name), c.req.client_ip);
            co_return again(403, "Your account or password is incorrect.");
        }
        backend_.sign_in_succeeded(key, c.req.client_ip);
        const session s = sessions_.open(*u, now_());
        spdlog::info("console: {} ({}) signed in from {}", u->name, role_name(u->access), c.req.client_ip);
        response r = redirect("/users");
        r.headers.emplace_back("Set-Cookie", cookie(session_cookie, s.token, c.req.tls));
        r.headers.emplace_back("Set-Cookie", cookie(sign_in_cookie, "", c.req.tls, "Max-Age=0"));
        co_return r;
    }
    if (!c.s) {
        if (!post && path.size() == 1 && path[0] == "favicon.ico") co_return page(404, "");
        if (!post) co_return redirect("/signin");
        co_return page(403, render_page(c.frame("Sign in", ""), message_main("Signed out", "Sign in again, then repeat the change.")));
    }
    if (post && !same_secret(c.body.get("csrf"), c.s->csrf)) {
        spdlog::warn("console: a form from {} for {} without its session's CSRF token was refused", c.req.client_ip,
                     path.empty() ? std::string("/") : log_text(path[0]));
        co_return page(403, render_page(c.frame("Refused", ""),
                                        message_main("The form was refused",
                                                     "It did not come from this console's page, or the page has expired. "
                                                     "Open the page again and repeat the change.")));
    }
    if (path.size() == 1 && path[0] == "signout" && post) {
        sessions_.close(c.s->token);
        spdlog::info("console: {} signed out", c.s->user);
        response r = redirect("/signin");
        r.headers.emplace_back("Set-Cookie", cookie(session_cookie, "", c.req.tls, "Max-Age=0"));
        co_return r;
    }
    if (post && c.s->access != role::admin) {
        co_return page(403, render_page(c.frame("Refused", ""),
                                        message_main("Not allowed", "Readers can see everything and change nothing.")));
    }

    c.engine = backend_.policy();
    if (!c.engine) co_return page(503, render_page(c.frame("Error", ""), message_main("No policy", "The policy is not loaded.")));

    // One edit of the policy, as this console user, then the relay takes it in.
    auto edit = [&](const policy::policy_change& change) -> asio::awaitable<policy::edit_result> {
        policy::edit_result result;
        const std::string who = c.who();
        const std::int64_t now = wall_();
        const std::function<void()> write = [&] {
            try {
                policy::audit_log log(policy::audit_log_path(cfg.spool.dir));
                result = policy::recorded_edit(cfg.policy.file, log, who, now, change);
            } catch (const std::exception& e) {
                result.errors.push_back(e.what());
            }
        };
        co_await backend_.off_loop(write);
        if (result.ok && result.changed) {
            spdlog::info("console: {} changed the policy", c.s->user);
            backend_.policy_changed();
            c.engine = backend_.policy();
        }
        co_return result;
    };
    const auto activity = [this](std::string_view id) { return backend_.activity(id); };
    auto users_page = [&](unsigned status, std::string flyout, std::string error = {}) {
        page_frame f = c.frame("Active users", "users");
        f.error = std::move(error);
        return page(status, render_page(f, users_main(*c.s, *c.engine, cfg, activity, c.query.get("search")), flyout));
    };

    if (path.empty()) co_return redirect("/users");

    if (path[0] == "users") {
        if (path.size() == 1 && !post) co_return users_page(200, "");
        if (path.size() == 2 && path[1] == "new") {
            if (!post) {
                if (c.s->access != role::admin) co_return redirect("/users");
                co_return page(200, render_page(c.frame("Add a user", "users"), add_user_main(*c.s, form{})));
            }
            const std::string identity(text::trim(c.body.get("identity"), " \t"));
            std::string error;
            std::string password;
            if (identity.empty()) error = "Enter a username.";
            if (error.empty()) {
                if (c.body.get("mode") == "typed") {
                    password = c.body.get("password");
                    if (password.empty()) error = "Enter a password, or let one be created.";
                    else if (password != c.body.get("password2")) error = "The passwords don't match.";
                } else {
                    password = auth::generate_password();
                }
            }
            if (error.empty()) {
                std::string hash;
                const std::function<void()> hashing = [&] { hash = auth::hash_password(password); };
                co_await backend_.off_loop(hashing);
                policy::mailbox m;
                m.identity = identity;
                m.password_hash = hash;
                m.smtp_client_authentication_disabled = smtp_setting(c.body);
                m.allowed_senders = items_of(c.body.get("allowed_senders"));
                m.upstream_mailbox = std::string(text::trim(c.body.get("upstream_mailbox"), " \t"));
                const policy::policy_change change = [&](policy::policy_file& p) -> std::string {
                    if (find_mailbox(p, identity) != nullptr) return "The user '" + identity + "' already exists.";
                    p.mailboxes.push_back(m);
                    return "";
                };
                const auto result = co_await edit(change);
                if (result.ok) {
                    const bool typed = c.body.get("mode") == "typed";
                    co_return page(200, render_page(c.frame("User added", "users"),
                                                    user_added_main(identity, typed ? std::string() : password)));
                }
                error = joined_errors(result.errors);
            }
            page_frame f = c.frame("Add a user", "users");
            f.error = error;
            co_return page(400, render_page(f, add_user_main(*c.s, c.body)));
        }
        const policy::mailbox* m = c.engine->find(path[1]);
        if (m == nullptr) {
            co_return page(404, render_page(c.frame("Not found", "users"), message_main("Not found", not_found(path[1]))));
        }
        const std::string identity = m->identity;
        const std::string tab = c.query.get("tab") == "mail" ? "mail" : "account";
        if (path.size() == 2 && !post) co_return users_page(200, account_flyout(*c.s, *c.engine, cfg, *m, tab));
        if (path.size() != 3) co_return page(404, render_page(c.frame("Not found", "users"), message_main("Not found", "No such page.")));
        const std::string& what = path[2];
        if (what == "email-apps") {
            if (!post) co_return users_page(200, email_apps_flyout(*c.s, *c.engine, *m));
            const auto setting = smtp_setting(c.body);
            const policy::policy_change change =
                account_change(identity, [setting](policy::mailbox& x) { x.smtp_client_authentication_disabled = setting; });
            const auto result = co_await edit(change);
            if (result.ok) co_return redirect(user_path(identity) + "/email-apps?done=saved");
            co_return users_page(409, email_apps_flyout(*c.s, *c.engine, *m), joined_errors(result.errors));
        }
        if (what == "settings") {
            if (!post) co_return users_page(200, settings_flyout(*c.s, *c.engine, *m));
            std::string error;
            limit_fields limits;
            if (!read_limits(c.body, limits, error)) co_return users_page(400, settings_flyout(*c.s, *c.engine, *m), error);
            const form& f = c.body;
            const policy::policy_change change = account_change(identity, [&f, limits](policy::mailbox& x) {
                x.allowed_senders = items_of(f.get("allowed_senders"));
                x.allowed_recipient_domains = items_of(f.get("allowed_recipient_domains"));
                x.upstream_mailbox = std::string(text::trim(f.get("upstream_mailbox"), " \t"));
                x.authentication_policy = f.get("authentication_policy");
                x.max_messages_per_minute = limits.per_minute;
                x.max_recipients_per_day = limits.per_day;
                x.max_recipients_per_message = limits.per_message;
            });
            const auto result = co_await edit(change);
            if (result.ok) co_return redirect(user_path(identity) + "?done=saved");
            co_return users_page(409, settings_flyout(*c.s, *c.engine, *m), joined_errors(result.errors));
        }
        if (what == "password") {
            if (!post) co_return users_page(200, password_flyout(*c.s, *m, ""));
            std::string password;
            const bool typed = c.body.get("mode") == "typed";
            if (typed) {
                password = c.body.get("password");
                if (password.empty() || password != c.body.get("password2"))
                    co_return users_page(400, password_flyout(*c.s, *m, ""),
                                         password.empty() ? "Enter a password, or let one be created."
                                                          : "The passwords don't match.");
            } else {
                password = auth::generate_password();
            }
            std::string hash;
            const std::function<void()> hashing = [&] { hash = auth::hash_password(password); };
                co_await backend_.off_loop(hashing);
            const policy::policy_change change =
                account_change(identity, [&hash](policy::mailbox& x) { x.password_hash = hash; });
            const auto result = co_await edit(change);
            if (!result.ok) co_return users_page(409, password_flyout(*c.s, *m, ""), joined_errors(result.errors));
            if (typed) co_return redirect(user_path(identity) + "?done=saved");
            const auto* now_m = c.engine->find(identity);
            co_return users_page(200, password_flyout(*c.s, now_m != nullptr ? *now_m : *m, password));
        }
        if (what == "bindings" && post) {
            const std::string action = c.body.get("action");
            const std::string text(text::trim(c.body.get("network"), " \t"));
            policy::network net;
            std::string why;
            if (!policy::network::parse(text, net, why))
                co_return users_page(400, account_flyout(*c.s, *c.engine, cfg, *m, "account"),
                                     "'" + text + "' " + why);
            const auto listeners = items_of(c.body.get("listeners"));
            for (const auto& l : listeners) {
                conf::listen_address address;
                if (l != "submission" && l != "submissions" && !conf::parse_listen_address(l, address, why))
                    co_return users_page(400, account_flyout(*c.s, *c.engine, cfg, *m, "account"),
                                         "Listener '" + l + "': expected submission, submissions or HOST:PORT.");
            }
            const auto same = [&net](const policy::binding& b) {
                return b.net.address == net.address && b.net.prefix == net.prefix;
            };
            const policy::policy_change change = [&](policy::policy_file& p) -> std::string {
                const auto it = std::find_if(p.bindings.begin(), p.bindings.end(), same);
                if (action == "remove") {
                    if (it == p.bindings.end() || !text::iequals(it->identity, identity)) return not_found(text);
                    p.bindings.erase(it);
                    return "";
                }
                if (action != "new") return "Unknown action.";
                if (find_mailbox(p, identity) == nullptr) return not_found(identity);
                if (it != p.bindings.end())
                    return "A relay binding for " + it->network_text + " already exists (identity " + it->identity + ").";
                policy::binding b;
                b.network_text = text;
                b.net = net;
                b.identity = identity;
                b.listeners = listeners;
                p.bindings.push_back(std::move(b));
                return "";
            };
            const auto result = co_await edit(change);
            if (result.ok) co_return redirect(user_path(identity) + "?done=saved");
            co_return users_page(409, account_flyout(*c.s, *c.engine, cfg, *m, "account"), joined_errors(result.errors));
        }
        if (what == "delete") {
            if (!post) co_return users_page(200, delete_flyout(*c.s, *m));
            const policy::policy_change change = [&](policy::policy_file& p) -> std::string {
                auto it = std::find_if(p.mailboxes.begin(), p.mailboxes.end(),
                                       [&](const policy::mailbox& x) { return text::iequals(x.identity, identity); });
                if (it == p.mailboxes.end()) return not_found(identity);
                for (const auto& b : p.bindings)
                    if (text::iequals(b.identity, identity))
                        return "'" + it->identity + "' is used by the relay binding for " + b.network_text +
                               "; remove the binding first (subrelay remove-relaybinding -Network " + b.network_text + ").";
                p.mailboxes.erase(it);
                return "";
            };
            const auto result = co_await edit(change);
            if (result.ok) co_return redirect("/users?done=deleted");
            co_return users_page(409, delete_flyout(*c.s, *m), joined_errors(result.errors));
        }
        co_return page(404, render_page(c.frame("Not found", "users"), message_main("Not found", "No such page.")));
    }

    if (path[0] == "org") {
        auto org_page = [&](unsigned status, std::string error = {}) {
            page_frame f = c.frame("Org settings", "org");
            f.error = std::move(error);
            return page(status, render_page(f, org_main(*c.s, *c.engine)));
        };
        if (path.size() == 1 && !post) co_return org_page(200);
        if (path.size() != 2 || !post) co_return page(404, render_page(c.frame("Not found", "org"), message_main("Not found", "No such page.")));
        policy::policy_change change;
        std::string error;
        if (path[1] == "smtp-auth") {
            const bool disabled = !c.body.has("smtp_auth");
            change = [disabled](policy::policy_file& p) {
                p.org.smtp_client_authentication_disabled = disabled;
                return std::string();
            };
        } else if (path[1] == "security-defaults") {
            const bool on = c.body.has("security_defaults");
            change = [on](policy::policy_file& p) {
                p.org.security_defaults = on;
                return std::string();
            };
        } else if (path[1] == "default-policy") {
            const std::string name = c.body.get("policy");
            change = [name](policy::policy_file& p) -> std::string {
                if (!name.empty()) {
                    auto it = std::find_if(p.authentication_policies.begin(), p.authentication_policies.end(),
                                           [&](const auto& ap) { return text::iequals(ap.name, name); });
                    if (it == p.authentication_policies.end()) return not_found(name);
                    p.org.default_authentication_policy = it->name;
                } else {
                    p.org.default_authentication_policy.clear();
                }
                return "";
            };
        } else if (path[1] == "limits") {
            limit_fields limits;
            if (!read_limits(c.body, limits, error)) co_return org_page(400, error);
            const bool check_from = c.body.has("check_header_from");
            change = [=](policy::policy_file& p) {
                p.org.max_messages_per_minute = limits.per_minute.value_or(0);
                p.org.max_recipients_per_day = limits.per_day.value_or(0);
                p.org.max_recipients_per_message = limits.per_message.value_or(0);
                p.org.check_header_from = check_from;
                return std::string();
            };
        } else if (path[1] == "policies") {
            const std::string action = c.body.get("action");
            const std::string name(text::trim(c.body.get("name"), " \t"));
            if (name.empty()) co_return org_page(400, "Enter the policy's name.");
            const bool allow = c.body.has("allow_smtp");
            change = [action, name, allow](policy::policy_file& p) -> std::string {
                auto it = std::find_if(p.authentication_policies.begin(), p.authentication_policies.end(),
                                       [&](const auto& ap) { return text::iequals(ap.name, name); });
                if (action == "new") {
                    if (it != p.authentication_policies.end()) return "The authentication policy '" + name + "' already exists.";
                    p.authentication_policies.push_back({name, allow});
                    return "";
                }
                if (it == p.authentication_policies.end()) return not_found(name);
                if (action == "allow" || action == "block") {
                    it->allow_basic_auth_smtp = action == "allow";
                    return "";
                }
                if (action != "remove") return "Unknown action.";
                if (text::iequals(p.org.default_authentication_policy, it->name))
                    return "The authentication policy '" + it->name + "' is the organization's default; choose another default first.";
                for (const auto& m : p.mailboxes)
                    if (text::iequals(m.authentication_policy, it->name))
                        return "The authentication policy '" + it->name + "' is assigned to " + m.identity + "; assign another first.";
                p.authentication_policies.erase(it);
                return "";
            };
        } else {
            co_return page(404, render_page(c.frame("Not found", "org"), message_main("Not found", "No such page.")));
        }
        const auto result = co_await edit(change);
        if (result.ok) co_return redirect("/org?done=saved");
        co_return org_page(409, joined_errors(result.errors));
    }

    if (path[0] == "mailflow") {
        // The queue and the token sources as the delivery has them now.
        // (Strings by reference to named ones: no temporaries in a co_await expression.)
        const std::string none;
        auto mail_flow_page = [&](unsigned status_code, const std::string& error,
                                  const std::string& flyout) -> asio::awaitable<response> {
            json::object status_request;
            status_request["verb"] = "status";
            json::object oauth_request;
            oauth_request["verb"] = "oauth-status";
            const json::object status = co_await backend_.control(std::move(status_request));
            const json::object tokens = co_await backend_.control(std::move(oauth_request));
            page_frame f = c.frame("Mail flow", "mailflow");
            f.error = error;
            co_return page(status_code, render_page(f, mail_flow_main(*c.s, status, tokens), flyout));
        };
        if (path.size() == 2 && path[1] == "queue" && post) {
            const std::string action = c.body.get("action");
            if (action != "retry" && action != "hold" && action != "release" && action != "delete")
                co_return page(400, render_page(c.frame("Mail flow", "mailflow"), message_main("Unknown action", action)));
            json::array ids;
            for (const auto& id : c.body.every("id")) ids.emplace_back(id);
            if (ids.empty()) co_return redirect("/mailflow");
            json::object request;
            request["verb"] = action;
            request["ids"] = std::move(ids);
            const json::object reply = co_await backend_.control(std::move(request));
            std::string failures;
            if (const auto* results = reply.if_contains("results"); results != nullptr && results->is_array())
                for (const auto& v : results->get_array())
                    if (v.is_object()) {
                        const auto* ok = v.get_object().if_contains("ok");
                        if (ok == nullptr || !ok->is_bool() || !ok->get_bool()) {
                            const auto* t = v.get_object().if_contains("text");
                            failures += std::string(failures.empty() ? "" : "\n") +
                                        (t != nullptr && t->is_string() ? std::string(t->get_string()) : "failed");
                        }
                    }
            if (const auto* ok = reply.if_contains("ok"); ok != nullptr && ok->is_bool() && !ok->get_bool()) {
                const auto* e = reply.if_contains("error");
                failures = e != nullptr && e->is_string() ? std::string(e->get_string()) : "the queue did not answer";
            }
            spdlog::info("console: {} asked the queue to {} {} message(s)", c.s->user, action, c.body.every("id").size());
            if (failures.empty()) co_return redirect("/mailflow?done=queue");
            c.query = form{};
            // Shown with the queue as it is now.
            co_return co_await mail_flow_page(409, failures, none);
        }
        std::string flyout;
        if (path.size() == 2 && !post) {
            // One message, as `subrelay queue show` tells it.
            const std::string& id = path[1];
            std::optional<queued_message_view> shown;
            std::string error;
            const std::function<void()> reading = [&] {
                if (!relay::valid_queue_id(id)) return;
                try {
                    const relay::spool spool(cfg.spool.dir);
                    auto msg = spool.open_message(id);
                    relay::queue_state st;
                    if (auto loaded_state = relay::state_store(cfg.spool.dir).load(id)) st = *loaded_state;
                    queued_message_view v;
                    const auto& env = msg.envelope;
                    v.id = env.id;
                    v.sender = env.sender;
                    v.identity = env.identity;
                    v.upstream_mailbox = env.upstream_mailbox;
                    v.client = env.client_address;
                    v.received_at = env.received_at;
                    v.size = msg.size();
                    v.left = relay::recipients_left(env.recipients, st);
                    v.delivered = st.delivered;
                    for (const auto& f : st.failed) v.failed.emplace_back(f.address, f.reply);
                    v.attempts = st.attempts;
                    v.next_attempt = st.next_attempt;
                    v.held = st.held;
                    v.last_reply = st.last_reply;
                    v.hint = st.hint;
                    v.history = st.history;
                    const std::string& head = msg.head();
                    auto end = head.find("\r\n\r\n");
                    if (end == std::string::npos) end = head.find("\n\n");
                    v.header = head.substr(0, end);
                    std::erase(v.header, '\r');
                    shown = std::move(v);
                } catch (const std::exception& e) {
                    error = e.what();  // delivered meanwhile, most likely
                }
            };
            co_await backend_.off_loop(reading);
            if (!shown) {
                if (!error.empty()) spdlog::info("console: queue show {}: {}", log_text(id), error);
                co_return page(404, render_page(c.frame("Not found", "mailflow"),
                                                message_main("Not found", "No message " + id + " in the queue.")));
            }
            flyout = message_flyout(*c.s, *shown);
        } else if (path.size() != 1 || post) {
            co_return page(404, render_page(c.frame("Not found", "mailflow"), message_main("Not found", "No such page.")));
        }
        co_return co_await mail_flow_page(200, none, flyout);
    }

    if (path[0] == "audit" && path.size() == 1 && !post) {
        std::vector<policy::audit_entry> entries;
        std::string error;
        const std::function<void()> reading = [&] {
            try {
                entries = policy::read_audit_log(policy::audit_log_path(cfg.spool.dir));
            } catch (const std::exception& e) {
                error = e.what();
            }
        };
        co_await backend_.off_loop(reading);
        std::int64_t since = 0;
        const std::string since_text = c.query.get("since");
        if (!since_text.empty() && !policy::parse_audit_since(since_text, since))
            error = "Since: give a UTC date or time, 2026-12-05 or 2026-12-05T10:30:00Z.";
        page_frame f = c.frame("Audit log", "audit");
        f.error = error;
        co_return page(error.empty() ? 200 : 400,
                       render_page(f, audit_main(entries, c.query.get("identity"), since_text, since)));
    }

    co_return page(404, render_page(c.frame("Not found", ""), message_main("Not found", "No such page.")));
}

}  // namespace subrelay::console
