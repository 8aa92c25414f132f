#pragma once
// Parsing of one SMTP command line (without its CRLF).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace subrelay::smtp {

enum class verb { helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, help, starttls, auth, bdat, expn, unknown };

struct command {
    verb kind = verb::unknown;
    std::string name;                           // the verb as sent, upper-cased ("MAIL")
    std::string argument;                       // the rest after the verb and one space (raw)
    // For MAIL/RCPT: the path between < > (empty for "<>") and ESMTP parameters
    // (keys upper-cased, value empty when none).
    std::string path;
    std::map<std::string, std::string> params;
};

struct parse_error {
    int code;              // 500 or 501 (or 555 for unrecognised parameters)
    std::string enhanced;  // "5.5.2", "5.5.4", "5.1.7", ...
    std::string text;
};

// Parses "VERB args". MAIL FROM:<a> and RCPT TO:<b> paths are validated;
// a bad path gives 501 5.1.7 (sender) or 501 5.1.3 (recipient).
std::variant<command, parse_error> parse_command(std::string_view line);

// The verb of a command name, case-insensitively ("ehlo" -> verb::ehlo);
// verb::unknown for anything else.
verb parse_verb(std::string_view name);

}  // namespace subrelay::smtp
