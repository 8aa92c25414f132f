// `subrelay oauth ...`: the OAuth side of the relay for the admin.
//   oauth login --profile NAME   first sign-in of a delegated profile on a
//                                headless server (device code), storing the
//                                refresh token in the profile's refresh_token_file
//   oauth status [--json]        per profile: the grant, the current token's age
//                                and expiry, the last error (asked of the
//                                running relay over its control socket)

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <fstream>
#include <iomanip>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "auth/device_code.hpp"
#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/cli/spool_owner.hpp"
#include "relay/cli/verb.hpp"
#include "relay/server/control.hpp"
#include "relay/delivery/refresh_token_file.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::relay {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace asio = boost::asio;

namespace {

// What the command line asks for.
struct options {
    std::string action;
    std::string profile = "default";
    bool json = false;
    std::string config;
};

// Reads `oauth ACTION ...` from the parsed command line. Returns the exit
// status of a usage error.
std::optional<int> read_options(const invocation& v, options& o) {
    static const std::set<std::string> actions = {"login", "status"};
    o.config = v.config_file();
    o.json = v.opts.flag("json");
    const bool profile_given = v.opts.has("profile");
    if (profile_given) o.profile = v.opts.value("profile");
    if (v.opts.positionals.empty()) return v.usage_error("which action? login or status");
    o.action = v.opts.positionals.front();
    if (!actions.count(o.action)) return v.usage_error("unknown action '" + o.action + "'");
    if (o.json && o.action != "status") return v.usage_error("--json is for `oauth status`");
    if (profile_given && o.action != "login") return v.usage_error("--profile is for `oauth login`");
    return std::nullopt;
}

// "45 s", "12 min", "3 h 5 min", "4 days".
std::string span(std::int64_t seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 60) return std::to_string(seconds) + " s";
    if (seconds < 3600) return std::to_string(seconds / 60) + " min";
    if (seconds < 86400) {
        const std::int64_t minutes = seconds % 3600 / 60;
        return std::to_string(seconds / 3600) + " h" + (minutes != 0 ? " " + std::to_string(minutes) + " min" : "");
    }
    const std::int64_t days = seconds / 86400;
    return std::to_string(days) + (days == 1 ? " day" : " days");
}

std::vector<const conf::oauth_config*> all_profiles(const conf::config& cfg) {
    std::vector<const conf::oauth_config*> profiles{&cfg.oauth};
    for (const auto& p : cfg.oauth_profiles) profiles.push_back(&p);
    return profiles;
}

std::string provider_name(conf::oauth_provider p) {
    switch (p) {
    case conf::oauth_provider::microsoft: return "microsoft";
    case conf::oauth_provider::google: return "google";
    case conf::oauth_provider::generic: break;
    }
    return "generic";
}

std::string cloud_name(conf::oauth_cloud c) {
    switch (c) {
    case conf::oauth_cloud::usgov: return "usgov";
    case conf::oauth_cloud::china: return "china";
    case conf::oauth_cloud::global: break;
    }
    return "global";
}

std::string grant_name(const conf::oauth_config& p) {
    return p.grant == conf::oauth_grant::refresh_token ? "refresh_token" : "client_credentials";
}

// What the configuration says of the grant, for when the relay has not said more.
std::string grant_from_config(const conf::oauth_config& p) {
    if (p.grant == conf::oauth_grant::refresh_token) return "refresh token (delegated sign-in)";
    if (p.uses_service_account()) return "Google service account";
    if (p.uses_certificate()) return "client credentials with a certificate";
    return "client credentials with a client secret";
}

// ---- login -------------------------------------------------------------------

// What the person is told: the platform's own message, else the URL and the
// code. Never the device code (it redeems the sign-in).
std::string instructions(const auth::device_authorization& a) {
    std::string message = a.message;
    std::replace_if(
        message.begin(), message.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; },
        ' ');
    if (message.empty() || message.find(a.device_code) != std::string::npos)
        message = "To sign in, open " + a.verification_uri + " and enter the code " + a.user_code;
    return message;
}

