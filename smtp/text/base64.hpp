#pragma once
// Base64 (RFC 4648 section 4) for SASL and XOAUTH2, and base64url without
// padding (RFC 4648 section 5, RFC 7515 section 2) for JSON Web Tokens.
#include <optional>
#include <string>
#include <string_view>

namespace subrelay::text {

std::string base64_encode(std::string_view data);
// nullopt on invalid input (bad characters, bad padding, non-zero unused
// bits). Whitespace is not allowed.
std::optional<std::string> base64_decode(std::string_view text);

// base64url without padding.
std::string base64url_encode(std::string_view data);
// nullopt on invalid input (bad characters, padding, a length that no
// encoding has, non-zero unused bits).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace subrelay::text
