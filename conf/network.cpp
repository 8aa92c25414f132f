#include "conf/network.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace subrelay::conf {

namespace {

using bytes = std::array<std::uint8_t, 16>;

constexpr bytes v4_mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};

bool is_v4_mapped(const bytes& a) { return std::memcmp(a.data(), v4_mapped_prefix.data(), 12) == 0; }

// Clears every bit after the first `prefix` bits.
bytes masked(const bytes& a, unsigned prefix) {
    bytes out = a;
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned first_bit = i * 8;
        if (prefix >= first_bit + 8) continue;
        const unsigned keep = prefix > first_bit ? prefix - first_bit : 0;
        out[i] = static_cast<std::uint8_t>(out[i] & static_cast<std::uint8_t>(0xff00U >> keep));
    }
    return out;
}

// Parses an address; `v4` tells whether it was written as dotted IPv4.
std::optional<bytes> parse_text(std::string_view text, bool& v4) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string s(text);
    bytes out{};
    if (s.find(':') == std::string::npos) {
        std::array<std::uint8_t, 4> a{};
        if (::inet_pton(AF_INET, s.c_str(), a.data()) != 1) return std::nullopt;
        out = v4_mapped_prefix;
        std::memcpy(out.data() + 12, a.data(), 4);
        v4 = true;
        return out;
    }
    if (::inet_pton(AF_INET6, s.c_str(), out.data()) != 1) return std::nullopt;
    v4 = false;
    return out;
}

}  // namespace

std::optional<std::array<std::uint8_t, 16>> network::parse_address(std::string_view ip) {
    if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    if (const auto zone = ip.find('%'); zone != std::string_view::npos) ip = ip.substr(0, zone);
    bool v4 = false;
    return parse_text(ip, v4);
}

bool network::parse(std::string_view text, network& out, std::string& why) {
    if (text.empty()) {
        why = "is empty";
        return false;
    }
    const auto slash = text.find('/');
    const auto address_text = text.substr(0, slash);
    bool v4 = false;
    const auto address = parse_text(address_text, v4);
    if (!address) {
        why = "is not an IPv4 or IPv6 address or network";
        return false;
    }
    const unsigned max_prefix = v4 ? 32 : 128;
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3 ||
            digits.find_first_not_of("0123456789") != std::string_view::npos) {
            why = "has an invalid prefix length (after the '/')";
            return false;
        }
        prefix = 0;
        for (char c : digits) prefix = prefix * 10 + static_cast<unsigned>(c - '0');
        if (prefix > max_prefix) {
            why = "has a prefix length out of range (0 to " + std::to_string(max_prefix) + " for " +
                  (v4 ? "IPv4" : "IPv6") + ")";
            return false;
        }
    }
    network n;
    n.prefix = v4 ? prefix + 96 : prefix;
    n.address = masked(*address, n.prefix);
    if (n.address != *address) {
        why = "has host bits set; use \"" + n.to_string() + "\"";
        return false;
    }
    out = n;
    return true;
}

bool network::contains(const std::array<std::uint8_t, 16>& ip) const {
    const unsigned p = prefix > 128 ? 128 : prefix;
    return masked(ip, p) == masked(address, p);
}

bool network::contains(std::string_view ip) const {
    const auto a = parse_address(ip);
    return a.has_value() && contains(*a);
}

std::string network::to_string() const {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    if (is_v4_mapped(address) && prefix >= 96) {
        if (::inet_ntop(AF_INET, address.data() + 12, buf.data(), static_cast<socklen_t>(buf.size())) == nullptr) return {};
        std::string out(buf.data());
        if (prefix < 128) out += "/" + std::to_string(prefix - 96);
        return out;
    }
    if (::inet_ntop(AF_INET6, address.data(), buf.data(), static_cast<socklen_t>(buf.size())) == nullptr) return {};
    std::string out(buf.data());
    if (prefix < 128) out += "/" + std::to_string(prefix);
    return out;
}

bool valid_listener_name(std::string_view s) {
    if (s.empty()) return false;
    if (s == "submission" || s == "submissions") return true;
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    const auto host = s.substr(0, colon);
    const auto port = s.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
    if (std::stoul(std::string(port)) > 65535) return false;
    if (host.front() == '[') return host.size() > 2 && host.back() == ']';
    return host.find(':') == std::string_view::npos && host.find_first_of(" \t") == std::string_view::npos;
}

bool listener_named(const std::vector<std::string>& listeners, std::string_view kind, std::string_view address) {
    if (listeners.empty()) return true;
    return std::any_of(listeners.begin(), listeners.end(), [&](const std::string& l) {
        return (!kind.empty() && l == kind) || (!address.empty() && l == address);
    });
}

}  // namespace subrelay::conf
