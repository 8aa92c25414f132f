#include "auth/device_code.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <spdlog/spdlog.h>

#include "auth/https_client.hpp"
#include "auth/oauth_error.hpp"
#include "auth/token_provider.hpp"

namespace subrelay::auth {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view device_grant_type = "urn:ietf:params:oauth:grant-type:device_code";
// RFC 8628 3.2: the interval when the server names none.
constexpr std::chrono::seconds default_interval{5};
// RFC 8628 3.5: what each slow_down adds to the interval.
constexpr std::chrono::seconds slow_down_step{5};
// After a poll without any answer the interval doubles (RFC 8628 3.5), up to this ...
constexpr std::chrono::seconds max_backoff_interval{60};
// ... and after this many such polls in a row the sign-in is given up.
constexpr unsigned max_unanswered_polls = 3;
// Bounds on the server's interval and expires_in: no overflow, no nonsense.
constexpr std::int64_t max_seconds = 24 * 3600;
// Longest error_description line quoted in an error.
constexpr std::size_t max_description = 300;

// ---- messages --------------------------------------------------------------

// The first line, without control characters, at most max_description bytes.
std::string first_line(std::string_view text) {
    std::string line(text.substr(0, text.find_first_of("\r\n")));
    std::replace_if(
        line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; }, ' ');
    if (line.size() > max_description) {
        line.resize(max_description);
        line += "...";
    }
    return line;
}

std::string string_field(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) return std::string(it->value().get_string());
    return {};
}

// Token values in an answer, to be kept out of messages.
void add_token_values(const json::object& o, std::vector<std::string>& secrets) {
    for (std::string_view key : {"access_token", "refresh_token", "id_token", "device_code"}) {
        if (auto value = string_field(o, key); !value.empty()) secrets.push_back(std::move(value));
    }
}

std::optional<json::object> parse_object(std::string_view body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.get_object());
}

// "HTTP 400: AADSTS70020: expired_token: first line of the description",
// with the secrets (and any token in the body) taken out.
std::string describe_error_answer(const http_response& res, const oauth_diagnosis& d,
                                  std::vector<std::string>& secrets) {
    std::string what = "HTTP " + std::to_string(res.status);
    if (d.aadsts) what += ": AADSTS" + std::to_string(*d.aadsts);
    if (!d.error.empty()) what += ": " + first_line(d.error);
    if (const auto o = parse_object(res.body)) {
        add_token_values(*o, secrets);
        std::string description = first_line(string_field(*o, "error_description"));
        // The code is already named; the rest of the line says what it means.
        if (d.aadsts) {
            const std::string prefix = "AADSTS" + std::to_string(*d.aadsts) + ": ";
            if (description.starts_with(prefix)) description.erase(0, prefix.size());
        }
        if (!description.empty()) what += ": " + description;
    }
    return redact(std::move(what), secrets);
}

// The diagnosis of an error body (the hint of a device-flow ending) without
// a request behind it.
std::string hint_for(std::string_view error) {
    json::object o;
    o["error"] = error;
    return diagnose_token_failure(400, json::serialize(o)).hint;
}

// ---- settings and answers ---------------------------------------------------

void require_https(const conf::oauth_config& profile, std::string_view key, const std::string& url) {
    if (url.empty()) throw std::runtime_error(profile_key(profile, key) + " is not set");
    const auto parsed = boost::urls::parse_uri(url);
    if (!parsed || parsed->scheme_id() != boost::urls::scheme::https)
        throw std::runtime_error(profile_key(profile, key) + " is not an https:// URL");
}

std::chrono::seconds timeout_of(const conf::oauth_config& profile) {
    return std::chrono::seconds(profile.timeout_seconds != 0 ? profile.timeout_seconds : 30);
}

// A number of seconds: a JSON number, or digits in a string (Microsoft's
// older endpoints send "900"). nullopt when it is neither or out of range.
std::optional<std::int64_t> seconds_value(const json::value& v) {
    std::optional<std::int64_t> n;
    if (v.is_int64()) {
        n = v.get_int64();
    } else if (v.is_uint64()) {
        n = static_cast<std::int64_t>(std::min<std::uint64_t>(v.get_uint64(), max_seconds + 1));
    } else if (v.is_double()) {
        const double d = v.get_double();
        if (d >= 0 && d <= static_cast<double>(max_seconds)) n = static_cast<std::int64_t>(d);
    } else if (v.is_string()) {
        const std::string_view text = v.get_string();
        const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
        if (!text.empty() && text.size() <= 6 && std::all_of(text.begin(), text.end(), digit))
            n = std::stoll(std::string(text));
    }
    if (!n || *n < 0 || *n > max_seconds) return std::nullopt;
    return n;
}

