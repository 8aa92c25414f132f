#pragma once
// Mailbox syntax (RFC 5321 4.1.2 with RFC 6531 UTF-8) and helpers.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subrelay::smtp {

// True for "local@domain" with a valid dot-string or quoted-string local
// part and a domain or address literal. UTF-8 is accepted when utf8 is true.
bool valid_mailbox(std::string_view address, bool utf8 = true);

// The domain part of "local@domain" (empty if none).
std::string_view domain_of(std::string_view address);

// What the argument of HELO/EHLO is. RFC 5321 4.1.1.1 asks for a domain or
// an address literal; devices also send a bare name ("NPI7A2B3C") or a
// name with underscores ("HP_LaserJet.lan"), which are accepted (the bare
// name is noted in the Received: header). Anything else is refused.
enum class helo_name {
    domain,           // dotted labels of letters, digits, '-' and '_' (UTF-8 too); "192.0.2.1" as well
    address_literal,  // "[192.0.2.1]", "[IPv6:2001:db8::1]"
    bare,             // one such label, no dot
    too_long,         // more than max_helo_name octets
    invalid,
};
inline constexpr std::size_t max_helo_name = 255;
helo_name classify_helo_name(std::string_view name);

// "<a@x>,<b@y>": a list of paths as log lines show them.
std::string bracketed_list(const std::vector<std::string>& addresses);

}  // namespace subrelay::smtp
