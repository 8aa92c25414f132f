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
#include <random>
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

#include "auth/grant.hpp"
#include "auth/https_client.hpp"
#include "auth/oauth_error.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::auth {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

// Tokens are renewed after this share of their life (80 %): early enough
// that a failing endpoint leaves time to retry while the old token works.
constexpr int refresh_percent = 80;
// After a failed request, the next one waits (doubling, with jitter) ...
constexpr std::chrono::seconds first_backoff{2};
// ... up to this; callers get the last error meanwhile, or the cached token.
constexpr std::chrono::seconds max_backoff{300};
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
    std::unique_ptr<grant> how;
    steady_now now;
    std::string endpoint;  // token_url without query, for messages
    std::optional<access_token> cached;
    clock_type::time_point refresh_at{};
    std::shared_ptr<fetch_state> inflight;
    std::size_t fetches = 0;
    // The last failure, and when the endpoint may be asked again.
    std::exception_ptr last_error;
    clock_type::time_point retry_at{};
    unsigned failures = 0;
    token_status status;
};

// ---- messages --------------------------------------------------------------

[[noreturn]] void fail(const provider_state& s, const std::string& what, oauth_failure kind, std::string hint = {}) {
    const auto secrets = s.how->secrets();
    throw token_error(redact("token request to " + s.endpoint + " failed: " + what, secrets), kind,
                      redact(std::move(hint), secrets));
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

const json::object* as_object(const json::value& v) { return v.is_object() ? &v.get_object() : nullptr; }

std::string string_field(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) {
        return std::string(it->value().get_string());
    }
    return {};
}

// "HTTP 401: AADSTS7000215: invalid_client: first line of the description",
// classified, with the line that tells the admin what to do.
[[noreturn]] void fail_with_error_response(const provider_state& s, const http_response& res) {
    const oauth_diagnosis d = diagnose_token_failure(res.status, res.body, sign_in_command(s.cfg));
    std::string what = "HTTP " + std::to_string(res.status);
    if (d.aadsts) what += ": AADSTS" + std::to_string(*d.aadsts);
    if (!d.error.empty()) what += ": " + d.error;
    boost::system::error_code ec;
    const json::value v = json::parse(res.body, ec);
    if (const json::object* o = ec ? nullptr : as_object(v)) {
        std::string description = first_line(string_field(*o, "error_description"));
        // The code is already named; the rest of the line says what it means.
        if (d.aadsts) {
            const std::string prefix = "AADSTS" + std::to_string(*d.aadsts) + ": ";
            if (description.starts_with(prefix)) description.erase(0, prefix.size());
        }
        if (!description.empty()) what += ": " + description;
    }
    fail(s, what, d.kind, d.hint);
}

// The longest life believed: a longer one (in seconds) would overflow the
// clock's nanoseconds once the refresh time is computed from it.
constexpr std::int64_t max_expires_in = 10LL * 365 * 24 * 3600;

std::optional<std::int64_t> parse_expires_in(const json::value& v) {
    if (v.is_int64()) {
        return v.get_int64();
    }
    if (v.is_uint64()) {
        return static_cast<std::int64_t>(std::min<std::uint64_t>(v.get_uint64(), max_expires_in));
    }
    if (v.is_double()) {
        // Clamped before the conversion, which is undefined for 1e300.
        return static_cast<std::int64_t>(std::clamp(v.get_double(), 0.0, static_cast<double>(max_expires_in)));
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

}  // namespace

token_answer read_token_answer(std::string_view body) {
    token_answer a;
    auto problem = [&a](std::string what, oauth_failure kind) {
        a.problem = std::move(what);
        a.kind = kind;
        return a;
    };
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        return problem("HTTP 200 with a body that is not a JSON object", oauth_failure::retryable);
    }
    a.object = std::move(v.get_object());
    const json::object& o = a.object;
    a.access_token = string_field(o, "access_token");
    if (a.access_token.empty()) {
        return problem("HTTP 200 without access_token", oauth_failure::retryable);
    }
    if (auto it = o.find("token_type"); it != o.end()) {
        if (!it->value().is_string() || !text::iequals(it->value().get_string(), "Bearer")) {
            return problem("unsupported token_type (expected Bearer)", oauth_failure::configuration);
        }
    }
    if (auto it = o.find("expires_in"); it != o.end()) {
        auto parsed = parse_expires_in(it->value());
        if (!parsed) {
            return problem("HTTP 200 with an invalid expires_in", oauth_failure::retryable);
        }
        a.expires_in = std::clamp<std::int64_t>(*parsed, 0, max_expires_in);
    }
    return a;
}

