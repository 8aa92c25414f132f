// The configuration parser (subrelay.toml) and the network and listen
// address syntax it uses.
// Input: a configuration file's text (also tried as a network and as a
// listen address).
// Checked: parse_text never throws and reports every problem with a message
// under the file's name; a valid configuration answers its lookups; a network
// or listen address that parses prints as text that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "conf/network.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::conf;

const std::filesystem::path file = "/nonexistent/subrelay.toml";

void check_network(std::string_view text) {
    network n;
    std::string why;
    if (!network::parse(text, n, why)) {
        FUZZ_CHECK(!why.empty());
        return;
    }
    FUZZ_CHECK(n.prefix <= 128);
    network again;
    FUZZ_CHECK(network::parse(n.to_string(), again, why) && again == n);
    FUZZ_CHECK(n.contains(n.address));
}

void check_listen_address(std::string_view text) {
    listen_address a;
    std::string why;
    if (!parse_listen_address(text, a, why)) return;
    listen_address again;
    FUZZ_CHECK(parse_listen_address(a.to_string(), again, why));
    FUZZ_CHECK(again.host == a.host && again.port == a.port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const parse_result r = parse_text(text, file);
    for (const auto& e : r.errors) {
        FUZZ_CHECK(!e.message.empty());
        FUZZ_CHECK(e.to_string().starts_with(file.string()));
    }
    if (r.ok()) {
        const config& c = r.cfg;
        (void)c.device_network_for("10.1.20.7", "submission", "0.0.0.0:587");
        (void)c.device_network_for("2001:db8::1", "submissions", "[::]:465");
        (void)c.profile_for_mailbox("relay@contoso.com");
        FUZZ_CHECK(c.find_profile("default") != nullptr);
        for (const auto& p : c.oauth_profiles) FUZZ_CHECK(c.find_profile(p.name) != nullptr);
        for (const auto& a : c.server.submission) check_listen_address(a.to_string());
        for (const auto& d : c.device_networks)
            for (const auto& n : d.networks) check_network(n.to_string());
    }
    if (size <= 256) {
        check_network(text);
        check_listen_address(text);
    }
    return 0;
}
