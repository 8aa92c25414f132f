// The readers of the token endpoint's answers: a 200 answer (access_token,
// token_type, expires_in) and an error answer (error, AADSTS code, hint,
// with tokens taken out of what is quoted).
// Input: one byte choosing the HTTP status, then the body.
// Checked: nothing throws and nothing is undefined; an accepted answer has
// a token and a life of 0 to 10 years;
// a diagnosis has a one-line hint; redact() takes every secret out (for
// secrets that share no character with "[redacted]") and ends.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "auth/oauth_error.hpp"
#include "auth/token_provider.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::auth;

// The string values of the token fields of a JSON object body.
std::vector<std::string> token_values(std::string_view body) {
    std::vector<std::string> out;
    boost::system::error_code ec;
    const auto v = boost::json::parse(body, ec);
    if (ec || !v.is_object()) return out;
    for (const char* key : {"access_token", "refresh_token", "id_token", "error_description"}) {
        if (const auto* f = v.get_object().if_contains(key); f != nullptr && f->is_string())
            out.emplace_back(f->get_string());
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static constexpr int statuses[] = {0, 200, 400, 401, 403, 429, 500, 503};
    const int status = statuses[data[0] % 8];
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

    const token_answer a = read_token_answer(body);
    if (a.problem.empty()) {
        FUZZ_CHECK(!a.access_token.empty());
        FUZZ_CHECK(a.expires_in >= 0 && a.expires_in <= 10LL * 365 * 24 * 3600);
        FUZZ_CHECK(a.object.contains("access_token"));
    }

    const oauth_diagnosis d = diagnose_token_failure(status, body, "subrelay oauth login --profile p");
    FUZZ_CHECK(d.hint.find_first_of("\r\n") == std::string::npos);
    if (d.aadsts) FUZZ_CHECK(*d.aadsts >= 0);
    (void)to_string(d.kind);

    const std::vector<std::string> secrets = token_values(body);
    const std::string redacted = redact(std::string(body), secrets);
    for (const auto& s : secrets) {
        if (s.empty() || s.find_first_of("[redacted]") != std::string::npos) continue;
        FUZZ_CHECK(redacted.find(s) == std::string::npos);
    }
    (void)describe_endpoint(std::string(body), "the token endpoint");
    (void)aadsts_code(body, body);
    return 0;
}