// The device authorization endpoint's 200 answer. Names the field that is
// wrong, never its value.
device_authorization read_authorization(const http_response& res, const std::string& endpoint) {
    const std::string prefix = "device authorization at " + endpoint + ": HTTP 200 with ";
    const auto o = parse_object(res.body);
    if (!o) throw std::runtime_error(prefix + "a body that is not a JSON object");
    device_authorization a;
    a.device_code = string_field(*o, "device_code");
    a.user_code = string_field(*o, "user_code");
    a.verification_uri = string_field(*o, "verification_uri");
    if (a.verification_uri.empty()) a.verification_uri = string_field(*o, "verification_url");  // Google
    a.message = string_field(*o, "message");
    if (a.device_code.empty()) throw std::runtime_error(prefix + "no device_code");
    if (a.user_code.empty()) throw std::runtime_error(prefix + "no user_code");
    if (a.verification_uri.empty()) throw std::runtime_error(prefix + "no verification_uri");
    if (auto it = o->find("expires_in"); it != o->end()) {
        const auto n = seconds_value(it->value());
        if (!n || *n == 0) throw std::runtime_error(prefix + "an invalid expires_in");
        a.expires_in = std::chrono::seconds(*n);
    }
    if (auto it = o->find("interval"); it != o->end()) {
        const auto n = seconds_value(it->value());
        if (!n) throw std::runtime_error(prefix + "an invalid interval");
        // 0 would mean polling without pause: the default instead.
        a.interval = *n > 0 ? std::chrono::seconds(*n) : default_interval;
    }
    return a;
}

// The device authorization endpoint refused: the diagnosis, and for Google's
// "Invalid device flow scope" what it means.
[[noreturn]] void fail_authorization(const conf::oauth_config& profile, const std::string& endpoint,
                                     const http_response& res) {
    oauth_diagnosis d = diagnose_token_failure(res.status, res.body);
    std::vector<std::string> secrets;
    const std::string what =
        "device authorization at " + endpoint + " failed: " + describe_error_answer(res, d, secrets);
    if (profile.provider == conf::oauth_provider::google && d.error == "invalid_scope") {
        // Google's device flow serves a short list of scopes, and Gmail's are
        // not on it: no setting here can change that.
        d.kind = oauth_failure::configuration;
        d.hint = "Google's device sign-in does not grant the scope " + first_line(profile.scope) + " (" +
                 profile_key(profile, "scope") +
                 "); it serves only a short list of scopes, without Gmail's: use a service account with "
                 "domain-wide delegation (" + profile_key(profile, "service_account_file") + ") instead";
    }
    throw token_error(what, d.kind, redact(std::move(d.hint), secrets));
}

// The refresh token from the token endpoint's 200 answer.
std::string read_refresh_token(const conf::oauth_config& profile, const http_response& res,
                               const std::string& endpoint) {
    const std::string prefix = "device sign-in at " + endpoint + ": HTTP 200 ";
    const auto o = parse_object(res.body);
    if (!o) throw std::runtime_error(prefix + "with a body that is not a JSON object");
    std::string token = string_field(*o, "refresh_token");
    if (token.empty()) {
        std::string what = prefix + "without a refresh_token, so the sign-in cannot be kept";
        if (profile.provider != conf::oauth_provider::google) {
            what += ": the identity platform issues one only when the scope includes offline_access (" +
                    profile_key(profile, "scope") + " is \"" + first_line(profile.scope) +
                    "\"); add offline_access and sign in again";
        }
        throw std::runtime_error(what);
    }
    return token;
}

