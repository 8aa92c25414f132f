#include "smtp/data.hpp"

#include <cstring>

namespace subrelay::smtp {

namespace {
// Positions in the <CRLF> . <CRLF> automaton. A withheld "." (and a CR after
// it) is part of the state, so no bytes are buffered between calls.
enum : int {
    in_line = 0,      // inside a line
    line_start = 1,   // after CRLF (also the start of the message)
    dot = 2,          // line_start, then "." (withheld)
    dot_cr = 3,       // line_start, ".", CR (both withheld)
    after_cr = 4,     // inside a line, after a CR (already appended)
};
}  // namespace

void data_reader::append(std::string_view s) {
    size_ += s.size();
    if (!too_big_ && size_ > max_size_) {
        too_big_ = true;
        drop_content();
    }
    if (!dropping_) message_.append(s);
}

void data_reader::take_message_into(std::string& out) {
    out.clear();
    out.swap(message_);
}

void data_reader::drop_content() {
    dropping_ = true;
    message_.clear();
    message_.shrink_to_fit();
}

void data_reader::line_end_at_lf() {
    if (mode_ == bare_lf::accept) {
        append("\r\n");
        state_ = line_start;
        return;
    }
    saw_bare_lf_ = true;
    append("\n");
    state_ = in_line;
}

std::size_t data_reader::consume(std::string_view in) {
    std::size_t i = 0;
    while (i < in.size() && !done_) {
        const char c = in[i];
        switch (state_) {
        case in_line: {
            // Fast path: everything up to the next CR or LF is content.
            const char* base = in.data();
            const void* cr = std::memchr(base + i, '\r', in.size() - i);
            const std::size_t end = cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - base) : in.size();
            if (const void* lf = std::memchr(base + i, '\n', end - i)) {
                // Inside a line, an LF has no CR before it.
                const auto at = static_cast<std::size_t>(static_cast<const char*>(lf) - base);
                if (at > i) append(in.substr(i, at - i));
                line_end_at_lf();
                i = at + 1;
                continue;
            }
            if (end > i) append(in.substr(i, end - i));
            if (end < in.size()) {
                append("\r");
                state_ = after_cr;
                i = end + 1;
            } else {
                i = end;
            }
            continue;
        }
        case after_cr:
            append(std::string_view(&c, 1));
            state_ = c == '\n' ? line_start : c == '\r' ? after_cr : in_line;
            break;
        case line_start:
            if (c == '.') {
                state_ = dot;
            } else if (c == '\n') {
                line_end_at_lf();
            } else {
                append(std::string_view(&c, 1));
                state_ = c == '\r' ? after_cr : in_line;
            }
            break;
        case dot:
            if (c == '\r') {
                state_ = dot_cr;
            } else if (c == '\n' && mode_ == bare_lf::accept) {
                done_ = true;  // <LF>.<LF> or <CRLF>.<LF>
            } else if (c == '\n') {
                line_end_at_lf();  // the message is refused anyway
            } else {
                // The line starts with "." and has more: drop the stuffed dot.
                append(std::string_view(&c, 1));
                state_ = in_line;
            }
            break;
        case dot_cr:
            if (c == '\n') {
                done_ = true;
            } else {
                // ".<CR>x": the dot is unstuffed, the CR is content.
                append("\r");
                append(std::string_view(&c, 1));
                state_ = c == '\r' ? after_cr : in_line;
            }
            break;
        default:
            state_ = in_line;
            continue;
        }
        ++i;
    }
    return i;
}

void dot_stuffer::add(std::string& out, std::string_view piece) {
    if (piece.empty()) return;
    out.reserve(out.size() + piece.size() + piece.size() / 64 + 8);
    std::size_t i = 0;
    // The LF of a CRLF whose CR ended the previous piece was written with it.
    if (after_cr_ && piece[0] == '\n') i = 1;
    after_cr_ = false;
    while (i < piece.size()) {
        if (at_line_start_ && piece[i] == '.') out += '.';
        // Copy up to the next line end in one piece. (A plain loop: find_first_of
        // calls memchr for each byte, a third of the delivery's time for 1 MiB.)
        std::size_t end = i;
        while (end < piece.size() && piece[end] != '\r' && piece[end] != '\n') ++end;
        if (end == piece.size()) {
            out.append(piece.substr(i));
            at_line_start_ = false;
            return;
        }
        out.append(piece.substr(i, end - i));
        // CRLF, bare CR or bare LF: always CRLF on the wire.
        if (piece[end] == '\r' && end + 1 == piece.size()) after_cr_ = true;  // its LF may open the next piece
        i = piece[end] == '\r' && end + 1 < piece.size() && piece[end + 1] == '\n' ? end + 2 : end + 1;
        out += "\r\n";
        at_line_start_ = true;
    }
}

void dot_stuffer::finish(std::string& out) {
    if (!at_line_start_) out += "\r\n";
    out += ".\r\n";
    *this = dot_stuffer();
}

void dot_stuff_into(std::string& out, std::string_view message) {
    dot_stuffer s;
    s.add(out, message);
    s.finish(out);
}

std::string dot_stuff(std::string_view message) {
    std::string out;
    dot_stuff_into(out, message);
    return out;
}

}  // namespace subrelay::smtp
