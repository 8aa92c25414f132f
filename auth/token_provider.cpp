#include "auth/token_provider.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/system/system_error.hpp>
#include <boost/url.hpp>
#include <spdlog/spdlog.h>

#include "auth/https_client.hpp"

namespace subrelay::auth {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

// Tokens are renewed this long before they expire...
constexpr std::chrono::seconds refresh_margin{300};
// ...unless they live shorter than this, then at half their life.
constexpr std::chrono::seconds short_lifetime{600};
// expires_in is RECOMMENDED, not required (RFC 6749 5.1): assume a short life.
constexpr std::int64_t default_expires_in = 600;
// Longest error_description line quoted in an error.
constexpr std::size_t max_description = 300;

// ---- single-flight state ---------------------------------------------------

// One request to the endpoint and everyone waiting for it. The timer never
// expires: cancelling it wakes all waiters once the result is in.
struct fetch_state {
    explicit fetch_state(const asio::any_io_executor& ex) : done(ex, clock_type::time_point::max()) {}
    asio::steady_timer done;
    bool finished = false;
    std::optional<access_token> token;
    std::exception_ptr error;
};

struct provider_state {
    asio::any_io_executor ex;
    conf::oauth_config cfg;
    std::string secret;
    std::string endpoint;  // token_url without query, for messages
    std::optional<access_token> cached;
    clock_type::time_point refresh_at{};
    std::shared_ptr<fetch_state> inflight;
    std::size_t fetches = 0;
};

// ---- messages --------------------------------------------------------------

std::string describe_endpoint(const std::string& url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return "the token endpoint";
    }
    return std::string(parsed->encoded_host_and_port()) + std::string(parsed->encoded_path());
}

// A message never carries the secret, even if a server were to echo it.
std::string redact(std::string text, const std::string& secret) {
    if (secret.empty()) {
        return text;
    }
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
        text.replace(pos, secret.size(), "[redacted]");
    }
    return text;
}

[[noreturn]] void fail(const provider_state& s, const std::string& what, bool transient) {
    throw token_error(redact("token request to " + s.endpoint + " failed: " + what, s.secret), transient);
}

std::string first_line(std::string_view text) {
    const auto end = text.find_first_of("\r\n");
    std::string line(text.substr(0, end));
    if (line.size() > max_description) {
        line.resize(max_description);
        line += "...";
    }
    return line;
}

// "AADSTS7000215" from a description, or "" if there is none.
std::string find_aadsts(std::string_view text) {
    const auto pos = text.find("AADSTS");
    if (pos == std::string_view::npos) {
        return {};
    }
    std::size_t end = pos + 6;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) {
        ++end;
    }
    return end > pos + 6 ? std::string(text.substr(pos, end - pos)) : std::string{};
}

const json::object* as_object(const json::value& v) { return v.is_object() ? &v.get_object() : nullptr; }

std::string string_field(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) {
        return std::string(it->value().get_string());
    }
    return {};
}

// Transient: worth retrying later without changing the configuration.
bool transient_status(int status, const std::string& error) {
    return status >= 500 || status == 429 || status == 408 || error == "temporarily_unavailable" ||
           error == "server_error";
}

[[noreturn]] void fail_with_error_response(const provider_state& s, const http_response& res) {
    std::string what = "HTTP " + std::to_string(res.status);
    std::string error;
    boost::system::error_code ec;
    const json::value v = json::parse(res.body, ec);
    if (!ec) {
        if (const auto* o = as_object(v)) {
            error = string_field(*o, "error");
            const std::string description = first_line(string_field(*o, "error_description"));
            std::string code = find_aadsts(description);
            if (code.empty()) {
                if (auto it = o->find("error_codes");
                    it != o->end() && it->value().is_array() && !it->value().get_array().empty()) {
                    const auto& first = it->value().get_array().front();
                    if (first.is_int64()) {
                        code = "AADSTS" + std::to_string(first.get_int64());
                    } else if (first.is_uint64()) {
                        code = "AADSTS" + std::to_string(first.get_uint64());
                    }
                }
                if (!code.empty()) {
                    what += ": " + code;
                }
            }
            if (!error.empty()) {
                what += ": " + error;
            }
            if (!description.empty()) {
                what += ": " + description;
            }
        }
    }
    fail(s, what, transient_status(res.status, error));
}

