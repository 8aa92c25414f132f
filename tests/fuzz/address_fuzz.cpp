// The address syntax (RFC 5321 mailbox, RFC 6531 UTF-8) and the command
// line parser that applies it to MAIL FROM and RCPT TO.
// Input: an address, also parsed as a whole command line.
// Checked: an address valid without UTF-8 is valid with it; a valid address
// has a domain and no CR, LF or NUL (it ends up in commands and headers);
// "MAIL FROM:<a>" and "RCPT TO:<a>" take a valid address back unchanged;
// the path the parser takes from any command line is empty, postmaster or a
// valid address, and a refusal is a 5xx with a 5.x.x enhanced code.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/address.hpp"
#include "smtp/command.hpp"
#include "smtp/text/ascii.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::smtp;

void check_parsed(const std::variant<command, parse_error>& parsed) {
    if (const auto* e = std::get_if<parse_error>(&parsed)) {
        FUZZ_CHECK(e->code >= 500 && e->code <= 599);
        FUZZ_CHECK(e->enhanced.size() >= 5 && e->enhanced[0] == '5' && e->enhanced[1] == '.');
        FUZZ_CHECK(!e->text.empty());
        return;
    }
    const auto& c = std::get<command>(parsed);
    if (c.kind == verb::mail || c.kind == verb::rcpt) {
        FUZZ_CHECK(c.path.empty() || valid_mailbox(c.path) || subrelay::text::iequals(c.path, "postmaster"));
        FUZZ_CHECK(c.kind == verb::mail || !c.path.empty());
        for (const auto& [key, value] : c.params) FUZZ_CHECK(key == subrelay::text::ascii_upper(key));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view a(reinterpret_cast<const char*>(data), size);
    const bool ascii = valid_mailbox(a, false);
    const bool utf8 = valid_mailbox(a, true);
    FUZZ_CHECK(!ascii || utf8);
    const std::string_view domain = domain_of(a);
    FUZZ_CHECK(domain.empty() || a.ends_with(domain));
    if (utf8) {
        FUZZ_CHECK(!domain.empty() && domain.size() + 2 <= a.size());
        FUZZ_CHECK(a.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);
        for (const char* form : {"MAIL FROM:<", "RCPT TO:<"}) {
            const auto parsed = parse_command(std::string(form) + std::string(a) + ">");
            const auto* c = std::get_if<command>(&parsed);
            FUZZ_CHECK(c != nullptr && c->path == a);
        }
    }
    check_parsed(parse_command(a));
    return 0;
}
