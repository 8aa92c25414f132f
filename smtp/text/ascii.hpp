#pragma once
// ASCII-only case and blank handling, independent of the locale: SMTP
// keywords, header names, addresses and configuration words.
#include <string>
#include <string_view>

namespace subrelay::text {

// Lower-cases (upper-cases) the ASCII letters; every other byte is kept.
std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);

// Case-insensitive ASCII equality.
bool iequals(std::string_view a, std::string_view b);

// `s` without the leading and trailing characters in `blanks` (SP and HTAB
// by default, the white space of RFC 5234 and RFC 5322).
std::string_view trim(std::string_view s, std::string_view blanks = " \t");

}  // namespace subrelay::text