std::optional<std::int64_t> parse_expires_in(const json::value& v) {
    if (v.is_int64()) {
        return v.get_int64();
    }
    if (v.is_uint64()) {
        return static_cast<std::int64_t>(std::min<std::uint64_t>(v.get_uint64(), 10U * 365 * 24 * 3600));
    }
    if (v.is_double()) {
        return static_cast<std::int64_t>(v.get_double());
    }
    if (v.is_string()) {
        const std::string text(v.get_string());
        if (text.empty() || text.size() > 12 ||
            !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
            return std::nullopt;
        }
        return std::stoll(text);
    }
    return std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// One client-credentials request. Updates nothing; throws token_error.
asio::awaitable<std::pair<access_token, clock_type::time_point>> request_token(std::shared_ptr<provider_state> s) {
    const auto started = clock_type::now();
    const auto timeout = std::chrono::seconds(s->cfg.timeout_seconds != 0 ? s->cfg.timeout_seconds : 30);
    form_fields fields{
        {"grant_type", "client_credentials"},
        {"client_id", s->cfg.client_id},
        {"client_secret", s->secret},
        {"scope", s->cfg.scope},
    };
    const auto url = boost::urls::parse_uri(s->cfg.token_url);
    if (!url || url->scheme_id() != boost::urls::scheme::https) {
        fail(*s, "oauth.token_url is not an https:// URL", false);
    }
    std::optional<http_response> res;
    std::string transport_error;
    try {
        res = co_await https_post_form(s->cfg.token_url, std::move(fields), s->cfg.ca_file, timeout);
    } catch (const std::exception& e) {
        transport_error = e.what();
    }
    if (!res) {
        fail(*s, transport_error, true);
    }
    if (res->status != 200) {
        fail_with_error_response(*s, *res);
    }

    boost::system::error_code ec;
    const json::value v = json::parse(res->body, ec);
    const json::object* o = ec ? nullptr : as_object(v);
    if (o == nullptr) {
        fail(*s, "HTTP 200 with a body that is not a JSON object", true);
    }
    access_token token;
    token.value = string_field(*o, "access_token");
    if (token.value.empty()) {
        fail(*s, "HTTP 200 without access_token", true);
    }
    if (auto it = o->find("token_type"); it != o->end()) {
        if (!it->value().is_string() || !iequals(it->value().get_string(), "Bearer")) {
            fail(*s, "unsupported token_type (expected Bearer)", false);
        }
    }
    std::int64_t expires_in = default_expires_in;
    if (auto it = o->find("expires_in"); it != o->end()) {
        auto parsed = parse_expires_in(it->value());
        if (!parsed) {
            fail(*s, "HTTP 200 with an invalid expires_in", true);
        }
        expires_in = std::max<std::int64_t>(*parsed, 0);
    }
    const std::chrono::seconds life(expires_in);
    token.expires_at = started + life;
    const auto refresh_at = life >= short_lifetime
                                ? started + (life - refresh_margin)
                                : started + std::chrono::duration_cast<clock_type::duration>(life) / 2;
    co_return std::pair{std::move(token), refresh_at};
}

asio::awaitable<void> run_fetch(std::shared_ptr<provider_state> s, std::shared_ptr<fetch_state> f) {
    try {
        auto [token, refresh_at] = co_await request_token(s);
        s->cached = token;
        s->refresh_at = refresh_at;
        f->token = std::move(token);
    } catch (...) {
        f->error = std::current_exception();
    }
    f->finished = true;
    if (s->inflight == f) {
        s->inflight.reset();
    }
    f->done.cancel();
}

// All state lives on one executor: see make_client_credentials_provider.
class client_credentials_provider final : public token_source {
public:
    explicit client_credentials_provider(std::shared_ptr<provider_state> s) : s_(std::move(s)) {}

    asio::awaitable<access_token> get() override {
        auto s = s_;
        if (s->cached && clock_type::now() < s->refresh_at) {
            co_return *s->cached;
        }
        auto f = s->inflight;
        if (!f) {
            f = std::make_shared<fetch_state>(s->ex);
            s->inflight = f;
            ++s->fetches;
            // The request runs on its own, so that a caller giving up (being
            // cancelled) does not fail the other waiters.
            asio::co_spawn(s->ex, run_fetch(s, f), asio::detached);
        }
        if (!f->finished) {
            auto [ec] = co_await f->done.async_wait(asio::as_tuple(asio::use_awaitable));
            (void)ec;  // operation_aborted is the wake-up
        }
        if (!f->finished) {
            // This caller's wait was cancelled; the request goes on for others.
            throw boost::system::system_error(asio::error::operation_aborted);
        }
        if (f->error) {
            std::rethrow_exception(f->error);
        }
        co_return *f->token;
    }

    void invalidate(const std::string& token) override {
        if (s_->cached && s_->cached->value == token) {
            s_->cached.reset();
        }
    }

    [[nodiscard]] std::size_t fetch_count() const override { return s_->fetches; }

private:
    std::shared_ptr<provider_state> s_;
};

}  // namespace

