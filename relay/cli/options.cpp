#include "relay/cli/options.hpp"

#include <algorithm>
#include <charconv>

#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// "-Name", "--name", "-?": an option. "-" alone (standard input) and "-5"
// are values.
bool is_option_token(std::string_view a) {
    if (a.size() < 2 || a[0] != '-') return false;
    if (is_alpha(a[1]) || a[1] == '?') return true;
    return a[1] == '-' && a.size() > 2 && is_alpha(a[2]);
}

const char* missing_boolean_hint(bool nullable) {
    return nullable ? " needs a value: $true, $false or $null (quote it: '$false', or write false)"
                    : " needs a value: $true or $false (quote it: '$false', or write false)";
}

// Checks `value` against `kind`; "" when acceptable.
std::string check_value(const std::string& spelled, value_kind kind, const std::string& value) {
    switch (kind) {
        case value_kind::flag:
        case value_kind::nullable_text:
        case value_kind::list:
            return "";
        case value_kind::text:
            return value.empty() ? spelled + " needs a value" : "";
        case value_kind::boolean:
        case value_kind::tristate: {
            const bool nullable = kind == value_kind::tristate;
            if (value.empty()) return spelled + missing_boolean_hint(nullable);
            auto b = parse_boolean(value);
            if (!b) {
                return spelled + ": '" + value + "' is not " +
                       (nullable ? "$true, $false or $null" : "$true or $false");
            }
            if (!*b && !nullable) return spelled + " cannot be $null: use $true or $false";
            return "";
        }
        case value_kind::count:
            if (value.empty()) return spelled + " needs a value: a number (0 or unlimited: no limit)";
            return parse_count(value) ? "" : spelled + ": '" + value + "' is not a number";
        case value_kind::nullable_count: {
            if (value.empty()) return spelled + " needs a value: a number, or $null (quote it: '$null', or write null)";
            if (parse_count(value)) return "";
            auto b = parse_boolean(value);
            if (b && !*b) return "";
            return spelled + ": '" + value + "' is not a number or $null";
        }
    }
    return "";
}

bool is_null(const std::string& value) {
    auto b = parse_boolean(value);
    return b && !*b;
}

}  // namespace

std::string normalise_option(std::string_view name) {
    while (!name.empty() && name.front() == '-') name.remove_prefix(1);
    std::string out = text::ascii_lower(name);
    std::erase_if(out, [](char c) { return c == '-' || c == '_'; });
    return out;
}

std::string parsed_options::value(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::string() : it->second;
}

std::string parsed_options::spelling(const std::string& name) const {
    auto it = spelled.find(name);
    return it == spelled.end() ? "-" + name : it->second;
}

bool parsed_options::boolean(const std::string& name) const {
    return parse_boolean(value(name)).value_or(std::nullopt).value_or(false);
}

std::optional<bool> parsed_options::tristate(const std::string& name) const {
    return parse_boolean(value(name)).value_or(std::nullopt);
}

std::uint32_t parsed_options::count(const std::string& name) const { return parse_count(value(name)).value_or(0); }

std::optional<std::uint32_t> parsed_options::nullable_count(const std::string& name) const {
    return parse_count(value(name));
}

std::string parsed_options::nullable_text(const std::string& name) const {
    auto v = value(name);
    return is_null(v) ? std::string() : v;
}

std::vector<std::string> parsed_options::list(const std::string& name) const {
    auto v = value(name);
    return is_null(v) ? std::vector<std::string>() : split_list(v);
}

std::string parse_options(const std::vector<std::string>& args, const std::vector<option_spec>& specs,
                          std::size_t max_positionals, parsed_options& out) {
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (!is_option_token(a)) {
            if (out.positionals.size() >= max_positionals) return "unexpected argument '" + a + "'";
            out.positionals.push_back(a);
            continue;
        }
        std::string spelled = a;
        std::optional<std::string> inline_value;
        if (auto sep = a.find_first_of("=:"); sep != std::string::npos) {
            spelled = a.substr(0, sep);
            inline_value = a.substr(sep + 1);
        }
        const std::string written = normalise_option(spelled);
        if (written == "help" || written == "h" || written == "?") {
            out.help = true;
            continue;
        }
        auto spec = std::find_if(specs.begin(), specs.end(), [&](const option_spec& s) {
            return s.name() == written || (!s.letter.empty() && s.letter == written);
        });
        if (spec == specs.end()) return "unknown option '" + spelled + "'";
        const std::string name = spec->name();
        if (out.spelled.count(name)) return spelled + " is given more than once";
        out.spelled[name] = spelled;

        if (spec->kind == value_kind::flag) {
            if (inline_value) {
                auto b = parse_boolean(*inline_value);
                if (!b || !*b) return spelled + ": '" + *inline_value + "' is not $true or $false";
                if (**b) out.flags.insert(name);
            } else {
                out.flags.insert(name);
            }
            continue;
        }
        std::string value;
        if (inline_value) {
            value = *inline_value;
        } else if (i + 1 < args.size() && !is_option_token(args[i + 1])) {
            value = args[++i];
        }
        if (auto why = check_value(spelled, spec->kind, value); !why.empty()) return why;
        out.values[name] = value;
    }
    return "";
}

std::optional<std::optional<bool>> parse_boolean(std::string_view text) {
    std::string t = text::ascii_lower(trim_value(text));
    if (!t.empty() && t.front() == '$') t.erase(0, 1);
    std::optional<std::optional<bool>> out;
    if (t == "true") {
        out.emplace(true);
    } else if (t == "false") {
        out.emplace(false);
    } else if (t == "null") {
        out.emplace(std::nullopt);
    }
    return out;
}

std::string_view trim_value(std::string_view text) { return text::trim(text, " \t\r\n"); }

std::optional<std::uint32_t> parse_count(std::string_view text) {
    text = trim_value(text);
    if (text::iequals(text, "unlimited")) return 0u;
    std::uint32_t n = 0;
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, n);
    if (text.empty() || ec != std::errc() || p != end) return std::nullopt;
    return n;
}

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    while (true) {
        auto comma = text.find(',');
        auto item = trim_value(text.substr(0, comma));
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

}  // namespace subrelay::relay
