#pragma once
// The one option parser every verb uses. A verb declares its options as
// specs with a kind; the parser accepts them in PowerShell spelling
// (`-Identity x`, `-Name:value`, any case) and GNU spelling (`--identity x`,
// `--name=value`, `--smtp-client-authentication-disabled`), checks each value
// against its kind, and leaves words that are not options as positionals.
// `--help`, `-h` and `-?` ask for the verb's usage.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subrelay::relay {

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
    option_spec(std::string display_name, value_kind value = value_kind::text, std::string alias = {})
        : display(std::move(display_name)), kind(value), letter(std::move(alias)) {}

    std::string display;  // PowerShell spelling, "SmtpClientAuthenticationDisabled"
    value_kind kind;
    std::string letter;   // a one-letter alias ("c" for -c), or ""
    [[nodiscard]] std::string name() const { return normalise_option(display); }
};

// --config FILE (or -c FILE): the configuration a verb works on.
inline const option_spec config_option{"Config", value_kind::text, "c"};

struct parsed_options {
    std::map<std::string, std::string> values;   // normalised name -> value as given
    std::map<std::string, std::string> spelled;  // normalised name -> option as written ("-Identity")
    std::set<std::string> flags;                 // normalised names of flags given
    std::vector<std::string> positionals;
    bool help = false;

    [[nodiscard]] bool has(const std::string& name) const { return values.count(name) != 0 || flags.count(name) != 0; }
    [[nodiscard]] bool flag(const std::string& name) const { return flags.count(name) != 0; }
    [[nodiscard]] std::string value(const std::string& name) const;  // "" when absent
    // The option as the user wrote it, for messages ("-ResultSize"); "-name" when absent.
    [[nodiscard]] std::string spelling(const std::string& name) const;

    // Typed reads of values; their kinds were checked by parse_options.
    [[nodiscard]] bool boolean(const std::string& name) const;
    [[nodiscard]] std::optional<bool> tristate(const std::string& name) const;
    [[nodiscard]] std::uint32_t count(const std::string& name) const;
    [[nodiscard]] std::optional<std::uint32_t> nullable_count(const std::string& name) const;
    [[nodiscard]] std::string nullable_text(const std::string& name) const;  // "" for $null
    [[nodiscard]] std::vector<std::string> list(const std::string& name) const;
};

// No limit on positionals (queue's action and message ids).
inline constexpr std::size_t any_number = static_cast<std::size_t>(-1);

// Parses args[1..] against `specs` (args[0] is the verb). Returns "" on
// success, or the message of a usage error: an unknown option, one given more
// than once, a missing or malformed value, more than `max_positionals` other
// words. Values are checked against their kind here, so later reads cannot fail.
std::string parse_options(const std::vector<std::string>& args, const std::vector<option_spec>& specs,
                          std::size_t max_positionals, parsed_options& out);

// $true, $false, $null, true, false, null (any case). nullopt: not a
// boolean; a value holding nullopt: $null.
std::optional<std::optional<bool>> parse_boolean(std::string_view text);

// A value without surrounding blanks; values come from files and shells, so
// CR and LF are blanks too.
std::string_view trim_value(std::string_view text);

// An unsigned 32-bit count; "unlimited" (any case) gives 0.
std::optional<std::uint32_t> parse_count(std::string_view text);

// A comma-separated list, entries trimmed, empty entries dropped.
std::vector<std::string> split_list(std::string_view text);

}  // namespace subrelay::relay