std::string profile_key(const conf::oauth_config& cfg, std::string_view key) {
    std::string out = cfg.name == "default" ? "oauth" : "oauth.profiles." + cfg.name;
    if (!key.empty()) out.append(".").append(key);
    return out;
}

std::string read_secret_file(const std::filesystem::path& file, const std::string& key) {
    // Opened first, checked on the descriptor: what is checked is what is read.
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const int err = errno;
        throw std::runtime_error(key + ": cannot read " + file.string() +
                                 (err != 0 ? std::string(": ") + std::strerror(err) : std::string{}));
    }
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
        spdlog::warn("{}: {} can be read or written by other users; make it private (chmod 600)", key,
                     file.string());
    }
    std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw std::runtime_error(key + ": cannot read " + file.string());
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) throw std::runtime_error(key + ": " + file.string() + " is empty");
    return secret;
}

std::vector<std::string> unsupported_oauth_settings(const conf::config& cfg) {
    std::vector<std::string> out;
    const conf::oauth_config& o = cfg.oauth;
    const std::string not_yet = ": not supported by this version yet (use a client secret with grant = \"client_credentials\")";
    if (o.grant != conf::oauth_grant::client_credentials) out.push_back(profile_key(o, "grant") + not_yet);
    if (o.uses_certificate()) out.push_back(profile_key(o, "certificate_file") + not_yet);
    if (o.uses_service_account()) out.push_back(profile_key(o, "service_account_file") + not_yet);
    for (const auto& p : cfg.oauth_profiles)
        out.push_back(profile_key(p, "") + ": named profiles are not supported by this version yet");
    return out;
}

std::string load_client_secret(const conf::oauth_config& cfg) {
    if (!cfg.client_secret_file.empty())
        return read_secret_file(cfg.client_secret_file, profile_key(cfg, "client_secret_file"));
    if (!cfg.client_secret_env.empty()) {
        const char* value = std::getenv(cfg.client_secret_env.c_str());
        if (value == nullptr || *value == '\0') {
            throw std::runtime_error(profile_key(cfg, "client_secret_env") + ": environment variable " +
                                     cfg.client_secret_env + " is not set or empty");
        }
        return value;
    }
    if (!cfg.client_secret_credential.empty()) {
        // systemd's LoadCredential=/SetCredential= put credentials in $CREDENTIALS_DIRECTORY.
        const std::string key = profile_key(cfg, "client_secret_credential");
        const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
        if (dir == nullptr || *dir == '\0') {
            throw std::runtime_error(key + ": $CREDENTIALS_DIRECTORY is not set (start subrelay from systemd with "
                                           "LoadCredential=" + cfg.client_secret_credential + ":FILE)");
        }
        return read_secret_file(std::filesystem::path(dir) / cfg.client_secret_credential, key);
    }
    throw std::runtime_error(profile_key(cfg, "") +
                             ": none of client_secret_file, client_secret_env and client_secret_credential is set");
}

// The provider is not thread-safe: `ex` must be single-threaded (an
// io_context run by one thread, or a strand), and get(), invalidate() and
// fetch_count() must be called from coroutines and handlers running there.
std::unique_ptr<token_source> make_client_credentials_provider(asio::any_io_executor ex, conf::oauth_config cfg,
                                                               std::string client_secret) {
    auto s = std::make_shared<provider_state>();
    s->ex = std::move(ex);
    s->endpoint = describe_endpoint(cfg.token_url);
    s->cfg = std::move(cfg);
    s->secret = std::move(client_secret);
    return std::make_unique<client_credentials_provider>(std::move(s));
}

}  // namespace subrelay::auth
