#pragma once
// Mailbox syntax (RFC 5321 4.1.2 with RFC 6531 UTF-8) and helpers.
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

// "<a@x>,<b@y>": a list of paths as log lines show them.
std::string bracketed_list(const std::vector<std::string>& addresses);

}  // namespace subrelay::smtp
