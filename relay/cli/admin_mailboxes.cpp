// Per-account SMTP AUTH: Get-/Set-CASMailbox, with -Filter, -ResultSize and
// --from-file for bulk changes.
#include <fstream>
#include <istream>

#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr std::size_t default_result_size = 1000;  // like Exchange's cmdlets

constexpr const char* o_from_file = "fromfile";
constexpr const char* o_result_size = "resultsize";
constexpr const char* o_filter = "filter";

// -ResultSize: "unlimited" or a positive number. 0: unlimited.
bool read_result_size(const context& c, std::size_t& size) {
    size = default_result_size;
    if (!c.opts.has(o_result_size)) return true;
    const auto text = c.opts.value(o_result_size);
    if (text::iequals(text, "unlimited")) {
        size = 0;
        return true;
    }
    auto n = parse_count(text);
    if (!n || *n == 0) {
        c.fail() << c.opts.spelling(o_result_size) << ": '" << text << "' is not a positive number or unlimited\n";
        return false;
    }
    size = *n;
    return true;
}

// Identities from a file (or standard input for "-"): one a line; blank
// lines and lines starting with # ignored; whitespace and CR trimmed.
bool read_identities(const context& c, const std::string& file, std::vector<std::string>& out) {
    std::ifstream stream;
    std::istream* source = &c.in;
    if (file != "-") {
        stream.open(file);
        if (!stream) {
            c.fail() << "cannot read '" << file << "'\n";
            return false;
        }
        source = &stream;
    }
    for (std::string line; std::getline(*source, line);) {
        const auto identity = text::trim(line, " \t\r");
        if (identity.empty() || identity.front() == '#') continue;
        out.emplace_back(identity);
    }
    if (source->bad()) {
        c.fail() << "cannot read '" << file << "'\n";
        return false;
    }
    return true;
}

}  // namespace

bool cas_filter::matches(std::optional<bool> setting) const { return (setting == value) == equal; }

bool parse_filter(std::string_view text, cas_filter& out, std::string& why) {
    text = trim_value(text);
    // Unwrap { ... }, "..." and '...' (any nesting of them).
    for (bool unwrapped = true; unwrapped;) {
        unwrapped = false;
        if (text.size() >= 2 &&
            ((text.front() == '{' && text.back() == '}') || (text.front() == '"' && text.back() == '"') ||
             (text.front() == '\'' && text.back() == '\''))) {
            text = trim_value(text.substr(1, text.size() - 2));
            unwrapped = true;
        }
    }
    std::vector<std::string_view> words;
    while (!text.empty()) {
        auto space = text.find_first_of(" \t");
        words.push_back(text.substr(0, space));
        if (space == std::string_view::npos) break;
        text = trim_value(text.substr(space));
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

int get_casmailbox(context& c) {
    static const property_table<policy::mailbox> properties = {
        prop<policy::mailbox>("Identity", [](const policy::mailbox& m) { return m.identity; }),
        prop<policy::mailbox>("SmtpClientAuthenticationDisabled",
                              [](const policy::mailbox& m) { return m.smtp_client_authentication_disabled; }),
    };
    std::size_t limit = 0;
    if (!read_result_size(c, limit)) return 1;
    cas_filter filter;
    const bool filtered = c.opts.has(o_filter);
    if (filtered) {
        std::string why;
        if (!parse_filter(c.opts.value(o_filter), filter, why)) {
            c.fail() << c.opts.spelling(o_filter) << ": " << why << '\n';
            return 1;
        }
    }
    auto p = load_policy(c);
    if (!p) return 1;

    std::vector<const policy::mailbox*> selected;
    if (!select_objects(c, p->mailboxes, &policy::mailbox::identity, selected)) return 1;
    if (filtered) {
        std::erase_if(selected, [&](const policy::mailbox* m) {
            return !filter.matches(m->smtp_client_authentication_disabled);
        });
    }
    if (limit != 0 && selected.size() > limit) {
        selected.resize(limit);
        if (!c.opts.has(o_result_size)) {
            c.err << "WARNING: By default, only the first " << default_result_size
                  << " items are returned. Use the ResultSize parameter to specify the number of items returned. "
                     "To return all items, specify \"-ResultSize Unlimited\".\n";
        }
    }

    show(c, properties, selected);
    return 0;
}

int set_casmailbox(context& c) {
    const bool bulk = c.opts.has(o_from_file);
    if (bulk == c.opts.has(o_identity)) {
        c.fail() << "give either -Identity or --from-file\n";
        return 1;
    }
    if (!c.opts.has(o_disabled)) {
        return nothing_to_change(c, "-SmtpClientAuthenticationDisabled $true, $false or $null");
    }
    const auto setting = c.opts.tristate(o_disabled);

    if (!bulk) {
        const auto identity = c.opts.value(o_identity);
        return apply_edit(
            c,
            [&](policy::policy_file& p) -> std::string {
                auto* m = find_mailbox(p, identity);
                if (m == nullptr) return not_found(identity);
                m->smtp_client_authentication_disabled = setting;
                return "";
            },
            false);
    }

    std::vector<std::string> identities;
    if (!read_identities(c, c.opts.value(o_from_file), identities)) return 1;
    if (identities.empty()) {
        c.fail() << "no identities in '" << c.opts.value(o_from_file) << "'\n";
        return 1;
    }
    std::size_t changed = 0;
    std::vector<std::string> missing;
    const int status = apply_edit(
        c,
        [&](policy::policy_file& p) {
            changed = 0;
            missing.clear();
            for (const auto& identity : identities) {
                if (auto* m = find_mailbox(p, identity)) {
                    m->smtp_client_authentication_disabled = setting;
                    ++changed;
                } else {
                    missing.push_back(identity);
                }
            }
            return std::string();
        },
        false);
    if (status != 0) return status;
    for (const auto& identity : missing) c.fail() << not_found(identity) << '\n';
    if (!missing.empty()) {
        c.fail() << "changed " << changed << ", not found " << missing.size() << '\n';
        return 1;
    }
    return 0;
}

}  // namespace subrelay::relay::admin
