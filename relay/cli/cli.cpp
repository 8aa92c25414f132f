#include "relay/cli/cli.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <optional>

#include <boost/asio/io_context.hpp>

#include "auth/password.hpp"
#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "policy/policy.hpp"
#include "relay/cli/admin.hpp"
#include "relay/delivery/credentials.hpp"
#include "relay/server/device_tls.hpp"
#include "relay/cli/oauth_cli.hpp"
#include "relay/cli/queue_cli.hpp"
#include "relay/server/server.hpp"
#include "relay/cli/test_upstream.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/server/tls.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace {

constexpr const char* default_config = "/etc/subrelay/subrelay.toml";

constexpr const char* main_usage = R"(usage: subrelay VERB [options]

SMTP submission relay: devices authenticate with a local password, messages
are relayed to Exchange Online (or Gmail) with OAuth2 (SASL XOAUTH2).

verbs:
  serve          run the relay in the foreground
  check-config   validate the configuration and the policy file
  hash-password  read a password on standard input, print its crypt(3) hash
  queue          list, show, retry, hold, release or delete queued messages
  oauth          sign in a delegated profile (login), or show each profile's tokens (status)
  test-upstream  get a token, connect, EHLO and AUTH upstream, stop before MAIL

administration (like Exchange Online's cmdlets; verbs are case-insensitive):
@ADMIN@

options:
  --help         this text; `subrelay VERB --help` describes a verb
  --version      print the version

The configuration is read from --config FILE (default /etc/subrelay/subrelay.toml).
)";

struct verb_spec {
    const char* usage;
    std::function<int(const std::map<std::string, std::string>&, std::istream&, std::ostream&, std::ostream&)> run;
    std::vector<std::string> value_options;  // options taking a value
};

int cmd_serve(const std::map<std::string, std::string>& opts, std::istream&, std::ostream&, std::ostream&) {
    return serve(opts.at("--config"));
}

int cmd_check_config(const std::map<std::string, std::string>& opts, std::istream&, std::ostream& out,
                     std::ostream& err) {
    const std::string file = opts.at("--config");
    auto parsed = conf::parse_file(file);
    std::vector<std::string> problems;
    for (const auto& e : parsed.errors) problems.push_back(e.to_string());
    if (parsed.ok()) {
        const conf::config& cfg = parsed.cfg;
        auto pol = policy::load_file(cfg.policy.file);
        for (const auto& e : pol.errors) problems.push_back(e.to_string());
        if (!cfg.server.submission.empty() || !cfg.server.submissions.empty()) {
            try {
                server_tls contexts(cfg);  // the certificates, and each device profile's TLS settings
            } catch (const tls_setting_error& e) {
                problems.push_back(file + ": " + e.what());
            } catch (const std::exception& e) {
                problems.push_back(file + ": tls: " + e.what());
            }
        }
        if (cfg.upstream.kind == conf::upstream_kind::smtp) {
            if (cfg.upstream.auth == conf::upstream_auth::xoauth2) {
                // Reads every profile's secret, certificate, key and key file.
                try {
                    boost::asio::io_context scratch;
                    upstream_credentials credentials(scratch.get_executor(), cfg);
                } catch (const std::exception& e) {
                    problems.push_back(file + ": " + e.what());
                }
            }
            try {
                auto client = make_client_context(cfg.upstream.ca_file);
                if (!cfg.upstream.client_cert_file.empty()) {
                    try {
                        use_client_certificate(client, cfg.upstream.client_cert_file, cfg.upstream.client_key_file);
                    } catch (const std::exception& e) {
                        problems.push_back(file + ": upstream.client_cert_file: " + e.what());
                    }
                }
            } catch (const std::exception& e) {
                problems.push_back(file + ": upstream.ca_file: " + e.what());
            }
        }
    }
    for (const auto& w : parsed.warnings) err << file << ": " << w.key << ": warning: " << w.message << '\n';
    if (!problems.empty()) {
        for (const auto& p : problems) err << p << '\n';
        return 1;
    }
    out << "ok\n";
    return 0;
}

