#include "conf/config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include "conf/toml_reader/toml_reader.hpp"
#include "smtp/address.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::conf {

namespace {

using toml_reader::problem;
using toml_reader::table_reader;

std::string machine_hostname() {
    std::array<char, 256> buf{};
    if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
    return std::string(buf.data());
}

std::filesystem::path resolve(const std::filesystem::path& base_dir, const std::filesystem::path& p) {
    if (p.empty() || p.is_absolute() || base_dir.empty()) return p;
    return (base_dir / p).lexically_normal();
}

bool valid_hostname(std::string_view h) {
    if (h.empty() || h.size() > 255) return false;
    for (char c : h) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) return false;
    }
    return true;
}

bool valid_env_name(std::string_view s) {
    if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) return false;
    }
    return true;
}

// A string key whose value must be one of `choices`. Returns the index or -1.
int read_choice(table_reader& r, std::string_view key, std::initializer_list<std::string_view> choices) {
    std::string value;
    if (!r.read(key, value)) return -1;
    int i = 0;
    for (auto c : choices) {
        if (value == c) return i;
        ++i;
    }
    std::string message = "expected one of ";
    bool first = true;
    for (auto c : choices) {
        if (!first) message += ", ";
        first = false;
        message += '"';
        message += c;
        message += '"';
    }
    message += ", got \"" + value + "\"";
    r.error(key, std::move(message));
    return -1;
}

class config_parser {
public:
    config_parser(const std::filesystem::path& file, std::vector<problem>& problems, std::vector<warning>& warnings)
        : dir_(file.parent_path()), problems_(problems), warnings_(warnings) {}

    void parse(const toml::table& root, config& cfg) {
        table_reader r(root, "", problems_);
        server(r.table("server"), cfg.server);
        tls(r.table("tls"), cfg.tls, !cfg.server.submission.empty() || !cfg.server.submissions.empty());
        policy(r.table("policy"), cfg.policy);
        spool(r.table("spool"), cfg.spool);
        queue(r.table("queue"), cfg.queue);
        auth(r.table("auth"), cfg.auth);
        upstream(r.table("upstream"), cfg.upstream);
        oauth(r.table("oauth"), cfg, cfg.uses_oauth());
        // The default profile's SMTP endpoint is [upstream]'s; its host, when
        // not given, follows the profile (a national cloud, Gmail).
        if (!upstream_host_set_ && !cfg.oauth.smtp_host.empty()) cfg.upstream.host = cfg.oauth.smtp_host;
        cfg.oauth.smtp_host = cfg.upstream.host;
        cfg.oauth.smtp_port = cfg.upstream.port;
        cfg.oauth.smtp_tls = cfg.upstream.tls;
        log(r.table("log"), cfg.log);
        admin(r.table("admin"), cfg.admin);
        cluster(r.table("cluster"), cfg.cluster);
        device_networks(r, cfg.device_networks);
        r.finish();
    }

private:
    static const toml::table& or_empty(const toml::table* t) {
        static const toml::table empty;
        return t != nullptr ? *t : empty;
    }

    void add(std::string key, std::string message) { problems_.push_back({std::move(key), std::move(message)}); }

    [[nodiscard]] bool reported_since(std::size_t before, std::string_view key) const {
        for (std::size_t i = before; i < problems_.size(); ++i) {
            if (problems_[i].key == key) return true;
        }
        return false;
    }

    void read_path(table_reader& r, std::string_view key, std::filesystem::path& out) {
        std::string value;
        if (r.read(key, value)) out = value;
        out = resolve(dir_, out);
    }