// The device code flow: shows what to do, waits for the sign-in, returns the refresh token.
asio::awaitable<std::string> sign_in(const conf::oauth_config& profile, std::string client_secret,
                                     std::ostream& out) {
    // GCC 12: no non-trivial temporaries in a co_await expression (see relay/delivery/blocking.hpp).
    asio::awaitable<auth::device_authorization> starting = auth::start_device_authorization(profile);
    const auth::device_authorization a = co_await std::move(starting);
    out << instructions(a) << '\n' << std::flush;
    asio::awaitable<std::string> polling = auth::poll_for_refresh_token(profile, a, std::move(client_secret));
    std::string refresh_token = co_await std::move(polling);
    co_return refresh_token;
}

// Runs sign_in on its own io_context; rethrows what it threw.
std::string run_sign_in(const conf::oauth_config& profile, std::string client_secret, std::ostream& out) {
    asio::io_context io;
    std::exception_ptr error;
    std::optional<std::string> token;
    asio::co_spawn(io, sign_in(profile, std::move(client_secret), out),
                   [&error, &token](std::exception_ptr e, std::string value) {
                       error = e;
                       if (!e) token.emplace(std::move(value));
                   });
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(token).value();
}

int login(const options& o, const conf::config& cfg, std::ostream& out, std::ostream& err) {
    const std::string prefix = "subrelay oauth login: ";
    const conf::oauth_config* profile = cfg.find_profile(o.profile);
    if (profile == nullptr) {
        std::vector<std::string> names;
        for (const auto* p : all_profiles(cfg)) names.push_back(p->name);
        err << prefix << "no profile \"" << o.profile << "\" in " << o.config << "; the profiles are: "
            << join(names, ", ") << '\n';
        return 1;
    }
    const std::string& name = profile->name;
    if (profile->grant != conf::oauth_grant::refresh_token) {
        err << prefix << "profile " << name << " uses grant = " << grant_name(*profile) << ": no sign-in needed\n";
        return 1;
    }
    const std::string file_key = auth::profile_key(*profile, "refresh_token_file");
    if (profile->refresh_token_file.empty()) {
        err << prefix << file_key << " is not set: it says where the refresh token is kept\n";
        return 1;
    }
    // Find out now, not after the person has signed in, that the token cannot be stored.
    const fs::path dir = profile->refresh_token_file.parent_path().empty() ? fs::path(".")
                                                                          : profile->refresh_token_file.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        err << prefix << file_key << ": the directory " << dir.string() << " does not exist\n";
        return 1;
    }
    if (::access(dir.c_str(), W_OK) != 0) {
        err << prefix << file_key << ": cannot write into " << dir.string() << ": " << std::strerror(errno)
            << " (run it as the relay's user)\n";
        return 1;
    }
    try {
        std::string secret;
        if (profile->has_secret_source()) secret = auth::load_client_secret(*profile);
        const std::string refresh_token = run_sign_in(*profile, std::move(secret), out);
        refresh_token_file(profile->refresh_token_file, file_key)->save(refresh_token);
    } catch (const auth::token_error& e) {
        err << prefix << e.what() << '\n';
        if (!e.hint().empty()) err << "hint: " << e.hint() << '\n';
        return 1;
    } catch (const std::exception& e) {
        err << prefix << e.what() << '\n';
        return 1;
    }
    out << "Signed in; refresh token stored in " << profile->refresh_token_file.string() << '\n'
        << "A running relay uses it at its next token request: no restart needed.\n";
    return 0;
}

// ---- status ------------------------------------------------------------------

// One token source as the running relay described it (credentials.hpp, status_json()).
struct source_status {
    std::string profile;
    std::string mailbox;
    std::string grant;
    std::int64_t obtained_at = 0;
    std::int64_t expires_at = 0;
    std::int64_t fetches = 0;
    std::string last_error;
    std::string hint;
};

