// The DATA reader (end of data, dot-unstuffing, bare LF, size cap) and the
// dot-stuffer the client uses.
// Input: one byte of options, then the bytes after "354".
//   bit 0: bare LF accepted     bit 1: a small size cap (100 bytes)
//   bits 2-7: the size of the pieces the bytes arrive in (0: all at once)
// Checked: consume() never takes more than it was given, takes everything
// until the terminator and nothing after it; the message does not depend on
// how the bytes were cut; the size cap holds. And, for the bytes read as a
// message: the dot-stuffer gives the same wire bytes in pieces as whole, and
// reading the stuffed bytes back gives the message with its line ends made CRLF.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/data.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::smtp;

struct outcome {
    std::string message;
    std::size_t consumed = 0;
    std::size_t size = 0;
    bool done = false;
    bool too_big = false;
    bool bare_lf = false;
};

outcome read(std::string_view in, std::size_t piece, std::size_t max_size, bare_lf mode, bool take_as_it_goes) {
    data_reader r(max_size, mode);
    outcome o;
    std::string taken;
    while (o.consumed < in.size()) {
        const std::string_view part = in.substr(o.consumed, piece == 0 ? in.size() : piece);
        const std::size_t n = r.consume(part);
        FUZZ_CHECK(n <= part.size());
        FUZZ_CHECK(r.done() || n == part.size());
        o.consumed += n;
        if (take_as_it_goes) {
            r.take_message_into(taken);
            FUZZ_CHECK(r.message().empty());
            o.message += taken;
        }
        if (r.done()) break;
    }
    if (r.done()) FUZZ_CHECK(r.consume(in.substr(o.consumed)) == 0);
    if (!take_as_it_goes) o.message = r.message();
    o.done = r.done();
    o.too_big = r.too_big();
    o.bare_lf = r.saw_bare_lf();
    o.size = r.size();
    FUZZ_CHECK(o.too_big == (o.size > max_size));
    if (!o.too_big) FUZZ_CHECK(o.message.size() == o.size);
    if (mode == bare_lf::accept) FUZZ_CHECK(!o.bare_lf);
    return o;
}

// The message as it must come back after dot-stuffing and reading: every
// bare CR or LF, and CRLF, a CRLF; a last line without one gets one.
std::string normalized(std::string_view m) {
    std::string out;
    for (std::size_t i = 0; i < m.size(); ++i) {
        if (m[i] == '\r') {
            out += "\r\n";
            if (i + 1 < m.size() && m[i + 1] == '\n') ++i;
        } else if (m[i] == '\n') {
            out += "\r\n";
        } else {
            out += m[i];
        }
    }
    if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const bare_lf mode = (flags & 1) != 0 ? bare_lf::accept : bare_lf::reject;
    const std::size_t max_size = (flags & 2) != 0 ? 100 : 1 << 20;
    const std::size_t piece = flags >> 2;

    const outcome whole = read(in, 0, max_size, mode, false);
    const outcome cut = read(in, piece, max_size, mode, true);
    FUZZ_CHECK(whole.consumed == cut.consumed && whole.done == cut.done && whole.size == cut.size &&
               whole.too_big == cut.too_big && whole.bare_lf == cut.bare_lf);
    if (!whole.too_big) FUZZ_CHECK(whole.message == cut.message);

    // The client side: stuffing in pieces is stuffing the whole, and the
    // server reads back exactly the (normalized) message.
    const std::string wire = dot_stuff(in);
    std::string pieces;
    dot_stuffer st;
    for (std::size_t i = 0; i < in.size(); i += piece == 0 ? in.size() : piece)
        st.add(pieces, in.substr(i, piece == 0 ? in.size() : piece));
    st.finish(pieces);
    FUZZ_CHECK(pieces == wire);
    const outcome back = read(wire, piece, std::size_t(-1), bare_lf::reject, false);
    FUZZ_CHECK(back.done && back.consumed == wire.size() && !back.bare_lf);
    FUZZ_CHECK(back.message == normalized(in));
    return 0;
}