    void listeners(table_reader& r, std::string_view key, std::vector<listen_address>& out) {
        const auto* arr = r.array(key);
        if (arr == nullptr) return;
        std::vector<listen_address> values;
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto& element = *arr->get(i);
            const auto element_key = toml_reader::index_key(r.path(key), i);
            const auto* s = element.as_string();
            if (s == nullptr) {
                add(element_key, toml_reader::type_mismatch("a string", element));
                continue;
            }
            listen_address a;
            std::string why;
            if (!parse_listen_address(s->get(), a, why)) {
                add(element_key, why);
                continue;
            }
            values.push_back(std::move(a));
        }
        out = std::move(values);
    }

    void server(const toml::table* t, server_config& s) {
        table_reader r(or_empty(t), "server", problems_);
        s.hostname = machine_hostname();
        std::string hostname;
        if (r.read("hostname", hostname)) {
            if (valid_hostname(hostname)) {
                s.hostname = hostname;
            } else {
                r.error("hostname", "must be a host name without spaces");
            }
        }
        s.submission = {listen_address{"0.0.0.0", 587}};
        listeners(r, "submission", s.submission);
        listeners(r, "submissions", s.submissions);
        r.read_number("max_message_size", s.max_message_size, 1);
        r.read_number("max_recipients", s.max_recipients, 1);
        r.read("require_tls_for_auth", s.require_tls_for_auth);
        r.read_number("max_connections", s.max_connections, 1);
        r.read_number("max_connections_per_client", s.max_connections_per_client, 0);
        r.read_number("max_connection_rate_per_client", s.max_connection_rate_per_client, 0);
        r.read_number("idle_timeout_seconds", s.idle_timeout_seconds, 1);
        r.read_number("min_data_rate", s.min_data_rate, 0);
        r.read_number("session_timeout_seconds", s.session_timeout_seconds, 1);
        r.read_number("stress_session_timeout_seconds", s.stress_session_timeout_seconds, 1);
        r.read_number("tls_handshake_timeout_seconds", s.tls_handshake_timeout_seconds, 1);
        if (r.read("user", s.user) && s.user.empty()) r.error("user", "must not be empty (leave it out to stay as started)");
        if (r.read("auth_default_domain", s.auth_default_domain) && !s.auth_default_domain.empty() &&
            !smtp::valid_mailbox("postmaster@" + s.auth_default_domain)) {
            r.error("auth_default_domain", "\"" + s.auth_default_domain + "\" is not a valid domain");
        }
        std::vector<std::string> proxies;
        if (r.read("proxy_protocol_from", proxies)) {
            for (std::size_t n = 0; n < proxies.size(); ++n) {
                network net;
                std::string why;
                if (network::parse(proxies[n], net, why)) {
                    s.proxy_protocol_from.push_back(net);
                } else {
                    add(toml_reader::index_key(r.path("proxy_protocol_from"), n), "\"" + proxies[n] + "\" " + why);
                }
            }
        }
        r.finish();

        if (!s.require_tls_for_auth) {
            warnings_.push_back({"server.require_tls_for_auth",
                                 "passwords may be sent without encryption"});
        }
        // The same address twice cannot be bound (port 0 means "any free port").
        std::vector<std::string> seen;
        auto check_duplicates = [&](const std::vector<listen_address>& list, std::string_view key) {
            for (std::size_t i = 0; i < list.size(); ++i) {
                if (list[i].port == 0) continue;
                auto text = list[i].to_string();
                if (std::find(seen.begin(), seen.end(), text) != seen.end()) {
                    add(toml_reader::index_key(toml_reader::join_key("server", key), i), "\"" + text + "\" is listed more than once");
                } else {
                    seen.push_back(std::move(text));
                }
            }
        };
        check_duplicates(s.submission, "submission");
        check_duplicates(s.submissions, "submissions");
    }

    void device_networks(table_reader& root, std::vector<device_network>& out) {
        const auto* arr = root.array("device_network");
        if (arr == nullptr) return;
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto key = toml_reader::index_key("device_network", i);
            const auto* t = arr->get(i)->as_table();
            if (t == nullptr) {
                add(key, toml_reader::type_mismatch("a table", *arr->get(i)));
                continue;
            }
            out.push_back(device_network_entry(*t, key));
        }
        // One network in two profiles for the same listeners would make the
        // choice depend on the order in the file.
        for (std::size_t i = 0; i < out.size(); ++i) {
            for (std::size_t n = 0; n < out[i].networks.size(); ++n) {
                for (std::size_t j = 0; j < i; ++j) {
                    const auto& earlier = out[j].networks;
                    if (out[i].listeners != out[j].listeners ||
                        std::find(earlier.begin(), earlier.end(), out[i].networks[n]) == earlier.end())
                        continue;
                    add(toml_reader::index_key(toml_reader::index_key("device_network", i) + ".networks", n),
                        "\"" + out[i].networks[n].to_string() + "\" is already in " +
                            toml_reader::index_key("device_network", j));
                }
            }
        }
    }

    device_network device_network_entry(const toml::table& t, const std::string& key) {
        table_reader r(t, key, problems_);
        device_network d;
        std::vector<std::string> texts;
        if (r.read("networks", texts)) {
            if (texts.empty()) r.error("networks", "must list at least one network");
            for (std::size_t n = 0; n < texts.size(); ++n) {
                network net;
                std::string why;
                if (network::parse(texts[n], net, why)) {
                    d.networks.push_back(net);
                } else {
                    add(toml_reader::index_key(r.path("networks"), n), "\"" + texts[n] + "\" " + why);
                }
            }
        } else if (!r.has("networks")) {
            r.error("networks", "is required");
        }
        if (r.read("listeners", d.listeners)) {
            for (std::size_t n = 0; n < d.listeners.size(); ++n) {
                if (valid_listener_name(d.listeners[n])) continue;
                add(toml_reader::index_key(r.path("listeners"), n),
                    "\"" + d.listeners[n] +
                        "\" is not a listener (\"submission\", \"submissions\" or a listen address \"host:port\")");
            }
        }
        switch (read_choice(r, "tls_min_version", {"1.0", "1.1", "1.2", "1.3"})) {
            case 0: d.tls_min_version = tls_version::v1_0; break;
            case 1: d.tls_min_version = tls_version::v1_1; break;
            case 2: d.tls_min_version = tls_version::v1_2; break;
            case 3: d.tls_min_version = tls_version::v1_3; break;
            default: break;
        }
        r.read_number("tls_security_level", d.tls_security_level, 0, 5);
        r.read("tls_ciphers", d.tls_ciphers);
        if (r.read("auth_without_tls", d.auth_without_tls) && d.auth_without_tls) {
            warnings_.push_back({r.path("auth_without_tls"),
                                 "passwords from these networks may be sent without encryption"});
        }
        switch (read_choice(r, "bare_lf", {"reject", "accept"})) {
            case 0: d.accept_bare_lf = false; break;
            case 1: d.accept_bare_lf = true; break;
            default: break;
        }
        r.finish();
        return d;
    }

    // A string or an array of strings (resolved against the config's
    // directory). nullopt when absent or invalid (problems added then).
    std::optional<std::vector<std::filesystem::path>> read_paths(table_reader& r, std::string_view key) {
        const auto* node = r.get(key);
        if (node == nullptr) return std::nullopt;
        std::vector<std::filesystem::path> out;
        if (const auto* s = node->as_string()) {
            if (s->get().empty()) {
                r.error(key, "must not be empty");
                return std::nullopt;
            }
            out.push_back(resolve(dir_, s->get()));
            return out;
        }
        const auto* arr = node->as_array();
        if (arr == nullptr) {
            r.error(key, toml_reader::type_mismatch("a string or an array of strings", *node));
            return std::nullopt;
        }
        if (arr->empty()) {
            r.error(key, "must name at least one file");
            return std::nullopt;
        }
        bool ok = true;
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto& element = *arr->get(i);
            const auto element_key = toml_reader::index_key(r.path(key), i);
            const auto* s = element.as_string();
            if (s == nullptr) {
                add(element_key, toml_reader::type_mismatch("a string", element));
                ok = false;
            } else if (s->get().empty()) {
                add(element_key, "must not be empty");
                ok = false;
            } else {
                out.push_back(resolve(dir_, s->get()));
            }
        }
        if (!ok) return std::nullopt;
        return out;
    }

    void tls(const toml::table* t, tls_config& c, bool any_listener) {
        table_reader r(or_empty(t), "tls", problems_);
        const std::size_t before = problems_.size();
        const auto certs = read_paths(r, "cert_file");
        const auto keys = read_paths(r, "key_file");
        r.read("session_tickets", c.session_tickets);
        r.read_number("session_cache_size", c.session_cache_size, 0, 10'000'000);
        // Ticket keys rotate every 12 hours and the previous one is kept:
        // a ticket must not outlive the key that sealed it.
        r.read_number("session_timeout_seconds", c.session_timeout_seconds, 1, 43200);
        r.finish();
        if (certs && keys) {
            if (certs->size() != keys->size()) {
                add("tls.key_file", "names " + std::to_string(keys->size()) + (keys->size() == 1 ? " file" : " files") +
                                        " but tls.cert_file names " + std::to_string(certs->size()) +
                                        "; each certificate needs its own key, in the same order");
            } else {
                c.certificates.clear();
                for (std::size_t i = 0; i < certs->size(); ++i) c.certificates.push_back({(*certs)[i], (*keys)[i]});
            }
        }
        if (!any_listener) return;
        if (!r.has("cert_file") && !reported_since(before, "tls.cert_file")) add("tls.cert_file", "is required");
        if (!r.has("key_file") && !reported_since(before, "tls.key_file")) add("tls.key_file", "is required");
    }

    void policy(const toml::table* t, policy_config& c) {
        table_reader r(or_empty(t), "policy", problems_);
        c.file = "policy.toml";
        read_path(r, "file", c.file);
        if (c.file.empty()) r.error("file", "must not be empty");
        r.finish();
    }

    void spool(const toml::table* t, spool_config& c) {
        table_reader r(or_empty(t), "spool", problems_);
        c.dir = "spool";
        read_path(r, "dir", c.dir);
        if (c.dir.empty()) r.error("dir", "must not be empty");
        r.read_number("min_free_bytes", c.min_free_bytes, 0);
        r.finish();
    }

    void auth(const toml::table* t, auth_config& a) {
        table_reader r(or_empty(t), "auth", problems_);
        r.read_number("max_failures_per_client", a.max_failures_per_client, 0);
        r.read_number("lockout_threshold", a.lockout_threshold, 0);
        r.read_number("lockout_seconds", a.lockout_seconds, 1, 3600);
        r.read_number("verify_threads", a.verify_threads, 1, 64);
        r.read_number("max_waiting_logins", a.max_waiting_logins, 0);
        r.finish();
    }

    void queue(const toml::table* t, queue_config& q) {
        table_reader r(or_empty(t), "queue", problems_);
        r.read_number("max_lifetime_seconds", q.max_lifetime_seconds, 1);
        r.read_number("delay_warning_seconds", q.delay_warning_seconds, 0);
        r.finish();
    }

    void upstream(const toml::table* t, upstream_config& u) {
        table_reader r(or_empty(t), "upstream", problems_);
        const std::size_t before = problems_.size();
        switch (read_choice(r, "kind", {"smtp", "directory", "graph"})) {
            case 0: u.kind = upstream_kind::smtp; break;
            case 1: u.kind = upstream_kind::directory; break;
            case 2: u.kind = upstream_kind::graph; break;
            default: kind_known_ = !r.has("kind"); break;
        }
        upstream_host_set_ = r.read("host", u.host);
        if (upstream_host_set_ && !valid_hostname(u.host)) r.error("host", "must be a host name without spaces");
        r.read_number("port", u.port, 1, 65535);
        switch (read_choice(r, "tls", {"starttls", "implicit", "none"})) {
            case 0: u.tls = upstream_tls::starttls; break;
            case 1: u.tls = upstream_tls::implicit; break;
            case 2:
                u.tls = upstream_tls::none;
                warnings_.push_back({"upstream.tls", "upstream connections are not encrypted; credentials and mail are sent in clear text"});
                break;
            default: break;
        }
        read_path(r, "ca_file", u.ca_file);
        if (r.read("mailbox", u.mailbox) && !u.mailbox.empty() && !smtp::valid_mailbox(u.mailbox)) {
            r.error("mailbox", "\"" + u.mailbox + "\" is not a valid address");
        }
        r.read_number("max_connections_per_mailbox", u.max_connections_per_mailbox, 1);
        read_path(r, "directory", u.directory);
        r.read_number("connect_timeout_seconds", u.connect_timeout_seconds, 1);
        r.read_number("command_timeout_seconds", u.command_timeout_seconds, 1);
        const bool initial_ok = r.read_number("retry_initial_seconds", u.retry_initial_seconds, 1) || !r.has("retry_initial_seconds");
        r.read_number("max_connection_age_seconds", u.max_connection_age_seconds, 1);
        const bool max_ok = r.read_number("retry_max_seconds", u.retry_max_seconds, 1) || !r.has("retry_max_seconds");
        if (initial_ok && max_ok && u.retry_max_seconds < u.retry_initial_seconds) {
            r.error("retry_max_seconds", "must not be less than upstream.retry_initial_seconds (" +
                                             std::to_string(u.retry_initial_seconds) + ")");
        }
        switch (read_choice(r, "auth", {"xoauth2", "none"})) {
            case 0: u.auth = upstream_auth::xoauth2; break;
            case 1: u.auth = upstream_auth::none; break;
            default: break;
        }
        read_path(r, "client_cert_file", u.client_cert_file);
        read_path(r, "client_key_file", u.client_key_file);
        if (u.client_cert_file.empty() != u.client_key_file.empty()) {
            r.error(u.client_cert_file.empty() ? "client_cert_file" : "client_key_file",
                    "client_cert_file and client_key_file go together");
        }
        r.read_number("max_messages_per_minute", u.max_messages_per_minute, 0);
        r.read_number("graph_max_concurrent_requests", u.graph_max_concurrent_requests, 1,
                      graph_max_concurrent_requests_limit);
        r.read_number("graph_max_requests_per_10_minutes", u.graph_max_requests_per_10_minutes, 1,
                      graph_max_requests_per_window);
        r.finish();

        if (!kind_known_) return;  // requirements depend on a valid kind
        if (u.kind == upstream_kind::smtp || u.kind == upstream_kind::graph) {
            if (u.mailbox.empty() && !reported_since(before, "upstream.mailbox")) {
                add("upstream.mailbox", std::string("is required for upstream.kind = \"") +
                                            (u.kind == upstream_kind::smtp ? "smtp" : "graph") + "\"");
            }
        } else if (u.directory.empty() && !reported_since(before, "upstream.directory")) {
            add("upstream.directory", "is required for upstream.kind = \"directory\"");
        }
    }

    // [oauth] is the default profile; [oauth.profiles.NAME] adds named ones.
    void oauth(const toml::table* t, config& cfg, bool required) {
        table_reader r(or_empty(t), "oauth", problems_);
        cfg.oauth.name = "default";
        // Mailboxes go the way of upstream.kind unless their profile says otherwise.
        const upstream_kind delivery =
            cfg.upstream.kind == upstream_kind::graph ? upstream_kind::graph : upstream_kind::smtp;
        cfg.oauth.delivery = delivery;
        profile(r, cfg.oauth, required);
        if (const auto* profiles = r.table("profiles")) {
            for (const auto& [key, node] : *profiles) {
                const std::string name(key.str());
                const std::string prefix = toml_reader::join_key("oauth.profiles", name);
                const auto* table = node.as_table();
                if (table == nullptr) {
                    add(prefix, toml_reader::type_mismatch("a table", node));
                    continue;
                }
                if (name == "default") {
                    add(prefix, "\"default\" is the plain [oauth] table; give this profile another name");
                    continue;
                }
                oauth_config p;
                p.name = name;
                p.delivery = delivery;
                table_reader pr(*table, prefix, problems_);
                profile(pr, p, required);
                if (!required && cfg.upstream.kind == upstream_kind::smtp && p.delivery == upstream_kind::graph)
                    pr.error("delivery", "needs OAuth tokens, which upstream.auth = \"none\" turns off");
                pr.finish();
                cfg.oauth_profiles.push_back(std::move(p));
            }
        }
        r.finish();
        // A mailbox is served by one profile.
        std::vector<std::pair<std::string, std::string>> seen;  // mailbox, profile
        for (const auto& p : cfg.oauth_profiles) {
            for (const auto& m : p.mailboxes) {
                const auto other = std::find_if(seen.begin(), seen.end(),
                                                [&](const auto& s) { return text::iequals(s.first, m); });
                if (other != seen.end()) {
                    add(toml_reader::join_key(toml_reader::join_key("oauth.profiles", p.name), "mailboxes"),
                        "\"" + m + "\" is already served by profile \"" + other->second + "\"");
                } else {
                    seen.emplace_back(m, p.name);
                }
            }
        }
    }

    void secret_sources(table_reader& r, oauth_config& o) {
        read_path(r, "client_secret_file", o.client_secret_file);
        if (r.read("client_secret_env", o.client_secret_env) && !o.client_secret_env.empty() &&
            !valid_env_name(o.client_secret_env)) {
            r.error("client_secret_env", "must be an environment variable name (letters, digits and _)");
        }
        if (r.read("client_secret_credential", o.client_secret_credential) &&
            (o.client_secret_credential.empty() || o.client_secret_credential.find('/') != std::string::npos ||
             o.client_secret_credential.starts_with("."))) {
            r.error("client_secret_credential", "must be a credential name (a file name under $CREDENTIALS_DIRECTORY)");
        }
        const int sources = int(!o.client_secret_file.empty()) + int(!o.client_secret_env.empty()) +
                            int(!o.client_secret_credential.empty());
        if (sources > 1) {
            add(r.prefix(), "set only one of client_secret_file, client_secret_env and client_secret_credential");
        }
    }

    void https_url(table_reader& r, std::string_view key, std::string& out) {
        if (!r.read(key, out) || out.empty()) return;
        const std::string_view url = out;
        const bool https = url.size() > 8 && text::iequals(url.substr(0, 8), "https://") &&
                           url.find_first_of(" \t\r\n") == std::string_view::npos;
        if (!https) r.error(key, "must be an https:// URL");
    }

    // The keys of one profile, what they imply, and what its grant needs.
    void profile(table_reader& r, oauth_config& o, bool required) {
        const std::size_t before = problems_.size();
        const bool is_default = o.name == "default";
        bool provider_ok = true;
        switch (read_choice(r, "provider", {"microsoft", "google", "generic"})) {
            case 0: o.provider = oauth_provider::microsoft; break;
            case 1: o.provider = oauth_provider::google; break;
            case 2: o.provider = oauth_provider::generic; break;
            default: provider_ok = !r.has("provider"); break;
        }
        switch (read_choice(r, "cloud", {"global", "usgov", "china"})) {
            case 0: o.cloud = oauth_cloud::global; break;
            case 1: o.cloud = oauth_cloud::usgov; break;
            case 2: o.cloud = oauth_cloud::china; break;
            default: break;
        }
        if (r.read("tenant", o.tenant)) {
            const bool ok = !o.tenant.empty() && std::all_of(o.tenant.begin(), o.tenant.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '-' || c == '_';
            });
            if (!ok) r.error("tenant", "must be a tenant id or domain (e.g. contoso.onmicrosoft.com)");
        }
        switch (read_choice(r, "grant", {"client_credentials", "refresh_token"})) {
            case 0: o.grant = oauth_grant::client_credentials; break;
            case 1: o.grant = oauth_grant::refresh_token; break;
            default: break;
        }
        https_url(r, "token_url", o.token_url);
        https_url(r, "device_code_url", o.device_code_url);
        r.read("scope", o.scope);
        r.read("client_id", o.client_id);
        secret_sources(r, o);
        read_path(r, "certificate_file", o.certificate_file);
        read_path(r, "private_key_file", o.private_key_file);
        switch (read_choice(r, "assertion_alg", {"PS256", "RS256"})) {
            case 0: o.assertion_alg = oauth_assertion_alg::ps256; break;
            case 1: o.assertion_alg = oauth_assertion_alg::rs256; break;
            default: break;
        }
        read_path(r, "refresh_token_file", o.refresh_token_file);
        read_path(r, "service_account_file", o.service_account_file);
        if (r.read("subject", o.subject) && !smtp::valid_mailbox(o.subject)) {
            r.error("subject", "\"" + o.subject + "\" is not a valid address");
        }
        if (!is_default) {
            // The default profile's mailboxes and endpoint are [upstream]'s.
            if (r.read("mailboxes", o.mailboxes)) {
                for (const auto& m : o.mailboxes)
                    if (!smtp::valid_mailbox(m)) r.error("mailboxes", "\"" + m + "\" is not a valid address");
            }
            if (r.read("smtp_host", o.smtp_host) && !valid_hostname(o.smtp_host))
                r.error("smtp_host", "must be a host name without spaces");
            r.read_number("smtp_port", o.smtp_port, 1, 65535);
            switch (read_choice(r, "smtp_tls", {"starttls", "implicit"})) {
                case 0: o.smtp_tls = upstream_tls::starttls; break;
                case 1: o.smtp_tls = upstream_tls::implicit; break;
                default: break;
            }
            switch (read_choice(r, "delivery", {"smtp", "graph"})) {
                case 0: o.delivery = upstream_kind::smtp; break;
                case 1: o.delivery = upstream_kind::graph; break;
                default: break;
            }
        }
        https_url(r, "graph_url", o.graph_url);
        while (o.graph_url.ends_with('/')) o.graph_url.pop_back();
        r.read("save_to_sent_items", o.save_to_sent_items);
        read_path(r, "ca_file", o.ca_file);
        r.read_number("timeout_seconds", o.timeout_seconds, 1);

        const oauth_defaults d = derive_oauth_defaults(o.provider, o.cloud, o.tenant, o.grant, o.delivery);
        if (o.token_url.empty()) o.token_url = d.token_url;
        if (o.device_code_url.empty()) o.device_code_url = d.device_code_url;
        if (o.scope.empty()) o.scope = d.scope;
        if (o.smtp_host.empty()) o.smtp_host = d.smtp_host;
        const bool graph = o.delivery == upstream_kind::graph;
        if (graph && o.graph_url.empty()) o.graph_url = d.graph_url;
        for (const std::string_view key : {"graph_url", "save_to_sent_items"}) {
            if (!graph && r.has(key))
                r.error(key, is_default ? "is used only with upstream.kind = \"graph\""
                                        : "is used only with delivery = \"graph\"");
        }
        if (graph && provider_ok && o.provider != oauth_provider::microsoft) {
            // Microsoft Graph takes tokens from Microsoft's identity platform only.
            r.error(is_default ? "provider" : (r.has("delivery") ? "delivery" : "provider"),
                    is_default ? "must be \"microsoft\" for upstream.kind = \"graph\""
                               : "delivery = \"graph\" needs provider = \"microsoft\"");
        }

        const std::string microsoft_only = "applies only to provider = \"microsoft\"";
        if (o.provider != oauth_provider::microsoft) {
            if (r.has("cloud")) r.error("cloud", microsoft_only);
            if (r.has("tenant")) r.error("tenant", microsoft_only);
        }
        if (o.certificate_file.empty() != o.private_key_file.empty()) {
            r.error(o.certificate_file.empty() ? "certificate_file" : "private_key_file",
                    "certificate_file and private_key_file go together");
        }
        if (r.has("assertion_alg") && !o.uses_certificate()) r.error("assertion_alg", "needs certificate_file");
        if (o.uses_certificate() && o.provider == oauth_provider::google)
            r.error("certificate_file", "Google service accounts use service_account_file");
        if (o.uses_service_account() && o.provider != oauth_provider::google)
            r.error("service_account_file", "applies only to provider = \"google\"");
        if (r.has("subject") && !o.uses_service_account()) r.error("subject", "needs service_account_file");

        if (!required || !kind_known_ || !provider_ok) return;
        auto reported = [&](std::string_view key) { return reported_since(before, r.path(key)); };
        auto require = [&](std::string_view key, bool present, std::string why) {
            if (!present && !reported(key)) add(r.path(key), "is required " + why);
        };
        const std::string for_grant = o.grant == oauth_grant::client_credentials
                                          ? "for grant = \"client_credentials\""
                                          : "for grant = \"refresh_token\"";
        if (o.token_url.empty() && !reported("token_url") && !reported("tenant")) {
            if (o.provider == oauth_provider::microsoft)
                add(r.path("tenant"), "is required to find the token endpoint (or set token_url)");
            else
                add(r.path("token_url"), "is required for provider = \"generic\"");
        }
        if (o.scope.empty()) require("scope", false, "for provider = \"generic\"");
        if (o.provider == oauth_provider::google && o.grant == oauth_grant::client_credentials) {
            // App-only access to Gmail is a service account acting for a user.
            require("service_account_file", o.uses_service_account(),
                    "for provider = \"google\" with grant = \"client_credentials\" (a service account key)");
            return;
        }
        require("client_id", !o.client_id.empty(), for_grant);
        if (o.grant == oauth_grant::refresh_token) {
            require("refresh_token_file", !o.refresh_token_file.empty(), for_grant);
            if (o.provider == oauth_provider::google && !o.has_secret_source())
                add(r.prefix(), "a client secret is required for Google's refresh-token grant");
            if (o.uses_service_account())
                r.error("service_account_file", "is for grant = \"client_credentials\"");
            return;
        }
        if (o.has_secret_source() && o.uses_certificate()) {
            add(r.prefix(), "set either a client secret or certificate_file, not both");
        } else if (!o.has_secret_source() && !o.uses_certificate() && !reported("client_secret_file") &&
                   !reported("client_secret_env") && !reported("client_secret_credential")) {
            add(r.prefix(), "one of client_secret_file, client_secret_env, client_secret_credential and "
                            "certificate_file is required " + for_grant);
        }
    }

    void log(const toml::table* t, log_config& l) {
        table_reader r(or_empty(t), "log", problems_);
        const int i = read_choice(r, "level", {"trace", "debug", "info", "warn", "error"});
        if (i >= 0) {
            static constexpr std::array<std::string_view, 5> names{"trace", "debug", "info", "warn", "error"};
            l.level = names[static_cast<std::size_t>(i)];
        }
        if (const int f = read_choice(r, "format", {"text", "json"}); f >= 0) l.format = f == 0 ? "text" : "json";
        r.finish();
    }

    void admin(const toml::table* t, admin_config& a) {
        table_reader r(or_empty(t), "admin", problems_);
        std::string listen;
        if (r.read("listen", listen)) {
            if (listen.empty()) {
                a.listen.reset();
            } else {
                listen_address address;
                std::string why;
                if (parse_listen_address(listen, address, why)) {
                    a.listen = address;
                } else {
                    r.error("listen", why);
                }
            }
        }
        read_path(r, "users_file", a.users_file);  // "" stays "": no console users
        r.finish();
    }

    void cluster(const toml::table* t, cluster_config& c) {
        table_reader r(or_empty(t), "cluster", problems_);
        std::string redis;
        if (r.read("redis", redis) && !redis.empty()) {
            redis_endpoint endpoint;
            std::string why;
            // The messages of parse_redis_url never show the password.
            if (parse_redis_url(redis, endpoint, why)) {
                c.redis = std::move(endpoint);
            } else {
                r.error("redis", why);
            }
        }
        r.read_number("nodes", c.nodes, 1, 1000);
        if (r.read("key_prefix", c.key_prefix) &&
            (c.key_prefix.size() > 64 || std::any_of(c.key_prefix.begin(), c.key_prefix.end(), [](char ch) {
                 const auto u = static_cast<unsigned char>(ch);
                 return u <= 0x20 || u >= 0x7f;
             }))) {
            r.error("key_prefix", "must be at most 64 printable ASCII characters without spaces");
        }
        r.read_number("timeout_ms", c.timeout_ms, 1, 60000);
        r.finish();
    }

    std::filesystem::path dir_;
    bool kind_known_ = true;
    bool upstream_host_set_ = false;
    std::vector<problem>& problems_;
    std::vector<warning>& warnings_;
};

}  // namespace