namespace {

// One client-credentials request. Updates nothing; throws token_error.
asio::awaitable<std::pair<access_token, clock_type::time_point>> request_token(std::shared_ptr<provider_state> s) {
    const auto started = s->now();
    const auto timeout = std::chrono::seconds(s->cfg.timeout_seconds != 0 ? s->cfg.timeout_seconds : 30);
    const auto url = boost::urls::parse_uri(s->cfg.token_url);
    if (!url || url->scheme_id() != boost::urls::scheme::https) {
        fail(*s, profile_key(s->cfg, "token_url") + " is not an https:// URL", oauth_failure::configuration);
    }
    form_fields fields;
    try {
        fields = s->how->request(std::chrono::system_clock::now());
    } catch (const std::runtime_error& e) {
        fail(*s, e.what(), oauth_failure::configuration);
    }
    std::optional<http_response> res;
    std::string transport_error;
    try {
        res = co_await https_post_form(s->cfg.token_url, std::move(fields), s->cfg.ca_file, timeout);
    } catch (const std::exception& e) {
        transport_error = e.what();
    }
    if (!res) {
        fail(*s, transport_error, oauth_failure::retryable, "the token endpoint did not answer; retrying");
    }
    if (res->status != 200) {
        fail_with_error_response(*s, *res);
    }

    token_answer answer = read_token_answer(res->body);
    if (!answer.problem.empty()) {
        fail(*s, answer.problem, answer.kind);
    }
    access_token token;
    token.value = std::move(answer.access_token);
    const std::int64_t expires_in = answer.expires_in;
    const json::object* o = &answer.object;
    // A rotated refresh token is kept before the access token is used.
    try {
        s->how->accepted(*o);
    } catch (const std::runtime_error& e) {
        spdlog::error("{}: {}", profile_key(s->cfg, "refresh_token_file"), redact(e.what(), s->how->secrets()));
    }
    const std::chrono::seconds life(expires_in);
    token.expires_at = started + life;
    const auto refresh_at = started + std::chrono::duration_cast<clock_type::duration>(life) * refresh_percent / 100;
    co_return std::pair{std::move(token), refresh_at};
}

// Doubling from first_backoff to max_backoff, each wait drawn between 75 %
// and 125 % so that many relays (or profiles) do not retry in step.
clock_type::duration backoff_after(unsigned failures) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(first_backoff);
    for (unsigned i = 1; i < failures && wait < max_backoff; ++i) wait *= 2;
    wait = std::min<std::chrono::milliseconds>(wait, max_backoff);
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> jitter(wait.count() * 3 / 4, wait.count() * 5 / 4);
    return std::chrono::milliseconds(jitter(rng));
}

asio::awaitable<void> run_fetch(std::shared_ptr<provider_state> s, std::shared_ptr<fetch_state> f) {
    try {
        auto [token, refresh_at] = co_await request_token(s);
        s->cached = token;
        s->refresh_at = refresh_at;
        s->failures = 0;
        s->last_error = nullptr;
        s->status.obtained_at = std::chrono::system_clock::now();
        s->status.expires_at = s->status.obtained_at + std::chrono::duration_cast<std::chrono::system_clock::duration>(token.expires_at - s->now());
        s->status.last_error.clear();
        s->status.last_hint.clear();
        f->token = std::move(token);
    } catch (...) {
        f->error = std::current_exception();
        s->last_error = f->error;
        s->retry_at = s->now() + backoff_after(++s->failures);
        try {
            std::rethrow_exception(f->error);
        } catch (const token_error& e) {
            s->status.last_error = e.what();
            s->status.last_hint = e.hint();
            ++s->status.failures[std::string(to_string(e.kind()))];
        } catch (const std::exception& e) {
            s->status.last_error = e.what();
            s->status.last_hint.clear();
            ++s->status.failures["other"];
        }
    }
    f->finished = true;
    if (s->inflight == f) {
        s->inflight.reset();
    }
    f->done.cancel();
}

// All state lives on one executor: see make_token_provider.
class provider final : public token_source {
public:
    explicit provider(std::shared_ptr<provider_state> s) : s_(std::move(s)) {}

    asio::awaitable<access_token> get() override {
        auto s = s_;
        const auto now = s->now();
        if (s->cached && now < s->refresh_at) {
            co_return *s->cached;
        }
        if (s->last_error && now < s->retry_at && !s->inflight) {
            // The endpoint failed a moment ago: the old token while it lasts, else that failure.
            if (s->cached && now < s->cached->expires_at) co_return *s->cached;
            std::rethrow_exception(s->last_error);
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
            // A refresh that failed before the old token expired leaves it usable.
            if (s->cached && s->now() < s->cached->expires_at) co_return *s->cached;
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

    [[nodiscard]] token_status status() const override {
        token_status st = s_->status;
        st.grant = s_->how->describe();
        st.fetches = s_->fetches;
        return st;
    }

private:
    std::shared_ptr<provider_state> s_;
};

}  // namespace

std::string profile_key(const conf::oauth_config& cfg, std::string_view key) {
    std::string out = cfg.name == "default" ? "oauth" : "oauth.profiles." + cfg.name;
    if (!key.empty()) out.append(".").append(key);
    return out;
}

std::string sign_in_command(const conf::oauth_config& cfg) {
    return cfg.name == "default" ? "subrelay oauth login" : "subrelay oauth login --profile " + cfg.name;
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
std::unique_ptr<token_source> make_token_provider(asio::any_io_executor ex, conf::oauth_config cfg,
                                                  std::unique_ptr<grant> how, steady_now now) {
    auto s = std::make_shared<provider_state>();
    s->ex = std::move(ex);
    s->now = now ? std::move(now) : steady_now([] { return clock_type::now(); });
    s->endpoint = describe_endpoint(cfg.token_url, "the token endpoint");
    s->cfg = std::move(cfg);
    s->how = std::move(how);
    return std::make_unique<provider>(std::move(s));
}

}  // namespace subrelay::auth