struct status_file {
    fs::path path;
    bool present = false;       // read and understood
    std::string problem;        // why not, when it exists but cannot be used
    std::int64_t written_at = 0;
    std::vector<source_status> sources;
};

std::string string_of(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) return std::string(it->value().get_string());
    return {};
}

std::int64_t number_of(const json::object& o, std::string_view key) {
    const auto it = o.find(key);
    if (it == o.end()) return 0;
    const json::value& v = it->value();
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v.get_uint64(), INT64_MAX));
    if (v.is_double()) return static_cast<std::int64_t>(v.get_double());
    return 0;
}

// What the running relay says of its token sources (`oauth-status` on its
// control socket); not present when no relay answers.
status_file status_from_relay(const fs::path& spool_dir) {
    status_file s;
    s.path = control_socket_path(spool_dir);
    std::optional<json::object> reply;
    try {
        reply = ask_relay(spool_dir, json::object{{"verb", "oauth-status"}});
    } catch (const std::exception& e) {
        s.problem = e.what();
        return s;
    }
    if (!reply) return s;
    const auto it = reply->find("status");
    if (it == reply->end() || !it->value().is_object()) {
        s.problem = "the relay's answer holds no status";
        return s;
    }
    const json::object& o = it->value().get_object();
    s.written_at = number_of(o, "written_at");
    if (auto src = o.find("sources"); src != o.end() && src->value().is_array()) {
        for (const json::value& v : src->value().get_array()) {
            if (!v.is_object()) continue;
            const json::object& e = v.get_object();
            source_status st;
            st.profile = string_of(e, "profile");
            st.mailbox = string_of(e, "mailbox");
            st.grant = string_of(e, "grant");
            st.obtained_at = number_of(e, "obtained_at");
            st.expires_at = number_of(e, "expires_at");
            st.fetches = number_of(e, "fetches");
            st.last_error = string_of(e, "last_error");
            st.hint = string_of(e, "hint");
            s.sources.push_back(std::move(st));
        }
    }
    s.present = true;
    return s;
}

// The refresh token file of a profile: whether someone signed in, and when.
struct token_file_facts {
    bool exists = false;
    bool empty = false;
    std::int64_t modified_at = 0;
    std::string problem;  // stat failed for another reason than absence
};

token_file_facts token_file_of(const fs::path& file) {
    token_file_facts f;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) f.problem = std::strerror(errno);
        return f;
    }
    f.exists = true;
    f.empty = st.st_size == 0;
    f.modified_at = static_cast<std::int64_t>(st.st_mtim.tv_sec);
    return f;
}

class status_command {
public:
    status_command(const options& o, const conf::config& cfg, std::ostream& out)
        : o_(o), cfg_(cfg), out_(out), now_(now_seconds()), status_(status_from_relay(cfg.spool.dir)) {}

    int run() {
        if (o_.json) print_json();
        else print_text();
        return 0;
    }

private:
    const options& o_;
    const conf::config& cfg_;
    std::ostream& out_;
    std::int64_t now_;
    status_file status_;

    [[nodiscard]] bool oauth_used() const {
        return cfg_.uses_oauth();
    }

    [[nodiscard]] std::string why_unused() const {
        if (cfg_.upstream.kind == conf::upstream_kind::directory) return "upstream.kind = \"directory\"";
        return "upstream.auth = \"none\"";
    }

    [[nodiscard]] std::vector<const source_status*> sources_of(const conf::oauth_config& p) const {
        std::vector<const source_status*> out;
        for (const auto& s : status_.sources)
            if (s.profile == p.name) out.push_back(&s);
        return out;
    }

    [[nodiscard]] std::string mailboxes_text(const conf::oauth_config& p) const {
        if (&p == &cfg_.oauth) {
            std::string text = "every mailbox no other profile lists";
            if (!cfg_.upstream.mailbox.empty()) text += " (upstream.mailbox " + cfg_.upstream.mailbox + " by default)";
            return text;
        }
        return p.mailboxes.empty() ? "none listed" : join(p.mailboxes, ", ");
    }

