#include "relay/server/proxy_header.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

namespace subrelay::relay {

namespace {

constexpr std::string_view v1_signature = "PROXY ";
constexpr std::string_view v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);

proxy_parse invalid(std::string why) {
    proxy_parse p;
    p.state = proxy_parse::status::invalid;
    p.error = std::move(why);
    return p;
}

proxy_parse incomplete(std::size_t wanted) {
    proxy_parse p;
    p.wanted = wanted;
    return p;
}

// `text` as an address of `family` (AF_INET, AF_INET6), in canonical text
// form; empty when it is not one.
std::string address_text(int family, std::string_view text) {
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) return {};
    const std::string s(text);
    std::array<unsigned char, 16> raw{};
    if (inet_pton(family, s.c_str(), raw.data()) != 1) return {};
    std::array<char, INET6_ADDRSTRLEN> out{};
    if (inet_ntop(family, raw.data(), out.data(), out.size()) == nullptr) return {};
    return out.data();
}

std::string raw_address_text(int family, const unsigned char* raw) {
    std::array<char, INET6_ADDRSTRLEN> out{};
    if (inet_ntop(family, raw, out.data(), out.size()) == nullptr) return {};
    return out.data();
}

// A port in decimal, 0-65535, without leading zeros.
bool parse_port(std::string_view text, std::uint16_t& port) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

// "PROXY TCP4 192.0.2.7 198.51.100.1 51234 587\r\n", "PROXY UNKNOWN ...\r\n".
proxy_parse parse_v1(std::string_view bytes) {
    const std::string_view head = bytes.substr(0, proxy_v1_max_length);
    const auto cr = head.find('\r');
    const auto lf = head.find('\n');
    if (lf != std::string_view::npos && (cr == std::string_view::npos || cr + 1 != lf))
        return invalid("PROXY v1 line ends in a bare LF");
    if (cr == std::string_view::npos || cr + 1 >= head.size()) {
        // No CRLF yet (or a CR as the last byte): the line goes on, up to the limit.
        if (head.size() >= proxy_v1_max_length) return invalid("PROXY v1 line longer than 107 bytes");
        return incomplete(proxy_v1_max_length - head.size());
    }
    if (head[cr + 1] != '\n') return invalid("PROXY v1 line has a CR without LF");
    std::string_view line = head.substr(v1_signature.size(), cr - v1_signature.size());

    proxy_parse p;
    p.state = proxy_parse::status::done;
    p.length = cr + 2;
    p.header.version = 1;
    // Fields are separated by exactly one space.
    auto next_field = [&line]() -> std::string_view {
        const auto sp = line.find(' ');
        const std::string_view field = line.substr(0, sp);
        line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
        return field;
    };
    const std::string_view protocol = next_field();
    if (protocol == "UNKNOWN") return p;  // the rest of the line is ignored
    int family = 0;
    if (protocol == "TCP4") {
        family = AF_INET;
    } else if (protocol == "TCP6") {
        family = AF_INET6;
    } else {
        return invalid("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
    }
    const std::string_view source = next_field();
    const std::string_view destination = next_field();
    const std::string_view source_port = next_field();
    const std::string_view destination_port = line;
    p.header.source = address_text(family, source);
    p.header.destination = address_text(family, destination);
    if (p.header.source.empty() || p.header.destination.empty())
        return invalid("PROXY v1 address is not an " + std::string(protocol == "TCP4" ? "IPv4" : "IPv6") +
                       " address");
    if (!parse_port(source_port, p.header.source_port) ||
        !parse_port(destination_port, p.header.destination_port))
        return invalid("PROXY v1 port is not a number from 0 to 65535");
    return p;
}

proxy_parse parse_v2(std::string_view bytes) {
    if (bytes.size() < proxy_v2_fixed_length) return incomplete(proxy_v2_fixed_length - bytes.size());
    const auto byte = [&bytes](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
    const unsigned version = byte(12) >> 4;
    const unsigned command = byte(12) & 0x0fU;
    const unsigned family = byte(13) >> 4;
    const unsigned transport = byte(13) & 0x0fU;
    const std::size_t length = (static_cast<std::size_t>(byte(14)) << 8) | byte(15);
    if (version != 2) return invalid("PROXY v2 header with version " + std::to_string(version));
    if (command > 1) return invalid("PROXY v2 header with command " + std::to_string(command));
    if (proxy_v2_fixed_length + length > proxy_v2_max_length)
        return invalid("PROXY v2 header of " + std::to_string(proxy_v2_fixed_length + length) +
                       " bytes (at most " + std::to_string(proxy_v2_max_length) + ")");
    const std::size_t total = proxy_v2_fixed_length + length;
    if (bytes.size() < total) return incomplete(total - bytes.size());

    proxy_parse p;
    p.state = proxy_parse::status::done;
    p.length = total;
    p.header.version = 2;
    if (command == 0) {  // LOCAL: whatever follows is ignored
        p.header.local = true;
        return p;
    }
    constexpr unsigned inet = 1, inet6 = 2, stream = 1;
    const auto* block = reinterpret_cast<const unsigned char*>(bytes.data()) + proxy_v2_fixed_length;
    const std::size_t address_size = family == inet ? 4 : family == inet6 ? 16 : 0;
    if (address_size == 0) return p;  // UNSPEC, UNIX: the proxy stands for the client
    if (length < 2 * address_size + 4)
        return invalid("PROXY v2 address block of " + std::to_string(length) + " bytes is too short for its family");
    if (transport != stream) return p;  // not TCP: no client address of ours
    const int af = family == inet ? AF_INET : AF_INET6;
    p.header.source = raw_address_text(af, block);
    p.header.destination = raw_address_text(af, block + address_size);
    const unsigned char* ports = block + 2 * address_size;
    p.header.source_port = static_cast<std::uint16_t>((ports[0] << 8) | ports[1]);
    p.header.destination_port = static_cast<std::uint16_t>((ports[2] << 8) | ports[3]);
    // TLVs (after the addresses, within `length`) are skipped.
    return p;
}

}  // namespace

proxy_parse parse_proxy_header(std::string_view bytes) {
    // Until the signature is complete, the bytes must be a prefix of one.
    const std::size_t v1_seen = std::min(bytes.size(), v1_signature.size());
    const std::size_t v2_seen = std::min(bytes.size(), v2_signature.size());
    const bool maybe_v1 = bytes.substr(0, v1_seen) == v1_signature.substr(0, v1_seen);
    const bool maybe_v2 = bytes.substr(0, v2_seen) == v2_signature.substr(0, v2_seen);
    if (!maybe_v1 && !maybe_v2) return invalid("no PROXY protocol header");
    if (maybe_v2 && bytes.size() >= v2_signature.size()) return parse_v2(bytes);
    if (maybe_v1 && bytes.size() >= v1_signature.size()) return parse_v1(bytes);
    // A prefix of a signature: at most the shorter of what either could take.
    if (maybe_v1 && maybe_v2) return incomplete(proxy_v2_fixed_length - bytes.size());
    if (maybe_v2) return incomplete(proxy_v2_fixed_length - bytes.size());
    return incomplete(proxy_v1_max_length - bytes.size());
}

}  // namespace subrelay::relay
