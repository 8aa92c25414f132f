// The header reader: the header section kept while DATA arrives, the From:
// and Sender: fields in it, the To:, Cc: and Bcc: fields and how they
// compare with an envelope (for Graph), and the RFC 5322 address lists they
// hold.
// Input: one byte of options, then the message (also read as one field value).
//   bit 0: a small limit (64 octets) on the header section
//   bits 1-7: the size of the pieces the message arrives in (0: all at once)
// Checked: the header section kept does not depend on how the message was
// cut; it is the message up to its first empty line, or its first `limit`
// octets (truncated), or all of it; every address read is a valid mailbox
// without CR, LF or NUL, and reads back as itself alone and in <...>; an
// error names the field and says what is wrong. Against an envelope, the
// recipients missing from the header are envelope recipients, the extra
// ones are header addresses, and a Bcc: field naming the missing ones reads
// back as them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "smtp/address.hpp"
#include "smtp/header.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::smtp;

void check_addresses(const address_list_result& r, std::vector<std::string_view> fields) {
    if (const auto* e = std::get_if<header_error>(&r)) {
        FUZZ_CHECK(!e->message.empty());
        FUZZ_CHECK(fields.empty() ? e->field.empty()
                                  : std::find(fields.begin(), fields.end(), e->field) != fields.end());
        return;
    }
    for (const auto& a : std::get<std::vector<std::string>>(r)) {
        FUZZ_CHECK(valid_mailbox(a));
        FUZZ_CHECK(a.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
        for (const std::string& form : {a, "<" + a + ">", "Name <" + a + "> (comment)"}) {
            const auto back = parse_address_list(form);
            const auto* list = std::get_if<std::vector<std::string>>(&back);
            FUZZ_CHECK(list != nullptr && list->size() == 1 && list->front() == a);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t limit = (flags & 1) != 0 ? 64 : header_collector::default_limit;
    const std::size_t piece = flags >> 1;

    header_collector whole(limit);
    whole.add(in);
    header_collector cut(limit);
    for (std::size_t i = 0; i < in.size(); i += piece == 0 ? in.size() : piece)
        cut.add(in.substr(i, piece == 0 ? in.size() : piece));
    FUZZ_CHECK(whole.header() == cut.header() && whole.ended() == cut.ended() && whole.truncated() == cut.truncated());

    const std::string& h = whole.header();
    FUZZ_CHECK(in.starts_with(h) && h.size() <= limit);
    FUZZ_CHECK(!(whole.ended() && whole.truncated()));
    if (whole.truncated()) FUZZ_CHECK(h.size() == limit && in.size() > limit);
    if (!whole.ended() && !whole.truncated()) FUZZ_CHECK(h.size() == in.size());
    if (whole.ended()) {
        FUZZ_CHECK(in[h.size()] == '\r' || in[h.size()] == '\n');
        FUZZ_CHECK(h.empty() || h.back() == '\r' || h.back() == '\n');
    }

    check_addresses(sender_addresses(h), {"From", "Sender"});
    check_addresses(parse_address_list(in), {});
    const auto listed = recipient_addresses(h);
    check_addresses(listed, {"To", "Cc", "Bcc"});
    if (const auto* header_list = std::get_if<std::vector<std::string>>(&listed)) {
        // An envelope: the senders' addresses (any valid mailboxes will do).
        const auto senders = sender_addresses(h);
        const auto* envelope = std::get_if<std::vector<std::string>>(&senders);
        const auto compared = compare_header_recipients(h, envelope ? *envelope : std::vector<std::string>{});
        const auto* r = std::get_if<header_recipients>(&compared);
        FUZZ_CHECK(r != nullptr);
        const auto among = [](const std::vector<std::string>& list, const std::string& a) {
            return std::find(list.begin(), list.end(), a) != list.end();
        };
        for (const auto& m : r->missing) FUZZ_CHECK(envelope != nullptr && among(*envelope, m));
        for (const auto& x : r->extra) FUZZ_CHECK(among(*header_list, x));
        if (!r->missing.empty()) {
            const auto back = recipient_addresses(bcc_field(r->missing));
            const auto* got = std::get_if<std::vector<std::string>>(&back);
            FUZZ_CHECK(got != nullptr && *got == r->missing);
        }
    }
    whole.clear();
    FUZZ_CHECK(whole.header().empty() && !whole.ended() && !whole.truncated());
    return 0;
}