    [[nodiscard]] std::string provider_text(const conf::oauth_config& p) const {
        std::string text = provider_name(p.provider);
        if (p.provider == conf::oauth_provider::microsoft) {
            text += " (" + cloud_name(p.cloud) + " cloud)";
            if (!p.tenant.empty()) text += ", tenant " + p.tenant;
        }
        return text;
    }

    [[nodiscard]] std::string not_running_text() const {
        return "no status from the relay: it does not answer on " + status_.path.string() + " (is it running?)";
    }

    void line(std::string_view label, const std::string& value) {
        out_ << "  " << std::left << std::setw(15) << (std::string(label) + ":") << value << '\n';
    }

    void print_text() {
        if (status_.present) {
            out_ << "relay status as of " << span(now_ - status_.written_at) << " ago ("
                 << text::iso8601_utc(status_.written_at) << "), from " << status_.path.string() << '\n';
        } else {
            out_ << not_running_text() << '\n';
            if (!status_.problem.empty()) out_ << "  (" << status_.problem << ")\n";
        }
        if (!oauth_used()) out_ << "note: the relay does not use OAuth now (" << why_unused() << ")\n";
        for (const auto* p : all_profiles(cfg_)) {
            const auto sources = sources_of(*p);
            if (sources.empty()) {
                print_block(*p, nullptr, "");
                continue;
            }
            for (const auto* s : sources) print_block(*p, s, s->mailbox);
        }
    }

    void print_block(const conf::oauth_config& p, const source_status* s, const std::string& mailbox) {
        out_ << '\n' << "profile " << p.name;
        if (!mailbox.empty()) out_ << ", mailbox " << mailbox;
        out_ << '\n';
        line("provider", provider_text(p));
        line("grant", s != nullptr && !s->grant.empty() ? s->grant : grant_from_config(p));
        if (mailbox.empty()) line("mailboxes", mailboxes_text(p));
        if (s == nullptr) {
            if (!status_.present) line("token", "unknown (no status from the relay)");
            else if (p.uses_service_account()) line("token", "none yet (no message for its mailboxes yet)");
            else line("token", "unknown (the relay's status does not list this profile)");
        } else if (s->obtained_at == 0) {
            line("token", "none yet");
            line("requests", std::to_string(s->fetches));
        } else {
            line("token", "obtained " + span(now_ - s->obtained_at) + " ago (" + text::iso8601_utc(s->obtained_at) + ")");
            if (s->expires_at != 0) {
                const std::string when = s->expires_at > now_ ? "in " + span(s->expires_at - now_)
                                                               : "expired " + span(now_ - s->expires_at) + " ago";
                line("expires", text::iso8601_utc(s->expires_at) + " (" + when + ")");
            }
            line("requests", std::to_string(s->fetches));
        }
        if (s != nullptr) {
            line("last error", s->last_error.empty() ? "none" : s->last_error);
            if (!s->hint.empty()) line("hint", s->hint);
        }
        if (p.grant == conf::oauth_grant::refresh_token) line("refresh token", refresh_token_text(p));
    }

    [[nodiscard]] std::string refresh_token_text(const conf::oauth_config& p) const {
        const std::string login = "run `subrelay oauth login --profile " + p.name + "`";
        if (p.refresh_token_file.empty())
            return "not signed in: " + auth::profile_key(p, "refresh_token_file") + " is not set";
        const token_file_facts f = token_file_of(p.refresh_token_file);
        const std::string file = p.refresh_token_file.string();
        if (!f.problem.empty()) return "cannot look at " + file + ": " + f.problem;
        if (!f.exists) return "not signed in: " + login + " (" + file + " does not exist)";
        if (f.empty) return "not signed in: " + login + " (" + file + " is empty)";
        return "stored in " + file + ", written " + text::iso8601_utc(f.modified_at) + " (" + span(now_ - f.modified_at) +
               " ago)";
    }

