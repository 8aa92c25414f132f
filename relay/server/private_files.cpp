#include "relay/server/private_files.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <string>

namespace subrelay::relay {

namespace {

void check(std::vector<conf::warning>& out, const std::string& key, const std::filesystem::path& file) {
    struct stat st {};
    if (file.empty() || ::stat(file.c_str(), &st) != 0) return;
    if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0) return;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    out.push_back({key, file.string() + " can be " + ((st.st_mode & S_IROTH) != 0 ? "read" : "written") +
                            " by other users (mode " + mode + "): chmod o-rwx " + file.string()});
}

void check_profile(std::vector<conf::warning>& out, const conf::oauth_config& p) {
    const std::string prefix = p.name == "default" ? "oauth." : "oauth.profiles." + p.name + ".";
    check(out, prefix + "private_key_file", p.private_key_file);
    check(out, prefix + "refresh_token_file", p.refresh_token_file);
    check(out, prefix + "service_account_file", p.service_account_file);
}

}  // namespace

std::vector<conf::warning> exposed_secret_files(const conf::config& cfg) {
    std::vector<conf::warning> out;
    check(out, "policy.file", cfg.policy.file);
    for (std::size_t i = 0; i < cfg.tls.certificates.size(); ++i)
        check(out, cfg.tls.certificates.size() == 1 ? "tls.key_file" : "tls.key_file[" + std::to_string(i) + "]",
              cfg.tls.certificates[i].key_file);
    check(out, "upstream.client_key_file", cfg.upstream.client_key_file);
    check_profile(out, cfg.oauth);
    for (const auto& p : cfg.oauth_profiles) check_profile(out, p);
    return out;
}

}  // namespace subrelay::relay
