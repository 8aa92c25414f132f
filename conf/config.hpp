#pragma once
// subrelay's configuration: plain structs with defaults, filled once by parse().
// Nothing reads TOML after start-up.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "conf/network.hpp"

namespace subrelay::conf {

struct listen_address {
    std::string host;   // "127.0.0.1", "::1", "0.0.0.0"
    std::uint16_t port = 0;  // 0 = any free port (tests)
    [[nodiscard]] std::string to_string() const;  // "127.0.0.1:2587", "[::1]:2587"
};

struct server_config {
    std::string hostname;                         // default: the machine's host name
    std::vector<listen_address> submission;       // STARTTLS listeners; default ["0.0.0.0:587"]
    std::vector<listen_address> submissions;      // implicit-TLS listeners; default []
    std::uint64_t max_message_size = 36700160;    // 35 MiB, like Exchange Online
    std::uint32_t max_recipients = 500;
    bool require_tls_for_auth = true;
    std::uint32_t max_connections = 200;          // simultaneous client sessions
    std::uint32_t max_connections_per_client = 20;     // from one address at once; 0: no limit
    std::uint32_t max_connection_rate_per_client = 60; // connections a minute from one address; 0: no limit
    std::uint32_t idle_timeout_seconds = 300;     // per command (RFC 5321 4.5.3.2: 5 min); 10 s under pressure
    std::uint32_t min_data_rate = 1024;           // bytes a second on average in DATA after 30 s; 0: none
    std::uint32_t session_timeout_seconds = 1800; // whole session
    std::uint32_t stress_session_timeout_seconds = 300;  // whole session, under pressure (above 80 % of max_connections)
    std::uint32_t tls_handshake_timeout_seconds = 60;  // implicit TLS and after STARTTLS
    // Completes an AUTH user name without a domain ("scanner" -> "scanner@DOMAIN"),
    // like Postfix's smtpd_sasl_local_domain. Empty: names are used as given.
    std::string auth_default_domain;
    // Without systemd's User=: bind the ports as root, then run as this
    // user (empty: stay as started).
    std::string user;
    // Load balancers (HAProxy) that send the PROXY protocol header (v1 or
    // v2): a connection from one of these networks must start with it, and
    // the client address it names is the one the relay uses. Empty: off.
    std::vector<network> proxy_protocol_from;
};

enum class tls_version { v1_0, v1_1, v1_2, v1_3 };

// [[device_network]]: what the devices on some networks may do that no other
// client may (old TLS, AUTH without TLS, bare LF line ends). Chosen by the
// client's address (the most specific network wins) and, optionally, the listener.
struct device_network {
    std::vector<network> networks;
    std::vector<std::string> listeners;          // "submission", "submissions" or "host:port"; empty: all
    tls_version tls_min_version = tls_version::v1_2;
    int tls_security_level = -1;                 // OpenSSL security level; -1: OpenSSL's default
    std::string tls_ciphers;                     // OpenSSL cipher list for TLS <= 1.2; empty: the default
    bool auth_without_tls = false;               // AUTH PLAIN/LOGIN offered without TLS
    bool accept_bare_lf = false;                 // a bare LF ends a command or a DATA line

