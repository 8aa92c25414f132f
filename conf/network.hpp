#pragma once
// IPv4 and IPv6 networks, and the listener names that settings bound to a
// network may list; shared by the configuration's device profiles and the
// policy's bindings.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subrelay::conf {

// An IPv4 or IPv6 network ("10.1.20.0/24", "2001:db8::/48", or one address).
struct network {
    std::array<std::uint8_t, 16> address{};         // IPv4 stored as IPv4-mapped IPv6
    unsigned prefix = 128;                          // in IPv6 bits (IPv4 /24 => 120)
    // Parses; false with `why` set on error.
    static bool parse(std::string_view text, network& out, std::string& why);
    // `ip` in text form ("10.1.20.7", "::1", "::ffff:10.1.20.7").
    [[nodiscard]] bool contains(std::string_view ip) const;
    // "10.1.20.0/24", "2001:db8::/48"; a single address without a prefix.
    [[nodiscard]] std::string to_string() const;

    // An address in text form as 16 bytes (IPv4 as IPv4-mapped IPv6); a
    // zone ("%eth0") is ignored. nullopt when not an address.
    static std::optional<std::array<std::uint8_t, 16>> parse_address(std::string_view ip);
    [[nodiscard]] bool contains(const std::array<std::uint8_t, 16>& ip) const;

    friend bool operator==(const network&, const network&) = default;
};

// A listener as a setting may name it: a kind ("submission", "submissions")
// or a listen address ("127.0.0.1:587", "[::1]:465").
bool valid_listener_name(std::string_view name);

// Whether `listeners` (empty: every listener) names the listener of this
// kind and address.
bool listener_named(const std::vector<std::string>& listeners, std::string_view kind, std::string_view address);

}  // namespace subrelay::conf
