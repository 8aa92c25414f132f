#pragma once
// The message header as far as the relay reads it: the header section kept
// while DATA arrives (bounded), the From: and Sender: fields in it, and the
// RFC 5322 address lists they hold.
//
// Line ends are those the relay writes upstream (see dot_stuffer): CRLF, and
// a bare CR or a bare LF, each end a line. Reading them the same way means a
// field hidden behind a bare CR here is a field here too, not only upstream.
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace subrelay::smtp {

// The bytes of a message up to its first empty line (the header section),
// collected from the pieces DATA arrives in, at most `limit` octets.
class header_collector {
public:
    static constexpr std::size_t default_limit = 64 * 1024;
    explicit header_collector(std::size_t limit = default_limit) : limit_(limit) {}

    // Takes the next piece of the (unstuffed) message; what lies after the
    // header section, or beyond the limit, is ignored.
    void add(std::string_view piece);
    // The header section so far (without the empty line that ends it).
    [[nodiscard]] const std::string& header() const { return header_; }
    // The empty line that ends the header section was seen.
    [[nodiscard]] bool ended() const { return ended_; }
    // The header section went on past the limit: header() is its beginning
    // only, and a field after it was not seen.
    [[nodiscard]] bool truncated() const { return truncated_; }
    // Ready for the next message; the buffer is released.
    void clear();

private:
    std::size_t limit_;
    std::string header_;
    bool ended_ = false;
    bool truncated_ = false;
    bool at_line_start_ = true;
    bool after_cr_ = false;  // the last byte was a CR (a LF after it belongs to it)
};

// Why a field could not be read.
struct header_error {
    std::string field;    // "From", "Sender"
    std::string message;  // "unterminated quoted string"
};

using address_list_result = std::variant<std::vector<std::string>, header_error>;

// The addr-specs of an RFC 5322 address list (a field's unfolded value):
// mailboxes with or without a display name (atoms, quoted strings, encoded
// words read as atoms, UTF-8), comments (nested), groups ("Team: a@x, b@y;",
// "Undisclosed:;"), and the obsolete forms (routes in angle brackets, empty
// list elements, white space and comments around dots and "@"). Each
// address is returned as "local@domain": a quoted local part that needs no
// quotes loses them ("\"ceo\"@x" is ceo@x). A value that is empty (or only
// white space and comments) holds no address, nor does "<>" (as bounces
// write it). An address written as an unquoted display name
// ("ceo@x <scanner@x>", not RFC 5322 but devices send it) is returned as
// well as the one in angle brackets. Anything else that is not an address
// list, or an address that is not a valid mailbox, is an error.
address_list_result parse_address_list(std::string_view value);

// The addresses of every From: and Sender: field of a header section
// (field names in any case, folded lines unfolded), in order. An error when
// one of them cannot be read.
address_list_result sender_addresses(std::string_view header_section);

// The same for every To:, Cc: and Bcc: field.
address_list_result recipient_addresses(std::string_view header_section);

// Microsoft Graph's MIME send delivers a message to the addresses of its
// To:, Cc: and Bcc: fields, not to an envelope. Against the envelope's
// recipients (compared without regard to case, each once):
struct header_recipients {
    std::vector<std::string> missing;  // envelope recipients in no such field: added as Bcc: so they get it
    std::vector<std::string> extra;    // addresses in those fields that are no envelope recipient: Graph
                                       // would send to them, past every check RCPT had
};
std::variant<header_recipients, header_error> compare_header_recipients(std::string_view header_section,
                                                                        const std::vector<std::string>& envelope);

// One Bcc: field naming `addresses` (addr-specs), folded before lines grow
// past 78 octets, ending in CRLF.
std::string bcc_field(const std::vector<std::string>& addresses);

}  // namespace subrelay::smtp