std::string listen_address::to_string() const {
    const std::string p = std::to_string(port);
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
    return host + ":" + p;
}

std::string error::to_string() const {
    std::string out = file.string();
    out += ": ";
    if (!key.empty()) {
        out += key;
        out += ": ";
    }
    out += message;
    return out;
}

bool parse_listen_address(std::string_view text, listen_address& out, std::string& why) {
    const auto fail = [&] {
        why = "expected HOST:PORT with an IP address and a port (0-65535), e.g. \"127.0.0.1:587\" or \"[::1]:587\", got \"" +
              std::string(text) + "\"";
        return false;
    };
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return fail();
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        in6_addr a6{};
        const std::string h(host);
        if (::inet_pton(AF_INET6, h.c_str(), &a6) != 1) return fail();
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return fail();
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return fail();  // IPv6 needs brackets
        in_addr a4{};
        const std::string h(host);
        if (::inet_pton(AF_INET, h.c_str(), &a4) != 1) return fail();
    }
    if (port.empty() || port.size() > 5) return fail();
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value > 65535) return fail();
    out.host = std::string(host);
    out.port = static_cast<std::uint16_t>(value);
    why.clear();
    return true;
}

parse_result parse_text(std::string_view text, const std::filesystem::path& file) {
    parse_result result;
    result.cfg.source = file;
    std::string syntax_error;
    const auto root = toml_reader::parse_document(text, file, syntax_error);
    if (!root) {
        result.errors.push_back({file, "", std::move(syntax_error)});
        return result;
    }
    std::vector<problem> problems;
    config_parser parser(file, problems, result.warnings);
    parser.parse(*root, result.cfg);
    for (auto& p : problems) result.errors.push_back({file, std::move(p.key), std::move(p.message)});
    return result;
}

parse_result parse_file(const std::filesystem::path& file) {
    std::string read_error;
    const auto text = toml_reader::read_file(file, read_error);
    if (!text) {
        parse_result result;
        result.cfg.source = file;
        result.errors.push_back({file, "", std::move(read_error)});
        return result;
    }
    return parse_text(*text, file);
}

const device_network* config::device_network_for(std::string_view client_ip, std::string_view listener_kind,
                                                  std::string_view listener_address) const {
    const auto ip = network::parse_address(client_ip);
    if (!ip) return nullptr;
    const device_network* best = nullptr;
    unsigned best_prefix = 0;
    for (const auto& d : device_networks) {
        if (!listener_named(d.listeners, listener_kind, listener_address)) continue;
        for (const auto& n : d.networks) {
            if (!n.contains(*ip) || (best != nullptr && n.prefix <= best_prefix)) continue;
            best = &d;
            best_prefix = n.prefix;
        }
    }
    return best;
}

}  // namespace subrelay::conf
