// The parser of the upstream's replies (client side).
// Input: one byte giving the size of the pieces the bytes arrive in (0: all
// at once), then what the server sends.
// Checked: every reply has code 0 (malformed) or 200-599 and at least one
// line; an enhanced code belongs to the reply's class and is found again in
// the log summary; a reply written back with wire() parses to the same reply;
// for input without over-long lines the replies do not depend on the cut.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::smtp;

std::vector<reply> parse_all(std::string_view in, std::size_t piece) {
    reply_parser p;
    std::vector<reply> out;
    for (std::size_t i = 0; i < in.size(); i += piece) {
        p.feed(in.substr(i, piece));
        while (auto r = p.next()) {
            out.push_back(std::move(*r));
            FUZZ_CHECK(out.size() <= in.size());
        }
    }
    return out;
}

void check(const reply& r) {
    FUZZ_CHECK(r.code == 0 || (r.code >= 200 && r.code <= 599));
    FUZZ_CHECK(!r.lines.empty());
    if (r.code == 0) return;
    if (!r.enhanced.empty()) {
        FUZZ_CHECK(r.enhanced[0] == static_cast<char>('0' + r.code / 100) && r.enhanced[1] == '.');
        if (r.code / 100 != 3) FUZZ_CHECK(enhanced_status_in(r.summary()) == r.enhanced);
    }
    std::size_t longest = 0;
    for (const auto& l : r.lines) longest = std::max(longest, l.size());
    if (longest > 3000 || r.lines.size() > 900) return;  // wire() adds the codes: may pass the parser's limits
    const std::string wire = r.wire();
    reply_parser again;
    again.feed(wire);
    const auto back = again.next();
    FUZZ_CHECK(back.has_value() && *back == r);
    FUZZ_CHECK(!again.next().has_value() && !again.has_buffered());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t piece = data[0] == 0 ? size : data[0];
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto replies = parse_all(in, piece);
    for (const auto& r : replies) check(r);
    if (in.size() < 4000) {
        const auto whole = parse_all(in, in.size() + 1);
        FUZZ_CHECK(whole == replies);
    }
    return 0;
}