    // Whether its clients need a TLS context of their own.
    [[nodiscard]] bool has_tls_settings() const {
        return tls_min_version != tls_version::v1_2 || tls_security_level >= 0 || !tls_ciphers.empty();
    }
};

// One certificate chain and its private key.
struct tls_certificate {
    std::filesystem::path cert_file;
    std::filesystem::path key_file;
};

struct tls_config {
    // Required when any listener exists. cert_file and key_file are a string
    // or lists of equal length: cert_file[i] goes with key_file[i], so an
    // ECDSA certificate can sit beside an RSA one (one per key type).
    std::vector<tls_certificate> certificates;
    bool session_tickets = true;                    // stateless resumption, keys rotated in memory
    std::uint32_t session_cache_size = 20480;       // server-side cache of sessions (by id); 0 = no cache
    std::uint32_t session_timeout_seconds = 7200;   // how long a session can be resumed
};

struct policy_config {
    std::filesystem::path file;        // default "policy.toml" beside the config
};

struct spool_config {
    std::filesystem::path dir;         // default "spool" beside the config
    std::uint64_t min_free_bytes = 104857600;  // below this, new messages get 452 4.3.1 before DATA
};

struct queue_config {
    std::uint32_t max_lifetime_seconds = 5 * 24 * 3600;   // then the message bounces (Postfix: 5 days)
    std::uint32_t delay_warning_seconds = 4 * 3600;       // a delay notice to the sender; 0 = none
};

// [auth]: what failed logins cost a client address and an account, and
// where passwords are checked.
struct auth_config {
    // Failed AUTH attempts from one address within 10 minutes before the
    // address is refused at connect (421 4.7.0) for a while: 1 minute, then
    // twice as long each time it happens again, up to an hour. 0: no limit.
    std::uint32_t max_failures_per_client = 10;
    // Failed logins to one account from addresses it has never logged in
    // from before the account is locked (Smart Lockout's threshold; 0: no
    // lockout). While locked, logins from those addresses are answered like
    // a wrong password without checking it; its familiar addresses may still
    // log in. The first lock lasts lockout_seconds, each next one twice as
    // long, up to an hour.
    std::uint32_t lockout_threshold = 10;
    std::uint32_t lockout_seconds = 60;
    // Threads that check passwords (crypt(3)), apart from the spool's, and
    // how many logins may wait for them before new ones get 454 4.7.0
    // (0: no bound).
    std::uint32_t verify_threads = 2;
    std::uint32_t max_waiting_logins = 32;
};

// smtp: SMTP with XOAUTH2 (or none); graph: Microsoft Graph's MIME
// sendMail over HTTPS; directory: files (the demo, tests).
enum class upstream_kind { smtp, directory, graph };

// Microsoft Graph's limits per upstream mailbox (and app): requests at once,
// requests in ten minutes, and the size of one request (the MIME send's
// base64 body).
inline constexpr unsigned graph_max_concurrent_requests_limit = 4;
inline constexpr unsigned graph_max_requests_per_window = 10'000;
inline constexpr std::uint32_t graph_window_seconds = 600;
inline constexpr std::uint64_t graph_max_request_bytes = 4 * 1024 * 1024;
// The largest message that fits in one request once base64-encoded (3 MiB),
// and what the relay takes from a device for a Graph lane: 64 KiB less,
// for the Received: and Bcc: fields it adds.
inline constexpr std::uint64_t graph_max_encoded_message = graph_max_request_bytes / 4 * 3;
inline constexpr std::uint64_t graph_max_message_size = graph_max_encoded_message - 64 * 1024;
enum class upstream_tls { starttls, implicit, none };
enum class upstream_auth { xoauth2, none };

struct upstream_config {
    upstream_kind kind = upstream_kind::smtp;   // the default delivery of upstream mailboxes
    std::string host = "smtp.office365.com";
    std::uint16_t port = 587;
    upstream_tls tls = upstream_tls::starttls;
    std::filesystem::path ca_file;     // empty: system CAs
    std::string mailbox;               // default upstream identity (required for kind = smtp)
    std::uint32_t max_connections_per_mailbox = 3;
    std::filesystem::path directory;   // for kind = directory (required then)
    std::uint32_t connect_timeout_seconds = 30;
    std::uint32_t command_timeout_seconds = 300;
    std::uint32_t retry_initial_seconds = 300;    // first retry after a transient failure (about 5 min, doubling)
    std::uint32_t retry_max_seconds = 3600;       // backoff cap
    std::uint32_t max_connection_age_seconds = 600;  // a pooled connection is not reused after this
                                                     // (nor after the expiry of its token)
    upstream_auth auth = upstream_auth::xoauth2;  // "none": a connector relay trusting our IP or certificate
    std::filesystem::path client_cert_file;       // presented in TLS (connector relays); with client_key_file
    std::filesystem::path client_key_file;
    std::uint32_t max_messages_per_minute = 30;   // per upstream mailbox (Exchange's); 0 = no limit
    // Upstream mailboxes that go through Microsoft Graph: requests at once
    // and in ten minutes (Graph's limits per mailbox and app; lower them when
    // the app also sends from elsewhere).
    std::uint32_t graph_max_concurrent_requests = graph_max_concurrent_requests_limit;
    std::uint32_t graph_max_requests_per_10_minutes = graph_max_requests_per_window;
};

enum class oauth_provider { microsoft, google, generic };
enum class oauth_cloud { global, usgov, china };     // Microsoft's national clouds
enum class oauth_grant { client_credentials, refresh_token };
enum class oauth_assertion_alg { ps256, rs256 };

// One OAuth2 profile: how the tokens of some upstream mailboxes are obtained.
// The plain [oauth] table is the profile named "default"; [oauth.profiles.NAME]
// tables add more. Values left out are derived from provider, cloud, tenant
// and grant (see derive_oauth_defaults); every derived value can be set.
struct oauth_config {
    std::string name = "default";
    oauth_provider provider = oauth_provider::microsoft;
    oauth_cloud cloud = oauth_cloud::global;
    std::string tenant;                // Microsoft: tenant id or domain
    oauth_grant grant = oauth_grant::client_credentials;
    std::string token_url;             // derived for microsoft (needs tenant) and google
    std::string device_code_url;       // for `subrelay oauth login`; derived likewise
    std::string scope;                 // derived from provider, cloud and grant
    std::string client_id;             // not needed for a Google service account (the key file names it)
    // The client secret comes from at most one of a file, an environment
    // variable or a systemd credential (a file under $CREDENTIALS_DIRECTORY).
    std::filesystem::path client_secret_file;
    std::string client_secret_env;
    std::string client_secret_credential;
    // Microsoft certificate credential: a signed client assertion instead of a secret.
    std::filesystem::path certificate_file;
    std::filesystem::path private_key_file;
    oauth_assertion_alg assertion_alg = oauth_assertion_alg::ps256;
    std::filesystem::path refresh_token_file;    // grant = refresh_token: read, and rewritten on rotation
    std::filesystem::path service_account_file;  // Google: JSON key with domain-wide delegation
    std::string subject;                         // Google service account: who to act as (default: the mailbox)
    std::vector<std::string> mailboxes;          // upstream mailboxes served (default profile: all others)
    std::string smtp_host;                       // the upstream for these mailboxes; derived
    std::uint16_t smtp_port = 587;
    upstream_tls smtp_tls = upstream_tls::starttls;
    std::filesystem::path ca_file;             // for token_url, device_code_url and graph_url
    std::uint32_t timeout_seconds = 30;
    // How these mailboxes' messages go: smtp or graph (named profiles:
    // `delivery`; the default profile follows upstream.kind).
    upstream_kind delivery = upstream_kind::smtp;
    std::string graph_url;                       // Microsoft Graph's base URL (no /v1.0); derived from cloud
    // Graph: keep a copy in the mailbox's Sent Items. true: one MIME
    // sendMail (Mail.Send), which always keeps one. false: a draft made
    // from the MIME, marked to be deleted once sent (PidTagDeleteAfterSubmit),
    // then sent: Mail.ReadWrite as well.
    bool save_to_sent_items = false;

