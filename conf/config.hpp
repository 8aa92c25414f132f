#pragma once
// subrelay's configuration: plain structs with defaults, filled once by parse().
// Nothing reads TOML after start-up.
#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

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
    std::uint32_t idle_timeout_seconds = 300;     // per command (RFC 5321 4.5.3.2: 5 min)
    std::uint32_t session_timeout_seconds = 1800; // whole session
};

struct tls_config {
    std::filesystem::path cert_file;   // required when any listener exists
    std::filesystem::path key_file;
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

enum class upstream_kind { smtp, directory };
enum class upstream_tls { starttls, implicit, none };
enum class upstream_auth { xoauth2, none };

struct upstream_config {
    upstream_kind kind = upstream_kind::smtp;
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
    upstream_auth auth = upstream_auth::xoauth2;  // "none": a connector relay trusting our IP or certificate
    std::filesystem::path client_cert_file;       // presented in TLS (connector relays); with client_key_file
    std::filesystem::path client_key_file;
    std::uint32_t max_messages_per_minute = 30;   // per upstream mailbox (Exchange's); 0 = no limit
};

struct oauth_config {
    std::string token_url;             // required for upstream.kind = smtp
    std::string client_id;
    std::filesystem::path client_secret_file;   // one of file/env is required
    std::string client_secret_env;
    std::string scope = "https://outlook.office365.com/.default";
    std::filesystem::path ca_file;
    std::uint32_t timeout_seconds = 30;
};

struct log_config {
    std::string level = "info";        // trace, debug, info, warn, error
};

struct config {
    std::filesystem::path source;      // the file parsed (for messages)
    server_config server;
    tls_config tls;
    policy_config policy;
    spool_config spool;
    queue_config queue;
    upstream_config upstream;
    oauth_config oauth;
    log_config log;
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

}  // namespace subrelay::conf
