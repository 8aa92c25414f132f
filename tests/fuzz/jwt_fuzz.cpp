// The pieces of JSON Web Tokens read from outside: Google's service-account
// key file (JSON), the assertion algorithm setting, base64url, PEM keys.
// Input: the text of a key file (also tried as base64url, an algorithm name
// and a PEM key).
// Checked: only jwt_error is thrown; an accepted key file has its required
// fields; base64url decodes only canonical text, so encoding what it decoded
// gives the text back, and decoding an encoding gives the bytes back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/jwt.hpp"
#include "smtp/text/base64.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace subrelay;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const auth::service_account_key k = auth::parse_service_account_json(text, "gmail-sa.json");
        FUZZ_CHECK(!k.client_email.empty() && !k.private_key_pem.empty() && !k.token_uri.empty());
    } catch (const auth::jwt_error& e) {
        FUZZ_CHECK(std::string_view(e.what()).starts_with("gmail-sa.json"));
    }
    try {
        const auth::jwt_alg alg = auth::parse_jwt_alg(text);
        FUZZ_CHECK(alg == auth::jwt_alg::ps256 || alg == auth::jwt_alg::rs256);
    } catch (const auth::jwt_error&) {
    }
    if (const auto decoded = text::base64url_decode(text)) FUZZ_CHECK(text::base64url_encode(*decoded) == text);
    FUZZ_CHECK(text::base64url_decode(text::base64url_encode(text)) == std::string(text));
    if (text.starts_with("-----BEGIN")) {
        try {
            (void)auth::signing_key::from_pem(text, "app.key");
        } catch (const auth::jwt_error&) {
        }
    }
    return 0;
}
