// The -Filter of get-casmailbox, Format-List, and generated passwords.
#include <openssl/rand.h>

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include "relay/cli/admin.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay::admin {

namespace {

// Values may come from files and from shells: CR and LF are blanks too.
std::string_view trim(std::string_view s) { return text::trim(s, " \t\r\n"); }

}  // namespace

bool cas_filter::matches(std::optional<bool> setting) const { return (setting == value) == equal; }

bool parse_filter(std::string_view text, cas_filter& out, std::string& why) {
    text = trim(text);
    // Unwrap { ... }, "..." and '...' (any nesting of them).
    for (bool unwrapped = true; unwrapped;) {
        unwrapped = false;
        if (text.size() >= 2 &&
            ((text.front() == '{' && text.back() == '}') || (text.front() == '"' && text.back() == '"') ||
             (text.front() == '\'' && text.back() == '\''))) {
            text = trim(text.substr(1, text.size() - 2));
            unwrapped = true;
        }
    }
    std::vector<std::string_view> words;
    while (!text.empty()) {
        auto space = text.find_first_of(" \t");
        words.push_back(text.substr(0, space));
        if (space == std::string_view::npos) break;
        text = trim(text.substr(space));
    }
    const std::string expected =
        "expected 'SmtpClientAuthenticationDisabled -eq $true' (-eq or -ne; $true, $false or $null)";
    if (words.empty()) {
        why = "the filter is empty; " + expected;
        return false;
    }
    if (!text::iequals(words[0], "SmtpClientAuthenticationDisabled")) {
        why = "cannot filter on '" + std::string(words[0]) + "'; " + expected;
        return false;
    }
    if (words.size() < 2) {
        why = expected;
        return false;
    }
    if (text::iequals(words[1], "-eq")) {
        out.equal = true;
    } else if (text::iequals(words[1], "-ne")) {
        out.equal = false;
    } else {
        why = "unsupported operator '" + std::string(words[1]) + "'; " + expected;
        return false;
    }
    if (words.size() < 3) {
        // In a POSIX shell, "... -eq $true" inside double quotes loses $true.
        why = "the value after " + std::string(words[1]) +
              " is missing; quote the filter with single quotes: 'SmtpClientAuthenticationDisabled " +
              std::string(words[1]) + " $true'";
        return false;
    }
    if (words.size() > 3) {
        why = "only one condition is supported; " + expected;
        return false;
    }
    auto b = parse_boolean(words[2]);
    if (!b) {
        why = "'" + std::string(words[2]) + "' is not $true, $false or $null";
        return false;
    }
    out.value = *b;
    return true;
}

void format_list(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& properties) {
    std::size_t width = 0;
    for (const auto& [name, value] : properties) width = std::max(width, name.size());
    for (const auto& [name, value] : properties) {
        // PowerShell writes "Name : " even when the value is empty.
        out << name << std::string(width - name.size(), ' ') << " : " << value << '\n';
    }
}

std::string generate_password(std::size_t length) {
    // Letters and digits only: a password that starts with '-' or holds
    // punctuation is mistaken for an option by device menus and tools.
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static_assert(alphabet.size() == 62);
    constexpr unsigned limit = 256 - 256 % alphabet.size();  // rejection sampling: no modulo bias
    std::string out;
    out.reserve(length);
    unsigned char bytes[64];
    while (out.size() < length) {
        if (RAND_bytes(bytes, static_cast<int>(sizeof bytes)) != 1) {
            OPENSSL_cleanse(out.data(), out.size());
            throw std::runtime_error("the random number generator failed");
        }
        for (unsigned char b : bytes) {
            if (b < limit && out.size() < length) out += alphabet[b % alphabet.size()];
        }
    }
    OPENSSL_cleanse(bytes, sizeof bytes);
    return out;
}

}  // namespace subrelay::relay::admin
