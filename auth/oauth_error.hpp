#pragma once
// What a failed token request means, from the identity platform's answer:
// the HTTP status, the OAuth2 `error` field and, for Microsoft, the AADSTS
// code in `error_description` (or `error_codes`). Each class tells the
// delivery what to do: try again later, stop and tell the admin what to fix,
// or have someone sign in again (`subrelay oauth login`).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subrelay::auth {

enum class oauth_failure {
    retryable,       // temporarily_unavailable, HTTP 5xx/429, AADSTS 50033, 50087, 90006, 90024, 90033,
                     // 90055, 90090, 50196, a timeout or a connection failure
    configuration,   // invalid_client (7000215, 7000222, 700027, 7000218), 700016, 90002, 500011, 65001,
                     // 70011, 53003, 530035, and any other error not known to be retryable
    sign_in_needed,  // invalid_grant with 70008, 700082, 50173, 70043 (or without a code)
};

struct oauth_diagnosis {
    oauth_failure kind = oauth_failure::configuration;
    std::string error;            // the `error` field ("" if none)
    std::optional<long> aadsts;   // the AADSTS code, if any
    std::string hint;             // one line for the admin: what to fix, in their words
};

// Finds the AADSTS code: "AADSTS700016: Application with identifier ..." in
// error_description, else the first entry of error_codes (a JSON array of numbers).
std::optional<long> aadsts_code(std::string_view error_description, std::string_view error_codes_json = {});

// body is the endpoint's JSON answer (may be empty or not JSON, e.g. a proxy's
// HTML page); http_status 0 means no HTTP answer at all (timeout, refused,
// TLS failure). Never throws. The hint never repeats the request's secrets.
// sign_in_command is the command the hint names when a sign-in is needed
// again ("subrelay oauth login --profile NAME" for a named profile).
oauth_diagnosis diagnose_token_failure(int http_status, std::string_view body,
                                       std::string_view sign_in_command = "subrelay oauth login");

// text with every occurrence of each non-empty secret replaced by
// "[redacted]": a message never carries a secret, even one a server echoed.
std::string redact(std::string text, const std::vector<std::string>& secrets);

// "host:port/path" of a URL (no query string), to name an endpoint in a
// message; `otherwise` when the URL does not parse.
std::string describe_endpoint(const std::string& url, std::string_view otherwise);

// "retryable" / "configuration" / "sign-in needed".
std::string_view to_string(oauth_failure f);

}  // namespace subrelay::auth