    [[nodiscard]] bool uses_certificate() const { return !certificate_file.empty(); }
    [[nodiscard]] bool uses_service_account() const { return !service_account_file.empty(); }
    [[nodiscard]] bool has_secret_source() const {
        return !client_secret_file.empty() || !client_secret_env.empty() || !client_secret_credential.empty();
    }
};

// What provider, cloud, tenant, grant and delivery imply: the login host's
// token and device-code URLs, the scope (Exchange Online's for SMTP,
// Microsoft Graph's for graph), the SMTP endpoint and Graph's URL.
struct oauth_defaults {
    std::string token_url;        // empty when it cannot be derived (no tenant, generic provider)
    std::string device_code_url;
    std::string scope;
    std::string smtp_host;
    std::uint16_t smtp_port = 587;
    std::string graph_url;        // Microsoft only
};
oauth_defaults derive_oauth_defaults(oauth_provider provider, oauth_cloud cloud, std::string_view tenant,
                                     oauth_grant grant, upstream_kind delivery = upstream_kind::smtp);

struct log_config {
    std::string level = "info";        // trace, debug, info, warn, error
    std::string format = "text";       // text | json (JSON lines with the message's key=value fields)
};

// [admin]: the HTTP listener for /metrics, /healthz and /readyz, and the
// web console on it.
struct admin_config {
    // Where it listens; loopback by default, none when `listen = ""`.
    std::optional<listen_address> listen = listen_address{"127.0.0.1", 9587};
    // The web console's users (relay/console/users.hpp), resolved beside the
    // config like policy.file; empty (the default): no console users, so no console.
    std::filesystem::path users_file;
};

// Where the nodes of a cluster share their limits: a Redis server, by TCP
// or by Unix socket (cluster.redis).
struct redis_endpoint {
    std::string host;                  // TCP: a host name or an IP address (IPv6 without brackets)
    std::uint16_t port = 0;
    std::filesystem::path socket;      // a Unix socket instead (absolute); empty: TCP
    std::uint32_t database = 0;        // SELECTed after connecting
    std::string password;              // sent with AUTH; a secret: never in a log line or a message
    [[nodiscard]] bool is_unix() const { return !socket.empty(); }
    // "HOST:PORT" ("[::1]:6379") or the socket's path: all that a log line
    // or a message may say about where Redis is.
    [[nodiscard]] std::string location() const;
};

// [cluster]: several nodes behind a load balancer sharing the upstream
// mailboxes' limits and the accounts' quotas in Redis.
struct cluster_config {
    std::optional<redis_endpoint> redis;   // nullopt: no cluster (redis = "", the default)
    // How many nodes share the limits: while Redis cannot be reached, each
    // node keeps limit / nodes of each limit.
    std::uint32_t nodes = 1;
    std::string key_prefix = "subrelay:";  // before every Redis key
    std::uint32_t timeout_ms = 250;        // connecting, and each command
};

struct config {
    std::filesystem::path source;      // the file parsed (for messages)
    server_config server;
    tls_config tls;
    policy_config policy;
    spool_config spool;
    queue_config queue;
    auth_config auth;
    upstream_config upstream;
    oauth_config oauth;                       // the default profile
    std::vector<oauth_config> oauth_profiles;  // [oauth.profiles.NAME], sorted by name
    log_config log;
    admin_config admin;
    cluster_config cluster;
    std::vector<device_network> device_networks;  // [[device_network]], in file order

