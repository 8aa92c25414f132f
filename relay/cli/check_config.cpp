// `subrelay check-config`: the configuration, the policy file and the web
// console's users file it names, the TLS certificates and device profiles,
// and every OAuth profile's secret, certificate and key, each problem on its
// own line.
#include <boost/asio/io_context.hpp>
#include <ostream>

#include "policy/policy.hpp"
#include "relay/cli/verb.hpp"
#include "relay/console/users.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/delivery/credentials.hpp"
#include "relay/server/device_tls.hpp"
#include "relay/server/private_files.hpp"
#include "relay/server/tls.hpp"

namespace subrelay::relay {

namespace {

// What is wrong beyond the configuration file's own keys.
std::vector<std::string> check_what_it_names(const std::string& file, const conf::config& cfg) {
    std::vector<std::string> problems;
    auto pol = policy::load_file(cfg.policy.file);
    for (const auto& e : pol.errors) problems.push_back(e.to_string());
    if (!cfg.admin.users_file.empty()) {
        // The web console's users (a missing file is no users).
        for (auto& e : console::load_users(cfg.admin.users_file).errors) problems.push_back(std::move(e));
    }
    if (!cfg.server.submission.empty() || !cfg.server.submissions.empty()) {
        try {
            server_tls contexts(cfg);  // the certificates, and each device profile's TLS settings
        } catch (const tls_setting_error& e) {
            problems.push_back(file + ": " + e.what());
        } catch (const std::exception& e) {
            problems.push_back(file + ": tls: " + e.what());
        }
    }
    if (cfg.upstream.kind != conf::upstream_kind::directory) {
        if (cfg.uses_oauth()) {
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
    return problems;
}

}  // namespace

int run_check_config(invocation& v) {
    const std::string file = v.config_file();
    const auto parsed = read_config(file);
    std::vector<std::string> problems;
    for (const auto& e : parsed.errors) problems.push_back(e.to_string());
    if (parsed.ok()) {
        for (auto& p : check_what_it_names(file, parsed.cfg)) problems.push_back(std::move(p));
    }
    std::vector<conf::warning> warnings = parsed.warnings;
    if (parsed.ok()) {
        for (auto& w : exposed_secret_files(parsed.cfg)) warnings.push_back(std::move(w));
    }
    for (const auto& w : warnings) v.err << file << ": " << w.key << ": warning: " << w.message << '\n';
    if (!problems.empty()) {
        for (const auto& p : problems) v.err << p << '\n';
        return 1;
    }
    v.out << "ok\n";
    return 0;
}

}  // namespace subrelay::relay
