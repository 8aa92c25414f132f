#pragma once
// Operator verbs that mirror Exchange Online's cmdlets (Get-/Set-CASMailbox,
// Get-/Set-TransportConfig, New-AuthenticationPolicy, ...), run from the
// `subrelay` command line. Options are accepted in PowerShell spelling
// (`-Identity x -SmtpClientAuthenticationDisabled $false`, `-Name:value`)
// and GNU spelling (`--identity x --smtp-client-authentication-disabled=false`).
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subrelay::relay::admin {

// True when `verb` (already lower-cased) names an admin verb.
bool is_verb(std::string_view verb);

// The admin verbs, one indented line each, for the main usage text.
std::string summary();

// Runs the admin verb args[0] (lower-case) with its options. Returns the exit
// status: 0 done, 1 error (not found, refused edit, unreadable files), 2 usage.
int run(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

// ---- Pieces, exposed for tests -------------------------------------------

// Strips leading dashes, lower-cases, removes '-' and '_':
// "-SmtpClientAuthenticationDisabled" and "--smtp-client-authentication-disabled"
// both give "smtpclientauthenticationdisabled".
std::string normalise_option(std::string_view name);

// What an option takes.
enum class value_kind {
    flag,            // no value (`--json`); `-Json:$false` turns it off
    text,            // a non-empty string
    nullable_text,   // a string, or $null / "" to clear
    boolean,         // $true / $false
    tristate,        // $true / $false / $null
    count,           // an unsigned 32-bit number, or "unlimited" (0)
    nullable_count,  // a count, or $null to clear
    list,            // comma-separated values; $null or "" clears
};

struct option_spec {
    std::string display;  // PowerShell spelling, "SmtpClientAuthenticationDisabled"
    value_kind kind = value_kind::text;
    [[nodiscard]] std::string name() const { return normalise_option(display); }
};

struct parsed_options {
    std::map<std::string, std::string> values;   // normalised name -> value as given
    std::map<std::string, std::string> spelled;  // normalised name -> option as written ("-Identity")
    std::set<std::string> flags;                 // normalised names of flags given
    std::vector<std::string> positionals;
    bool help = false;

    [[nodiscard]] bool has(const std::string& name) const { return values.count(name) != 0 || flags.count(name) != 0; }
    [[nodiscard]] std::string value(const std::string& name) const;  // "" when absent
};

// Parses args[1..] against `specs` (the verb is args[0], used in messages).
// Returns "" on success, or the message of a usage error. Values are checked
// against their kind here, so that later reads cannot fail.
std::string parse_options(const std::vector<std::string>& args, const std::vector<option_spec>& specs,
                          std::size_t max_positionals, parsed_options& out);

// $true, $false, $null, true, false, null (any case). nullopt: not a
// boolean; a value holding nullopt: $null.
std::optional<std::optional<bool>> parse_boolean(std::string_view text);

// An unsigned 32-bit count; "unlimited" (any case) gives 0.
std::optional<std::uint32_t> parse_count(std::string_view text);

// A comma-separated list, entries trimmed, empty entries dropped.
std::vector<std::string> split_list(std::string_view text);

// -Filter for get-casmailbox: `SmtpClientAuthenticationDisabled -eq $true`
// (-eq or -ne; $true, $false or $null), optionally wrapped in { } or quotes.
struct cas_filter {
    bool equal = true;
    std::optional<bool> value;
    // -ne $true matches False and unset; -ne $null matches True and False.
    [[nodiscard]] bool matches(std::optional<bool> setting) const;
};
bool parse_filter(std::string_view text, cas_filter& out, std::string& why);

// PowerShell's Format-List: "Name : value", the colons aligned.
void format_list(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& properties);

// A new random password of `length` characters from the URL-safe base64
// alphabet (OpenSSL RAND_bytes). Throws std::runtime_error.
std::string generate_password(std::size_t length = 24);

}  // namespace subrelay::relay::admin