    // The device profile of a client on a listener ("submission" or
    // "submissions", and its address): among those naming the listener (or
    // none), the one with the network that contains the client most narrowly;
    // the first in the file on a tie. nullptr: the defaults apply.
    [[nodiscard]] const device_network* device_network_for(std::string_view client_ip, std::string_view listener_kind,
                                                           std::string_view listener_address) const;

    // The profile serving an upstream mailbox: the named one listing it, else the default.
    [[nodiscard]] const oauth_config& profile_for_mailbox(std::string_view mailbox) const;
    // How an upstream mailbox's messages go: directory for every one with
    // upstream.kind = "directory", else its profile's delivery.
    [[nodiscard]] upstream_kind delivery_for_mailbox(std::string_view mailbox) const;
    // Whether upstream mailboxes take OAuth tokens (XOAUTH2 or Graph): the profiles are used.
    [[nodiscard]] bool uses_oauth() const {
        return upstream.kind == upstream_kind::graph ||
               (upstream.kind == upstream_kind::smtp && upstream.auth == upstream_auth::xoauth2);
    }
    // Whether every upstream mailbox goes through Microsoft Graph (then the
    // listeners advertise Graph's message size).
    [[nodiscard]] bool all_through_graph() const;
    // A profile by name ("default" or a NAME); nullptr when there is none.
    [[nodiscard]] const oauth_config* find_profile(std::string_view name) const;
};

// One problem: "FILE: key.path: what is wrong".
struct error {
    std::filesystem::path file;
    std::string key;                   // "upstream.port"; empty for file-level problems
    std::string message;
    [[nodiscard]] std::string to_string() const;
};

struct warning {
    std::string key;
    std::string message;
};

struct parse_result {
    config cfg;
    std::vector<error> errors;         // empty: cfg is valid
    std::vector<warning> warnings;     // e.g. upstream.tls = "none"
    [[nodiscard]] bool ok() const { return errors.empty(); }
};

// Reads and validates a config file. Every problem found is reported (not
// only the first). Unknown keys are errors. Relative paths are resolved
// against the config file's directory.
parse_result parse_file(const std::filesystem::path& file);
// Same, from text (file is used in messages and for relative paths).
parse_result parse_text(std::string_view text, const std::filesystem::path& file);

// Parses "host:port" / "[v6]:port".
bool parse_listen_address(std::string_view text, listen_address& out, std::string& why);

// Parses cluster.redis: "redis://HOST:PORT[/DB]",
// "redis://:PASSWORD@HOST:PORT[/DB]" (the password percent-encoded as in
// any URL) or "unix:///path/to/redis.sock[?db=N]". False with `why` set on
// error; `why` never contains the password.
bool parse_redis_url(std::string_view text, redis_endpoint& out, std::string& why);
// The URL with whatever stands before its '@' (the password) replaced by
// "***", for messages: "redis://:***@10.0.0.5:6379/2".
std::string mask_redis_url(std::string_view text);

}  // namespace subrelay::conf
