#include "smtp/command.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "smtp/address.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::smtp {

namespace {

using text::ascii_upper;
using text::iequals;
using text::trim;

struct verb_name {
    std::string_view name;
    verb kind;
};

constexpr std::array<verb_name, 14> verbs{{
    {"HELO", verb::helo}, {"EHLO", verb::ehlo}, {"MAIL", verb::mail}, {"RCPT", verb::rcpt},
    {"DATA", verb::data}, {"RSET", verb::rset}, {"NOOP", verb::noop}, {"QUIT", verb::quit},
    {"VRFY", verb::vrfy}, {"HELP", verb::help}, {"STARTTLS", verb::starttls}, {"AUTH", verb::auth},
    {"BDAT", verb::bdat}, {"EXPN", verb::expn},
}};

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

parse_error syntax(std::string text) { return {501, "5.5.4", std::move(text)}; }

bool valid_param_key(std::string_view k) {
    if (k.empty() || !is_alnum(k.front())) return false;
    for (const char c : k)
        if (!is_alnum(c) && c != '-') return false;
    return true;
}

bool valid_param_value(std::string_view v) {
    if (v.empty()) return false;
    for (const char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 33 || c == '=' || c == 127) return false;  // >= 0x80 allowed (RFC 6531)
    }
    return true;
}

// MAIL FROM:<path> params / RCPT TO:<path> params, into cmd.path and cmd.params.
std::optional<parse_error> parse_path_and_params(command& cmd, bool is_mail) {
    const std::string_view prefix = is_mail ? "FROM:" : "TO:";
    const std::string usage = is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>";
    const parse_error bad_path = is_mail ? parse_error{501, "5.1.7", "Bad sender address syntax"}
                                         : parse_error{501, "5.1.3", "Bad recipient address syntax"};
    // Postfix's strict_rfc821_envelopes = no: spaces around "FROM:" and a
    // path without angle brackets are tolerated (old devices send both).
    std::string_view a = trim(cmd.argument);
    if (a.size() < prefix.size() || !iequals(a.substr(0, prefix.size()), prefix)) return syntax(usage);
    a.remove_prefix(prefix.size());
    while (!a.empty() && a.front() == ' ') a.remove_prefix(1);
    if (a.empty()) return syntax(usage);

    std::size_t path_begin = 1;                  // after '<'
    std::size_t close = std::string_view::npos;  // the closing '>', or the end of a bare path
    std::size_t rest_begin = 0;                  // the parameters
    if (a.front() != '<') {
        path_begin = 0;
        close = std::min(a.find(' '), a.size());
        rest_begin = close;
        if (a.substr(0, close).find_first_of("<>") != std::string_view::npos) return bad_path;
    } else {
        // Not a '>' inside a quoted local part.
        bool quoted = false;
        for (std::size_t i = 1; i < a.size(); ++i) {
            const char c = a[i];
            if (quoted && c == '\\') { ++i; continue; }
            if (c == '"') quoted = !quoted;
            else if (!quoted && c == '>') { close = i; break; }
        }
        if (close == std::string_view::npos) return bad_path;
        rest_begin = close + 1;
    }
    std::string_view path = a.substr(path_begin, close - path_begin);
    // A source route ("@a,@b:user@c") is accepted and ignored (RFC 5321 4.1.2, C).
    if (!path.empty() && path.front() == '@') {
        const auto colon = path.find(':');
        if (colon == std::string_view::npos) return bad_path;
        path.remove_prefix(colon + 1);
    }
    if (path.empty()) {
        if (!is_mail) return bad_path;
    } else if (!valid_mailbox(path) && !(!is_mail && iequals(path, "postmaster"))) {
        return bad_path;
    }
    cmd.path = std::string(path);

    std::string_view rest = a.substr(rest_begin);
    if (!rest.empty() && rest.front() != ' ') return syntax(usage);
    while (true) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (rest.empty()) break;
        const auto sp = rest.find(' ');
        const std::string_view param = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
        const auto eq = param.find('=');
        const std::string_view key = param.substr(0, eq);
        std::string_view value;
        if (eq != std::string_view::npos) {
            value = param.substr(eq + 1);
            if (!valid_param_value(value)) return syntax("Bad parameter value");
        }
        if (!valid_param_key(key)) return syntax("Bad parameter syntax");
        const std::string k = ascii_upper(key);
        if (cmd.params.contains(k)) return syntax("Duplicate parameter " + k);
        std::string v(value);
        if (is_mail && k == "SIZE") {
            if (value.empty() || value.size() > 20) return syntax("Bad SIZE parameter");
            for (const char c : value)
                if (c < '0' || c > '9') return syntax("Bad SIZE parameter");
        } else if (is_mail && k == "BODY") {
            v = ascii_upper(value);
            if (v != "7BIT" && v != "8BITMIME") return syntax("Bad BODY parameter value");
        } else if (is_mail && k == "SMTPUTF8") {
            if (eq != std::string_view::npos) return syntax("SMTPUTF8 takes no value");
        } else if (is_mail && k == "AUTH") {
            if (value.empty()) return syntax("Bad AUTH parameter");
        } else {
            return parse_error{555, "5.5.4", "Unsupported parameter " + k};
        }
        cmd.params.emplace(k, std::move(v));
    }
    return std::nullopt;
}

}  // namespace

verb parse_verb(std::string_view name) {
    for (const auto& v : verbs)
        if (iequals(v.name, name)) return v.kind;
    return verb::unknown;
}

std::variant<command, parse_error> parse_command(std::string_view line) {
    command cmd;
    const auto sp = line.find(' ');
    const std::string_view name = line.substr(0, sp);
    cmd.name = ascii_upper(name);
    cmd.kind = parse_verb(name);
    if (sp != std::string_view::npos) cmd.argument = std::string(line.substr(sp + 1));
    const std::string_view arg = trim(cmd.argument);

    switch (cmd.kind) {
    case verb::helo:
    case verb::ehlo:
        if (arg.empty()) return syntax("Syntax: " + cmd.name + " hostname");
        break;
    case verb::mail:
    case verb::rcpt:
        if (auto err = parse_path_and_params(cmd, cmd.kind == verb::mail)) return *err;
        break;
    case verb::data:
    case verb::rset:
    case verb::starttls:
        if (!arg.empty()) return syntax("Syntax: " + cmd.name);
        break;
    case verb::vrfy:
    case verb::expn:
        if (arg.empty()) return syntax("Syntax: " + cmd.name + " address");
        break;
    case verb::auth: {
        if (arg.empty()) return syntax("Syntax: AUTH mechanism [initial-response]");
        const auto space = arg.find(' ');
        if (space != std::string_view::npos) {
            const auto second = trim(arg.substr(space));
            if (second.find(' ') != std::string_view::npos)
                return syntax("Syntax: AUTH mechanism [initial-response]");
        }
        break;
    }
    case verb::noop:
    case verb::quit:
    case verb::help:
    case verb::bdat:
    case verb::unknown:
        break;
    }
    return cmd;
}

}  // namespace subrelay::smtp
