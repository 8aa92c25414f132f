#pragma once
// The DATA phase, both ways: end-of-data detection with dot-unstuffing
// (server), dot-stuffing (client). Only <CRLF>.<CRLF> ends DATA.
#include <cstddef>
#include <string>
#include <string_view>

namespace subrelay::smtp {

// What a bare LF (an LF without a CR before it) means in DATA.
enum class bare_lf {
    // Content that never ends a line or DATA (only <CRLF>.<CRLF> does, so
    // nothing can be smuggled); the reader remembers it was seen so the
    // session can refuse the message once its real end has arrived.
    reject,
    // A line end, as old devices mean it (Postfix for $mynetworks): written
    // as CRLF, a "." after it is unstuffed, and <LF>.<LF> ends DATA.
    accept,
};

// Server side: consumes bytes after "354" until the <CRLF>.<CRLF> terminator.
// The terminator's first CRLF belongs to the message (the message always
// ends with CRLF unless it is empty). A bare CR is content.
//
// The unstuffed message is produced as the bytes arrive and kept only until
// it is taken (take_message_into), so a caller that takes it as it goes
// holds a bounded part of the message, never all of it.
class data_reader {
public:
    explicit data_reader(std::size_t max_size, bare_lf mode = bare_lf::reject) : max_size_(max_size), mode_(mode) {}

    // Consumes from `in` as much as belongs to the message. Returns how many
    // bytes were consumed; done() turns true once the terminator was read
    // (bytes after it are not consumed: they are the next commands).
    std::size_t consume(std::string_view in);

    [[nodiscard]] bool done() const { return done_; }
    // True if the message exceeded max_size (its content is then dropped).
    [[nodiscard]] bool too_big() const { return too_big_; }
    // The unstuffed message produced and not yet taken: all of it when
    // nothing was taken (valid when !too_big() and nothing was dropped).
    [[nodiscard]] const std::string& message() const { return message_; }
    std::string take_message() { return std::move(message_); }
    // Moves message() into `out` (whose content is replaced) and leaves
    // message() empty. The two strings swap their buffers, so a caller that
    // passes the same string each time makes no allocation per call.
    void take_message_into(std::string& out);
    // The rest of the message is read to its end but not kept, and what is
    // kept now is dropped: the message will be refused anyway.
    void drop_content();
    // Bytes of the unstuffed message so far (taken, kept or dropped).
    [[nodiscard]] std::size_t size() const { return size_; }
    // bare_lf::reject: a bare LF was part of the message (which then must
    // not be accepted: whatever we sent on would differ from what was meant).
    [[nodiscard]] bool saw_bare_lf() const { return saw_bare_lf_; }

private:
    std::size_t max_size_;
    bare_lf mode_;
    bool saw_bare_lf_ = false;
    std::string message_;
    std::size_t size_ = 0;
    int state_ = 1;  // position in the CRLF . CRLF automaton; starts "after CRLF"
    bool done_ = false;
    bool too_big_ = false;
    bool dropping_ = false;  // too big, or drop_content(): count, keep nothing
    void append(std::string_view s);
    // A bare LF at the current position: a line end (accept) or content (reject).
    void line_end_at_lf();
};

// Client side: the message as it goes on the wire after 354: lines starting
// with "." get another ".", a message not ending in CRLF gets one, and the
// terminator ".\r\n" is appended. A bare LF or bare CR in the message is
// written as CRLF (as Postfix does), so that no upstream, strict or lenient,
// can see an end of data that we did not send.
std::string dot_stuff(std::string_view message);
// The same, appended to out (no intermediate copy).
void dot_stuff_into(std::string& out, std::string_view message);

// The same for a message that arrives in pieces (read from the spool as it
// is sent): add() each piece in order, then finish() once. The wire bytes
// are those of dot_stuff() of the whole, wherever the pieces are cut (a
// CRLF or a leading "." split across two pieces included).
class dot_stuffer {
public:
    void add(std::string& out, std::string_view piece);
    // Ends the last line if it is open, then the terminator ".\r\n".
    void finish(std::string& out);

private:
    bool at_line_start_ = true;
    bool after_cr_ = false;  // the last byte was a CR, already written as CRLF
};

}  // namespace subrelay::smtp