    json::object source_json(const source_status& s) const {
        json::object o;
        o["mailbox"] = s.mailbox;
        o["grant"] = s.grant;
        o["obtained_at"] = s.obtained_at;
        o["expires_at"] = s.expires_at;
        o["fetches"] = s.fetches;
        o["last_error"] = s.last_error;
        o["hint"] = s.hint;
        if (s.obtained_at != 0) o["age_seconds"] = std::max<std::int64_t>(0, now_ - s.obtained_at);
        else o["age_seconds"] = nullptr;
        if (s.expires_at != 0) o["expires_in_seconds"] = s.expires_at - now_;
        else o["expires_in_seconds"] = nullptr;
        o["expired"] = s.expires_at != 0 && s.expires_at <= now_;
        return o;
    }

    void print_json() {
        json::array profiles;
        for (const auto* p : all_profiles(cfg_)) {
            json::object o;
            o["profile"] = p->name;
            o["provider"] = provider_name(p->provider);
            o["cloud"] = p->provider == conf::oauth_provider::microsoft ? json::value(cloud_name(p->cloud))
                                                                         : json::value(nullptr);
            o["tenant"] = p->tenant;
            o["grant"] = grant_name(*p);
            o["grant_description"] = grant_from_config(*p);
            o["client_id"] = p->client_id;
            o["token_url"] = p->token_url;
            o["scope"] = p->scope;
            json::array mailboxes;
            for (const auto& m : p->mailboxes) mailboxes.emplace_back(m);
            o["mailboxes"] = std::move(mailboxes);
            o["smtp_host"] = p->smtp_host;
            o["per_mailbox"] = p->uses_service_account();
            if (p->grant == conf::oauth_grant::refresh_token) {
                o["device_code_url"] = p->device_code_url;
                o["refresh_token_file"] = p->refresh_token_file.string();
                const token_file_facts f = p->refresh_token_file.empty() ? token_file_facts{}
                                                                         : token_file_of(p->refresh_token_file);
                o["signed_in"] = f.exists && !f.empty;
                o["refresh_token_written_at"] = f.exists ? json::value(f.modified_at) : json::value(nullptr);
            }
            json::array sources;
            for (const auto* s : sources_of(*p)) sources.emplace_back(source_json(*s));
            o["sources"] = std::move(sources);
            profiles.emplace_back(std::move(o));
        }
        json::object doc;
        doc["config"] = o_.config;
        doc["oauth_used"] = oauth_used();
        doc["control_socket"] = status_.path.string();
        doc["status_present"] = status_.present;
        doc["status_written_at"] = status_.present ? json::value(status_.written_at) : json::value(nullptr);
        if (!status_.present) {
            std::string note = not_running_text();
            if (!status_.problem.empty()) note += "; " + status_.problem;
            doc["status_note"] = note;
        }
        doc["profiles"] = std::move(profiles);
        out_ << json::serialize(doc) << '\n';
    }
};

}  // namespace

int run_oauth(invocation& v) {
    options o;
    if (auto status = read_options(v, o)) return *status;
    const std::optional<conf::config> cfg = load_config(o.config, v.err);
    if (!cfg) return 1;
    try {
        if (o.action == "login") {
            // The refresh token is the relay's to read and to replace.
            if (auto problem = act_as_spool_owner(cfg->spool.dir); !problem.empty()) {
                v.err << "subrelay oauth login: " << problem << '\n';
                return 1;
            }
            return login(o, *cfg, v.out, v.err);
        }
        status_command cmd(o, *cfg, v.out);
        return cmd.run();
    } catch (const std::exception& e) {
        v.err << "subrelay oauth " << o.action << ": " << e.what() << '\n';
        return 1;
    }
}

}  // namespace subrelay::relay
