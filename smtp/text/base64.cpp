#include "smtp/text/base64.hpp"

#include <array>
#include <cstdint>

namespace subrelay::text {

namespace {

constexpr std::string_view standard = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using decode_table = std::array<std::int8_t, 256>;

constexpr decode_table make_table(std::string_view alphabet) {
    decode_table t{};
    for (auto& v : t) v = -1;
    for (std::size_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}
constexpr auto standard_table = make_table(standard);
constexpr auto url_table = make_table(url);

std::uint32_t byte(std::string_view data, std::size_t i) { return static_cast<unsigned char>(data[i]); }

std::string encode(std::string_view data, std::string_view alphabet, bool pad) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const std::uint32_t v = (byte(data, i) << 16) | (byte(data, i + 1) << 8) | byte(data, i + 2);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    const std::size_t rest = data.size() - i;
    if (rest == 1) {
        const std::uint32_t v = byte(data, i) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        if (pad) out += "==";
    } else if (rest == 2) {
        const std::uint32_t v = (byte(data, i) << 16) | (byte(data, i + 1) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

// Decodes groups of four characters; `missing` (0, 1 or 2) characters of
// the last group are absent or padding. Unused bits must be zero
// (canonical encoding).
std::optional<std::string> decode_groups(std::string_view text, const decode_table& table, std::size_t missing) {
    std::string out;
    out.reserve(text.size() / 4 * 3 + 2);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 >= text.size();
        const std::size_t present = last ? 4 - missing : 4;
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            v <<= 6;
            if (j >= present) continue;
            const auto d = table[static_cast<unsigned char>(text[i + j])];
            if (d < 0) return std::nullopt;
            v |= static_cast<std::uint32_t>(d);
        }
        if (present == 2 && (v & 0xFFFF) != 0) return std::nullopt;
        if (present == 3 && (v & 0xFF) != 0) return std::nullopt;
        out += static_cast<char>((v >> 16) & 0xFF);
        if (present > 2) out += static_cast<char>((v >> 8) & 0xFF);
        if (present > 3) out += static_cast<char>(v & 0xFF);
    }
    return out;
}

}  // namespace

std::string base64_encode(std::string_view data) { return encode(data, standard, true); }

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    // Padding only in the last group, only in its last two places.
    std::size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    return decode_groups(text.substr(0, text.size() - pad), standard_table, pad);
}

std::string base64url_encode(std::string_view data) { return encode(data, url, false); }

std::optional<std::string> base64url_decode(std::string_view text) {
    const std::size_t rest = text.size() % 4;
    if (rest == 1) return std::nullopt;
    return decode_groups(text, url_table, rest == 0 ? 0 : 4 - rest);
}

}  // namespace subrelay::text
