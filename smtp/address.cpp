#include "smtp/address.hpp"

#include <cstring>

#include "smtp/text/ascii.hpp"

namespace subrelay::smtp {

namespace {

constexpr std::size_t max_local_part = 64;   // RFC 5321 4.5.3.1.1
constexpr std::size_t max_domain = 255;      // RFC 5321 4.5.3.1.2
constexpr std::size_t max_label = 63;

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Length of the well-formed UTF-8 sequence (of a non-ASCII character) at s[i], 0 if invalid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1Fu; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0Fu; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07u; min = 0x10000; }
    else return 0;
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

bool is_atext(unsigned char c) {
    return is_alpha(c) || is_digit(c) || (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

bool valid_dot_string(std::string_view s, bool utf8) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '.') {
            if (s[i + 1] == '.') return false;  // safe: s.back() != '.'
            ++i;
        } else if (c < 0x80) {
            if (!is_atext(c)) return false;
            ++i;
        } else {
            if (!utf8) return false;
            const auto n = utf8_sequence(s, i);
            if (n == 0) return false;
            i += n;
        }
    }
    return true;
}

// s includes the quotes.
bool valid_quoted_string(std::string_view s, bool utf8) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
    for (std::size_t i = 1; i + 1 < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            if (i + 2 >= s.size()) return false;
            const auto q = static_cast<unsigned char>(s[i + 1]);
            if (q < 32 || q > 126) return false;
            i += 2;
        } else if (c == '"') {
            return false;
        } else if (c < 0x80) {
            if (c < 32 || c > 126) return false;
            ++i;
        } else {
            if (!utf8) return false;
            const auto n = utf8_sequence(s, i);
            if (n == 0) return false;
            i += n;
        }
    }
    return true;
}

bool valid_ipv4(std::string_view s) {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t start = i;
        int value = 0;
        while (i < s.size() && is_digit(static_cast<unsigned char>(s[i])) && i - start < 3) {
            value = value * 10 + (s[i] - '0');
            ++i;
        }
        if (i == start || value > 255) return false;
        if (i - start > 1 && s[start] == '0') return false;
        ++parts;
        if (i == s.size()) break;
        if (s[i] != '.' || parts == 4) return false;
        ++i;
    }
    return parts == 4;
}

bool valid_ipv6(std::string_view s) {
    // Groups of 1-4 hex digits separated by ':', at most one "::", optionally
    // ending in a dotted IPv4 address (counting as two groups).
    if (s.empty()) return false;
    int groups = 0;
    bool compressed = false;
    std::size_t i = 0;
    if (s.starts_with("::")) {
        compressed = true;
        i = 2;
        if (i == s.size()) return true;
    } else if (s.front() == ':') {
        return false;
    }
    while (i < s.size()) {
        std::size_t start = i;
        while (i < s.size() && is_hex(static_cast<unsigned char>(s[i])) && i - start < 5) ++i;
        if (i < s.size() && s[i] == '.') {
            if (!valid_ipv4(s.substr(start))) return false;
            groups += 2;
            i = s.size();
            break;
        }
        if (i == start || i - start > 4) return false;
        ++groups;
        if (i == s.size()) break;
        if (s[i] != ':') return false;
        ++i;
        if (i < s.size() && s[i] == ':') {
            if (compressed) return false;
            compressed = true;
            ++i;
            if (i == s.size()) break;
        } else if (i == s.size()) {
            return false;  // trailing single ':'
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

bool valid_address_literal(std::string_view s) {
    if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
    const auto inner = s.substr(1, s.size() - 2);
    if (inner.size() >= 5 && text::iequals(inner.substr(0, 5), "IPv6:")) return valid_ipv6(inner.substr(5));
    const auto colon = inner.find(':');
    if (colon == std::string_view::npos) return valid_ipv4(inner);
    // General-address-literal: Standardized-tag ":" 1*dcontent
    const auto tag = inner.substr(0, colon);
    const auto content = inner.substr(colon + 1);
    if (tag.empty() || content.empty()) return false;
    for (std::size_t i = 0; i < tag.size(); ++i) {
        const auto c = static_cast<unsigned char>(tag[i]);
        if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    }
    if (tag.back() == '-') return false;
    // RFC 5321 allows "<", ">" and '"' here, but a path ends at the first
    // ">" outside quotes (parse_command), so an address with one could
    // never be used.
    for (const char ch : content) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']' || c == '<' || c == '>' || c == '"') return false;
    }
    return true;
}

bool valid_domain(std::string_view s, bool utf8) {
    if (s.empty() || s.size() > max_domain) return false;
    if (s.front() == '[') return valid_address_literal(s);
    std::size_t start = 0;
    while (true) {
        auto dot = s.find('.', start);
        const auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > max_label) return false;
        if (label.front() == '-' || label.back() == '-') return false;
        for (std::size_t i = 0; i < label.size();) {
            const auto c = static_cast<unsigned char>(label[i]);
            if (c < 0x80) {
                if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
                ++i;
            } else {
                if (!utf8) return false;
                const auto n = utf8_sequence(label, i);
                if (n == 0) return false;
                i += n;
            }
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

}  // namespace

helo_name classify_helo_name(std::string_view name) {
    if (name.size() > max_helo_name) return helo_name::too_long;
    if (name.empty()) return helo_name::invalid;
    if (name.front() == '[') return valid_address_literal(name) ? helo_name::address_literal : helo_name::invalid;
    if (name.back() == '.') name.remove_suffix(1);  // a fully qualified "host.example."
    bool dotted = false;
    std::size_t start = 0;
    while (true) {
        const auto dot = name.find('.', start);
        const auto label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > max_label) return helo_name::invalid;
        for (std::size_t i = 0; i < label.size();) {
            const auto c = static_cast<unsigned char>(label[i]);
            if (c < 0x80) {
                if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return helo_name::invalid;
                ++i;
            } else {
                const auto n = utf8_sequence(label, i);
                if (n == 0) return helo_name::invalid;
                i += n;
            }
        }
        if (dot == std::string_view::npos) break;
        dotted = true;
        start = dot + 1;
    }
    return dotted ? helo_name::domain : helo_name::bare;
}

bool valid_mailbox(std::string_view address, bool utf8) {
    std::size_t at = std::string_view::npos;
    if (!address.empty() && address.front() == '"') {
        // Quoted local part: find its closing quote, honouring backslashes.
        std::size_t i = 1;
        for (; i < address.size(); ++i) {
            if (address[i] == '\\') { ++i; continue; }
            if (address[i] == '"') break;
        }
        if (i >= address.size()) return false;
        at = i + 1;
        if (at >= address.size() || address[at] != '@') return false;
        if (!valid_quoted_string(address.substr(0, at), utf8)) return false;
    } else {
        at = address.find('@');
        if (at == std::string_view::npos) return false;
        if (!valid_dot_string(address.substr(0, at), utf8)) return false;
    }
    if (at > max_local_part) return false;
    return valid_domain(address.substr(at + 1), utf8);
}

std::string_view domain_of(std::string_view address) {
    const auto at = address.rfind('@');
    if (at == std::string_view::npos) return {};
    return address.substr(at + 1);
}

std::string bracketed_list(const std::vector<std::string>& addresses) {
    std::string out;
    for (const auto& a : addresses) {
        if (!out.empty()) out += ',';
        out += '<';
        out += a;
        out += '>';
    }
    return out;
}

}  // namespace subrelay::smtp