asio::awaitable<void> steady_sleep(std::chrono::milliseconds duration) {
    const auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace

asio::awaitable<device_authorization> start_device_authorization(const conf::oauth_config& profile) {
    require_https(profile, "device_code_url", profile.device_code_url);
    if (profile.client_id.empty()) throw std::runtime_error(profile_key(profile, "client_id") + " is not set");
    if (profile.scope.empty()) throw std::runtime_error(profile_key(profile, "scope") + " is not set");
    const std::string url = profile.device_code_url;
    const std::string endpoint = describe_endpoint(url, "the endpoint");
    const std::filesystem::path ca_file = profile.ca_file;
    const std::chrono::seconds timeout = timeout_of(profile);
    form_fields fields{{"client_id", profile.client_id}, {"scope", profile.scope}};

    std::optional<http_response> res;
    std::string transport_error;
    try {
        res = co_await https_post_form(url, std::move(fields), ca_file, timeout);
    } catch (const std::exception& e) {
        transport_error = e.what();
    }
    if (!res) {
        throw token_error("device authorization at " + endpoint + " failed: " + transport_error,
                          oauth_failure::retryable,
                          "the device authorization endpoint did not answer (timeout, connection or TLS failure): "
                          "check the network path to " + profile_key(profile, "device_code_url") + " and " +
                          profile_key(profile, "ca_file"));
    }
    if (res->status != 200) fail_authorization(profile, endpoint, *res);
    co_return read_authorization(*res, endpoint);
}

asio::awaitable<std::string> poll_for_refresh_token(const conf::oauth_config& profile, const device_authorization& a,
                                                    std::string client_secret, device_poll_options opts) {
    require_https(profile, "token_url", profile.token_url);
    if (profile.client_id.empty()) throw std::runtime_error(profile_key(profile, "client_id") + " is not set");
    if (a.device_code.empty()) throw std::runtime_error("device sign-in: no device code to poll for");
    if (profile.provider == conf::oauth_provider::google && client_secret.empty()) {
        // Google's "TVs and Limited Input devices" clients have a secret, and
        // its token endpoint refuses the device code without it.
        throw std::runtime_error(profile_key(profile, "") +
                                 ": Google's device sign-in needs the client secret: set client_secret_file, "
                                 "client_secret_env or client_secret_credential");
    }
    if (!opts.sleep) opts.sleep = steady_sleep;
    if (!opts.now) opts.now = [] { return clock_type::now(); };

    const std::string url = profile.token_url;
    const std::string endpoint = describe_endpoint(url, "the endpoint");
    const std::filesystem::path ca_file = profile.ca_file;
    const std::chrono::seconds timeout = timeout_of(profile);
    const std::string prefix = "device sign-in at " + endpoint + " failed: ";
    std::vector<std::string> secrets{a.device_code, client_secret};

    // The codes die expires_in after they were issued; counted from here,
    // which is a moment later, so the last poll may meet expired_token.
    const clock_type::time_point deadline = opts.now() + a.expires_in;
    std::chrono::seconds interval = a.interval > std::chrono::seconds::zero() ? a.interval : default_interval;
    unsigned unanswered = 0;
    for (;;) {
        if (opts.now() + interval > deadline) {
            throw token_error(prefix + "the sign-in was not finished within " + std::to_string(a.expires_in.count()) +
                                  " s, when the code expired",
                              oauth_failure::sign_in_needed, hint_for("expired_token"));
        }
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(interval);
        co_await opts.sleep(wait);

        form_fields fields{{"grant_type", std::string(device_grant_type)},
                           {"client_id", profile.client_id},
                           {"device_code", a.device_code}};
        if (!client_secret.empty()) fields.emplace_back("client_secret", client_secret);
        std::optional<http_response> res;
        std::string transport_error;
        try {
            res = co_await https_post_form(url, std::move(fields), ca_file, timeout);
        } catch (const std::exception& e) {
            transport_error = redact(e.what(), secrets);
        }
        if (!res) {
            if (++unanswered >= max_unanswered_polls) {
                throw token_error(prefix + transport_error, oauth_failure::retryable,
                                  "the token endpoint did not answer " + std::to_string(unanswered) +
                                      " times in a row: check the network path to " +
                                      profile_key(profile, "token_url") + ", then run `subrelay oauth login` again");
            }
            interval = std::min(interval * 2, std::max(interval, max_backoff_interval));
            spdlog::warn("device sign-in at {}: {}; polling again in {} s", endpoint, transport_error,
                         interval.count());
            continue;
        }
        unanswered = 0;
        if (res->status == 200) co_return read_refresh_token(profile, *res, endpoint);

        oauth_diagnosis d = diagnose_token_failure(res->status, res->body);
        if (d.error == "authorization_pending") continue;
        if (d.error == "slow_down") {
            interval += slow_down_step;
            spdlog::debug("device sign-in at {}: slow_down; polling every {} s", endpoint, interval.count());
            continue;
        }
        const std::string what = prefix + describe_error_answer(*res, d, secrets);
        if (d.error == "expired_token" || d.error == "authorization_declined") {
            d.kind = oauth_failure::sign_in_needed;  // diagnose_token_failure says so too; this is the contract
        } else if (d.error == "access_denied") {
            // Google's (and RFC 8628's) name for a declined sign-in.
            d.kind = oauth_failure::sign_in_needed;
            d.hint = hint_for("authorization_declined");
        }
        throw token_error(what, d.kind, redact(std::move(d.hint), secrets));
    }
}

}  // namespace subrelay::auth
