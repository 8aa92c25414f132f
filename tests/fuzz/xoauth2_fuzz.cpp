// XOAUTH2 and the base64 it travels in.
// Input: a mailbox, a NUL, a token (no NUL: the whole input is the mailbox).
// Checked: the initial response decodes to exactly
// "user=" mailbox "\x01auth=Bearer " token "\x01\x01"; base64 decodes only
// canonical text (encoding what it decoded gives the text back) and decoding
// an encoding gives the bytes back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/xoauth2.hpp"
#include "smtp/text/base64.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace subrelay;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto nul = in.find('\0');
    const std::string_view mailbox = in.substr(0, nul);
    const std::string_view token = nul == std::string_view::npos ? std::string_view{} : in.substr(nul + 1);

    const std::string wire = auth::xoauth2_initial_response(mailbox, token);
    FUZZ_CHECK(wire.find_first_of("\r\n ") == std::string::npos);
    const auto decoded = text::base64_decode(wire);
    FUZZ_CHECK(decoded.has_value());
    FUZZ_CHECK(*decoded == "user=" + std::string(mailbox) + "\x01" + "auth=Bearer " + std::string(token) + "\x01\x01");

    if (const auto d = text::base64_decode(in)) FUZZ_CHECK(text::base64_encode(*d) == in);
    FUZZ_CHECK(text::base64_decode(text::base64_encode(in)) == std::string(in));
    return 0;
}