// Turns terminal echo off for its lifetime when standard input is a terminal.
class echo_off {
public:
    explicit echo_off(bool on_stdin) {
        if (on_stdin && ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    ~echo_off() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
    }
    echo_off(const echo_off&) = delete;
    echo_off& operator=(const echo_off&) = delete;
    [[nodiscard]] bool active() const { return active_; }

private:
    termios saved_{};
    bool active_ = false;
};

int cmd_hash_password(const std::map<std::string, std::string>& opts, std::istream& in, std::ostream& out,
                      std::ostream& err) {
    static const std::map<std::string, std::string> schemes = {
        {"yescrypt", "$y$"}, {"bcrypt", "$2b$"}, {"sha512-crypt", "$6$"}};
    std::string scheme = opts.count("--scheme") ? opts.at("--scheme") : "yescrypt";
    auto it = schemes.find(scheme);
    if (it == schemes.end()) {
        err << "subrelay hash-password: --scheme: expected yescrypt, bcrypt or sha512-crypt\n";
        return 2;
    }
    std::string password;
    bool got;
    {
        // At a terminal, ask without echoing the password.
        echo_off quiet(&in == &std::cin);
        if (quiet.active()) err << "Password: " << std::flush;
        got = static_cast<bool>(std::getline(in, password));
        if (quiet.active()) err << '\n';
    }
    if (!got) {
        err << "subrelay hash-password: no password on standard input\n";
        return 1;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
        err << "subrelay hash-password: the password is empty\n";
        return 1;
    }
    try {
        out << auth::hash_password(password, it->second) << '\n';
    } catch (const std::exception& e) {
        err << "subrelay hash-password: " << e.what() << '\n';
        return 1;
    }
    return 0;
}

const std::map<std::string, verb_spec>& verbs() {
    static const std::map<std::string, verb_spec> table = {
        {"serve",
         {"usage: subrelay serve [--config FILE]\n\n"
          "Runs the relay in the foreground, logging to standard error.\n"
          "SIGTERM or SIGINT stop it cleanly (open sessions get 421 4.3.2, accepted\n"
          "messages stay in the spool); SIGHUP reloads the policy file.\n",
          cmd_serve,
          {"--config"}}},
        {"check-config",
         {"usage: subrelay check-config [--config FILE]\n\n"
          "Validates the configuration, the policy file it names, the TLS certificate\n"
          "and the OAuth client secret. Prints `ok` and exits 0, or prints one line per\n"
          "problem (`FILE: key: what is wrong`) and exits 1.\n",
          cmd_check_config,
          {"--config"}}},
        {"hash-password",
         {"usage: subrelay hash-password [--scheme yescrypt|bcrypt|sha512-crypt]\n\n"
          "Reads one password from standard input and prints its crypt(3) hash, for\n"
          "the password_hash key of an account in the policy file. yescrypt by default.\n",
          cmd_hash_password,
          {"--scheme"}}},
    };
    return table;
}

std::string usage_text() {
    std::string text = main_usage;
    const std::string marker = "@ADMIN@\n";
    text.replace(text.find(marker), marker.size(), admin::summary());
    return text;
}

}  // namespace

std::optional<conf::config> load_config(const std::string& file, std::ostream& err) {
    auto parsed = conf::parse_file(file);
    if (!parsed.ok()) {
        for (const auto& e : parsed.errors) err << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(parsed.cfg);
}

cli_word split_cli_word(const std::string& word) {
    cli_word w{word, std::nullopt};
    if (const auto eq = word.find('='); word.rfind("--", 0) == 0 && eq != std::string::npos) {
        w.value = word.substr(eq + 1);
        w.name = word.substr(0, eq);
    }
    if (w.name == "-c") w.name = "--config";
    return w;
}

std::optional<std::string> take_value(const cli_word& w, const std::vector<std::string>& args, std::size_t& i) {
    if (w.value) return w.value;
    if (i + 1 >= args.size()) return std::nullopt;
    return args[++i];
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        (args.empty() ? err : out) << usage_text();
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version" || args[0] == "version") {
        out << "subrelay " << SUBRELAY_VERSION << '\n';
        return 0;
    }
    if (args[0] == "queue") return run_queue_cli(args, in, out, err);
    if (args[0] == "oauth") return run_oauth_cli(args, in, out, err);
    if (args[0] == "test-upstream") return run_test_upstream(args, in, out, err);
    // Admin verbs are PowerShell cmdlet names: accept them in any case
    // (Set-CASMailbox, set-casmailbox).
    if (const std::string verb = text::ascii_lower(args[0]); admin::is_verb(verb)) {
        std::vector<std::string> admin_args = args;
        admin_args[0] = verb;
        return admin::run(admin_args, in, out, err);
    }
    auto it = verbs().find(args[0]);
    if (it == verbs().end()) {
        err << "subrelay: unknown verb '" << args[0] << "' (see subrelay --help)\n";
        return 2;
    }
    const verb_spec& spec = it->second;
    std::map<std::string, std::string> opts;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const cli_word w = split_cli_word(args[i]);
        const std::string& a = w.name;
        if (w.is_help()) {
            out << spec.usage;
            return 0;
        }
        bool takes_value = std::find(spec.value_options.begin(), spec.value_options.end(), a) != spec.value_options.end();
        if (!takes_value) {
            err << "subrelay " << args[0] << ": unknown option '" << a << "'\n" << spec.usage;
            return 2;
        }
        const std::optional<std::string> value = take_value(w, args, i);
        if (!value) {
            err << "subrelay " << args[0] << ": " << a << " needs a value\n";
            return 2;
        }
        opts[a] = *value;
    }
    if (!opts.count("--config")) opts["--config"] = default_config;
    return spec.run(opts, in, out, err);
}

}  // namespace subrelay::relay
