#include "auth/oauth_error.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

namespace {

using namespace subrelay::auth;

// An error answer as Entra ID sends it: the code twice (description and
// error_codes), the description in several CRLF-separated lines.
std::string ms_body(const std::string& error, long code, const std::string& text) {
    boost::json::object o;
    o["error"] = error;
    o["error_description"] = "AADSTS" + std::to_string(code) + ": " + text +
                             "\r\nTrace ID: 0b4a2f4e-3c1d-4e6f-9a8b-1c2d3e4f5a6b"
                             "\r\nCorrelation ID: 7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
                             "\r\nTimestamp: 2024-05-01 10:00:00Z";
    o["error_codes"] = boost::json::array{code};
    o["timestamp"] = "2024-05-01 10:00:00Z";
    o["trace_id"] = "0b4a2f4e-3c1d-4e6f-9a8b-1c2d3e4f5a6b";
    o["correlation_id"] = "7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b";
    o["error_uri"] = "https://login.microsoftonline.com/error?code=" + std::to_string(code);
    return boost::json::serialize(o);
}

std::string google_body(const std::string& error, const std::string& description) {
    boost::json::object o;
    o["error"] = error;
    o["error_description"] = description;
    return boost::json::serialize(o);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- aadsts_code -----------------------------------------------------------

TEST(aadsts_code, from_the_description) {
    EXPECT_EQ(aadsts_code("AADSTS700016: Application with identifier 'x' was not found"), 700016);
    EXPECT_EQ(aadsts_code("Error: AADSTS7000222: The provided client secret keys are expired."), 7000222);
}

TEST(aadsts_code, from_error_codes_when_the_description_has_none) {
    EXPECT_EQ(aadsts_code("The provided client secret keys are expired.", "[7000222]"), 7000222);
    EXPECT_EQ(aadsts_code("", " [ 50173 , 70008 ] "), 50173);
}

TEST(aadsts_code, description_wins_over_error_codes) {
    EXPECT_EQ(aadsts_code("AADSTS65001: The user or administrator has not consented", "[70011]"), 65001);
}

TEST(aadsts_code, skips_the_prefix_without_digits) {
    EXPECT_EQ(aadsts_code("AADSTS: see below. AADSTS90002: Tenant not found"), 90002);
    EXPECT_EQ(aadsts_code("AADSTS: nothing", "[90002]"), 90002);
}

TEST(aadsts_code, none) {
    EXPECT_EQ(aadsts_code("Token has been expired or revoked."), std::nullopt);
    EXPECT_EQ(aadsts_code("", "[]"), std::nullopt);
    EXPECT_EQ(aadsts_code("", "not json"), std::nullopt);
    EXPECT_EQ(aadsts_code("", "[\"7000222\"]"), std::nullopt);
    EXPECT_EQ(aadsts_code("", "[-1]"), std::nullopt);
    EXPECT_EQ(aadsts_code("", "{\"code\":7000222}"), std::nullopt);
    EXPECT_EQ(aadsts_code("AADSTS99999999999999999999999: overflow"), std::nullopt);
}

// ---- Microsoft's codes ------------------------------------------------------

struct ms_case {
    int status;
    std::string error;
    long code;
    std::string text;
    oauth_failure kind;
    std::vector<std::string> hint_words;  // the fix, in the admin's words
};

const std::vector<ms_case>& ms_cases() {
    static const std::vector<ms_case> cases = {
        // Retryable whatever `error` says.
        {400, "invalid_request", 50033, "RetryableError - Indicates a transient error not related to the database.",
         oauth_failure::retryable, {"temporarily unavailable", "retrying"}},
        {400, "invalid_grant", 50087,
         "SasRetryableError - A transient error has occurred during strong authentication. Please try again.",
         oauth_failure::retryable, {"retrying"}},
        {400, "invalid_request", 90006, "ExternalServerRetryableError - The service is temporarily unavailable.",
         oauth_failure::retryable, {"retrying"}},
        {400, "invalid_request", 90024, "RequestBudgetExceededError - A transient error has occurred. Try again.",
         oauth_failure::retryable, {"retrying"}},
        {400, "invalid_client", 90033,
         "MsodsServiceUnavailable - The Microsoft Online Directory Service (MSODS) isn't available.",
         oauth_failure::retryable, {"retrying"}},
        {400, "invalid_request", 90055, "TenantThrottlingError - There are too many incoming requests.",
         oauth_failure::retryable, {"retrying"}},
        {400, "invalid_request", 90090, "GraphRetryableError - The service is temporarily unavailable.",
         oauth_failure::retryable, {"retrying"}},
        {400, "invalid_request", 50196,
         "The server terminated an operation because it encountered a client request loop. Please contact your "
         "app vendor.",
         oauth_failure::retryable, {"retrying"}},
        // The refresh token is gone.
        {400, "invalid_grant", 70008,
         "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive "
         "authorization request for this user and resource.",
         oauth_failure::sign_in_needed, {"refresh token", "`subrelay oauth login`"}},
        {400, "invalid_grant", 700082,
         "The refresh token has expired due to inactivity. The token was issued on 2024-01-01T10:00:00.000Z and "
         "was inactive for 90.00:00:00.",
         oauth_failure::sign_in_needed, {"refresh token", "`subrelay oauth login`"}},
        {400, "invalid_grant", 50173,
         "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might "
         "have changed or reset their password.",
         oauth_failure::sign_in_needed, {"password", "`subrelay oauth login`"}},
        {400, "invalid_grant", 70043,
         "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The "
         "token was issued on 2024-05-01T08:00:00Z and the maximum allowed lifetime for this request is 3600.",
         oauth_failure::sign_in_needed, {"Conditional Access", "sign-in frequency", "`subrelay oauth login`"}},
        // The app's credentials.
        {401, "invalid_client", 7000215,
         "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
         "not the client secret ID, for a secret added to app '00000000-0000-0000-0000-000000000001'.",
         oauth_failure::configuration, {"client secret", "Value", "Secret ID", "oauth.client_secret_file"}},
        {401, "invalid_client", 7000222,
         "The provided client secret keys for app '00000000-0000-0000-0000-000000000001' are expired. Visit the "
         "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
         "certificate credentials for added security: https://aka.ms/certCreds.",
         oauth_failure::configuration,
         {"expired", "App registrations > Certificates & secrets", "client_secret_file"}},
        {401, "invalid_client", 700027,
         "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used "
         "by client: '5D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D4E', Please visit the Azure Portal, Graph Explorer or "
         "directly use MS Graph to see configured keys for app Id '00000000-0000-0000-0000-000000000001'.]",
         oauth_failure::configuration, {"certificate", "Certificates & secrets", "upload"}},
        {401, "invalid_client", 7000218,
         "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
         oauth_failure::configuration, {"oauth.client_secret_file", "Allow public client flows"}},
        // The app, the tenant, the scope.
        {400, "unauthorized_client", 700016,
         "Application with identifier '00000000-0000-0000-0000-000000000001' was not found in the directory "
         "'Contoso'. This can happen if the application has not been installed by the administrator of the tenant "
         "or consented to by any user in the tenant. You may have sent your authentication request to the wrong "
         "tenant.",
         oauth_failure::configuration, {"client id", "tenant", "oauth.client_id", "consent"}},
        {400, "invalid_request", 90002,
         "Tenant 'contoso.onmicrosoft.com' not found. Check to make sure you have the correct tenant ID and are "
         "signing into the correct cloud.",
         oauth_failure::configuration, {"tenant", "oauth.token_url"}},
        {400, "invalid_resource", 500011,
         "The resource principal named https://outlook.office365.com was not found in the tenant named Contoso. "
         "This can happen if the application has not been installed by the administrator of the tenant or "
         "consented to by any user in the tenant.",
         oauth_failure::configuration,
         {"oauth.scope", "https://outlook.office365.com/.default", "Office 365 Exchange Online"}},
        // 65001 comes as invalid_grant, but signing in again does not grant consent.
        {400, "invalid_grant", 65001,
         "The user or administrator has not consented to use the application with ID "
         "'00000000-0000-0000-0000-000000000001' named 'subrelay'. Send an interactive authorization request for "
         "this user and resource.",
         oauth_failure::configuration, {"admin consent", "SMTP.SendAsApp", "API permissions"}},
        {400, "invalid_scope", 70011,
         "The provided request must include a 'scope' input parameter. The provided value for the input parameter "
         "'scope' is not valid. The scope https://outlook.office365.com/SMTP.SendAsApp is not valid.",
         oauth_failure::configuration, {"oauth.scope", "https://outlook.office365.com/.default"}},
        // Tenant policy, also as invalid_grant.
        {400, "invalid_grant", 53003,
         "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
         oauth_failure::configuration, {"Conditional Access", "sign-in logs"}},
        {400, "invalid_grant", 530035,
         "Access has been blocked by security defaults. This is due to the request using legacy auth or being "
         "deemed unsafe by security defaults policies.",
         oauth_failure::configuration, {"security defaults", "sign-in logs"}},
    };
    return cases;
}

TEST(diagnose_token_failure, microsoft_codes) {
    for (const auto& c : ms_cases()) {
        SCOPED_TRACE("AADSTS" + std::to_string(c.code));
        const auto d = diagnose_token_failure(c.status, ms_body(c.error, c.code, c.text));
        EXPECT_EQ(d.kind, c.kind) << to_string(d.kind);
        EXPECT_EQ(d.error, c.error);
        EXPECT_EQ(d.aadsts, c.code);
        for (const auto& word : c.hint_words) {
            EXPECT_TRUE(contains(d.hint, word)) << "'" << word << "' not in: " << d.hint;
        }
        EXPECT_FALSE(contains(d.hint, "\n")) << d.hint;
        EXPECT_FALSE(contains(d.hint, "Trace ID")) << d.hint;
    }
}

TEST(diagnose_token_failure, code_only_in_error_codes) {
    const std::string body =
        R"({"error":"invalid_client","error_description":"The provided client secret keys are expired.",)"
        R"("error_codes":[7000222]})";
    const auto d = diagnose_token_failure(401, body);
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_EQ(d.aadsts, 7000222);
    EXPECT_TRUE(contains(d.hint, "client secret has expired")) << d.hint;
}

TEST(diagnose_token_failure, sign_in_code_needs_invalid_grant) {
    const auto d = diagnose_token_failure(400, ms_body("invalid_request", 70008, "Something else."));
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_FALSE(contains(d.hint, "oauth login")) << d.hint;
}

TEST(diagnose_token_failure, invalid_grant_with_another_code_is_configuration) {
    const auto d = diagnose_token_failure(
        400, ms_body("invalid_grant", 50126, "Error validating credentials due to invalid username or password."));
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_EQ(d.aadsts, 50126);
    EXPECT_TRUE(contains(d.hint, "AADSTS50126")) << d.hint;
}

TEST(diagnose_token_failure, unknown_code_quotes_the_first_line) {
    const auto d = diagnose_token_failure(
        400,
        ms_body("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."));
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_EQ(d.aadsts, 900144);
    EXPECT_TRUE(contains(d.hint, "invalid_request")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "AADSTS900144")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "HTTP 400")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "The request body must contain the following parameter: 'grant_type'.")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "https://login.microsoftonline.com/error?code=900144")) << d.hint;
    EXPECT_FALSE(contains(d.hint, "Trace ID")) << d.hint;
    EXPECT_FALSE(contains(d.hint, "\r")) << d.hint;
}

TEST(diagnose_token_failure, long_description_is_truncated) {
    // 195 + 4 bytes, then a two-byte character across the 200-byte limit.
    std::string text;
    for (int i = 0; i < 39; ++i) {
        text += "word ";
    }
    text += "abcd\u00e9 and much more after it";
    const auto d = diagnose_token_failure(400, google_body("invalid_request", text));
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_LT(d.hint.size(), 400U) << d.hint;
    // Cut before the character, not inside it.
    EXPECT_TRUE(d.hint.ends_with("word abcd...")) << d.hint;
    EXPECT_FALSE(contains(d.hint, "much more")) << d.hint;
}

TEST(diagnose_token_failure, unknown_errors_without_code) {
    for (const std::string error : {"invalid_request", "unsupported_grant_type", "access_denied"}) {
        SCOPED_TRACE(error);
        const auto d = diagnose_token_failure(400, google_body(error, "Bad Request"));
        EXPECT_EQ(d.kind, oauth_failure::configuration);
        EXPECT_EQ(d.error, error);
        EXPECT_EQ(d.aadsts, std::nullopt);
        EXPECT_TRUE(contains(d.hint, error)) << d.hint;
        EXPECT_TRUE(contains(d.hint, "Bad Request")) << d.hint;
    }
}

// ---- Google ------------------------------------------------------------------

TEST(diagnose_token_failure, google_revoked_refresh_token) {
    const auto d = diagnose_token_failure(400, google_body("invalid_grant", "Token has been expired or revoked."));
    EXPECT_EQ(d.kind, oauth_failure::sign_in_needed);
    EXPECT_EQ(d.error, "invalid_grant");
    EXPECT_EQ(d.aadsts, std::nullopt);
    EXPECT_TRUE(contains(d.hint, "`subrelay oauth login`")) << d.hint;
}

TEST(diagnose_token_failure, google_missing_domain_wide_delegation) {
    const auto d = diagnose_token_failure(
        401, google_body("unauthorized_client",
                         "Client is unauthorized to retrieve access tokens using this method, or client not "
                         "authorized for any of the scopes requested."));
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_EQ(d.aadsts, std::nullopt);
    EXPECT_TRUE(contains(d.hint, "Domain-wide delegation")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "https://mail.google.com/")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "client id")) << d.hint;
}

// ---- device flow -------------------------------------------------------------

TEST(diagnose_token_failure, device_flow_endings) {
    for (const std::string error : {"expired_token", "authorization_declined"}) {
        SCOPED_TRACE(error);
        const auto d = diagnose_token_failure(400, google_body(error, "The device code expired."));
        EXPECT_EQ(d.kind, oauth_failure::sign_in_needed);
        EXPECT_TRUE(contains(d.hint, "`subrelay oauth login`")) << d.hint;
    }
    const auto d = diagnose_token_failure(
        400, ms_body("expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid."));
    EXPECT_EQ(d.kind, oauth_failure::sign_in_needed);
    EXPECT_EQ(d.aadsts, 70020);
}

TEST(diagnose_token_failure, device_flow_polling_is_not_a_failure_to_report) {
    const auto d = diagnose_token_failure(
        400, ms_body("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending."));
    EXPECT_EQ(d.kind, oauth_failure::retryable);
}

// ---- no usable answer ----------------------------------------------------------

TEST(diagnose_token_failure, http_503_with_html) {
    const auto d = diagnose_token_failure(
        503, "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>");
    EXPECT_EQ(d.kind, oauth_failure::retryable);
    EXPECT_EQ(d.error, "");
    EXPECT_EQ(d.aadsts, std::nullopt);
    EXPECT_TRUE(contains(d.hint, "temporarily unavailable")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "retrying")) << d.hint;
}

TEST(diagnose_token_failure, server_errors_win_over_the_body) {
    for (int status : {500, 502, 504}) {
        SCOPED_TRACE(status);
        EXPECT_EQ(diagnose_token_failure(status, ms_body("invalid_client", 7000222, "expired")).kind,
                  oauth_failure::retryable);
    }
}

TEST(diagnose_token_failure, temporarily_unavailable) {
    const auto d = diagnose_token_failure(
        400, google_body("temporarily_unavailable", "The server is temporarily unable to handle the request."));
    EXPECT_EQ(d.kind, oauth_failure::retryable);
    EXPECT_TRUE(contains(d.hint, "retrying")) << d.hint;
}

TEST(diagnose_token_failure, throttled_429) {
    const auto d = diagnose_token_failure(429, "");
    EXPECT_EQ(d.kind, oauth_failure::retryable);
    EXPECT_TRUE(contains(d.hint, "429")) << d.hint;
    EXPECT_EQ(diagnose_token_failure(429, ms_body("invalid_request", 90055, "TenantThrottlingError")).kind,
              oauth_failure::retryable);
}

TEST(diagnose_token_failure, no_answer_at_all) {
    const auto d = diagnose_token_failure(0, "");
    EXPECT_EQ(d.kind, oauth_failure::retryable);
    EXPECT_EQ(d.error, "");
    EXPECT_TRUE(contains(d.hint, "did not answer")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "retrying")) << d.hint;
}

TEST(diagnose_token_failure, empty_body_with_400) {
    const auto d = diagnose_token_failure(400, "");
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_EQ(d.error, "");
    EXPECT_EQ(d.aadsts, std::nullopt);
    EXPECT_TRUE(contains(d.hint, "HTTP 400")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "empty body")) << d.hint;
}

TEST(diagnose_token_failure, non_json_4xx_names_the_status) {
    for (int status : {400, 403, 404, 407}) {
        SCOPED_TRACE(status);
        const auto d = diagnose_token_failure(status, "<html><body><h1>Access Denied</h1>by policy</body></html>");
        EXPECT_EQ(d.kind, oauth_failure::configuration);
        EXPECT_TRUE(contains(d.hint, "HTTP " + std::to_string(status))) << d.hint;
        EXPECT_TRUE(contains(d.hint, "proxy")) << d.hint;
        EXPECT_TRUE(contains(d.hint, "oauth.token_url")) << d.hint;
    }
}

TEST(diagnose_token_failure, json_that_is_not_an_oauth_error) {
    const std::vector<std::string> bodies = {
        "[]", "{}", R"({"error":""})", R"({"error":{"code":400,"message":"x"}})", "null", "{\"error\":",
        std::string(100, '['),  // deeper than the parser allows
    };
    for (const auto& body : bodies) {
        SCOPED_TRACE(body);
        const auto d = diagnose_token_failure(400, body);
        EXPECT_EQ(d.kind, oauth_failure::configuration);
        EXPECT_TRUE(contains(d.hint, "HTTP 400")) << d.hint;
    }
}

// ---- secrets -----------------------------------------------------------------

TEST(diagnose_token_failure, tokens_in_the_body_never_reach_the_hint) {
    const std::string access = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sifQ.c2ln";
    const std::string refresh = "1//0gShortRefresh";
    boost::json::object o;
    o["error"] = "invalid_request";
    o["error_description"] = "echo: access_token=" + access + "&refresh_token=" + refresh + " end";
    o["access_token"] = access;
    o["refresh_token"] = refresh;
    const auto d = diagnose_token_failure(400, boost::json::serialize(o));
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_FALSE(contains(d.hint, access)) << d.hint;
    EXPECT_FALSE(contains(d.hint, "eyJ0eXAiOiJKV1Qi")) << d.hint;
    EXPECT_FALSE(contains(d.hint, refresh)) << d.hint;
    EXPECT_TRUE(contains(d.hint, "[redacted]")) << d.hint;
    EXPECT_TRUE(contains(d.hint, "end")) << d.hint;
}

// Found by the token_response fuzz target: a secret that is part of
// "[redacted]" (here "ed") was found again inside each replacement, and the
// loop replaced it forever while the text grew.
TEST(redact, a_secret_inside_the_replacement_ends) {
    EXPECT_EQ(redact("red ed", {"ed"}), "r[redacted] [redacted]");
    EXPECT_EQ(redact("[redacted]", {"[redacted]"}), "[redacted]");
    const auto d = diagnose_token_failure(400, R"({"error":"invalid_request","error_description":"ed","access_token":"ed"})");
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_FALSE(contains(d.hint, " ed")) << d.hint;
}

TEST(diagnose_token_failure, token_shaped_text_is_not_quoted) {
    // A token cut by the length limit must not leak in part either.
    const std::string token(300, 'A');
    const auto d = diagnose_token_failure(400, google_body("invalid_request", "got " + token));
    EXPECT_FALSE(contains(d.hint, std::string(64, 'A'))) << d.hint;
    EXPECT_TRUE(contains(d.hint, "got [redacted]")) << d.hint;
}

TEST(diagnose_token_failure, ids_stay_readable) {
    const auto d = diagnose_token_failure(
        400, ms_body("invalid_request", 900023,
                     "Specified tenant identifier '0b4a2f4e-3c1d-4e6f-9a8b-1c2d3e4f5a6b' is neither a valid DNS name, "
                     "nor a valid external domain."));
    EXPECT_TRUE(contains(d.hint, "'0b4a2f4e-3c1d-4e6f-9a8b-1c2d3e4f5a6b'")) << d.hint;
}

TEST(diagnose_token_failure, control_characters_are_not_passed_on) {
    const auto d = diagnose_token_failure(400, google_body("invalid\x1b[2Jrequest", "a\tb\x1b[31mc"));
    EXPECT_EQ(d.hint.find('\x1b'), std::string::npos) << d.hint;
    EXPECT_EQ(d.hint.find('\t'), std::string::npos) << d.hint;
}

// ---- to_string -----------------------------------------------------------------

TEST(oauth_error, to_string) {
    EXPECT_EQ(to_string(oauth_failure::retryable), "retryable");
    EXPECT_EQ(to_string(oauth_failure::configuration), "configuration");
    EXPECT_EQ(to_string(oauth_failure::sign_in_needed), "sign-in needed");
}

TEST(oauth_error, default_diagnosis_is_configuration) {
    // Anything not known to be retryable stops and asks the admin.
    EXPECT_EQ(oauth_diagnosis{}.kind, oauth_failure::configuration);
}

TEST(diagnose_token_failure, google_invalid_jwt_is_configuration_not_sign_in) {
    const auto d = diagnose_token_failure(
        400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
    EXPECT_EQ(d.kind, oauth_failure::configuration);
    EXPECT_NE(d.hint.find("Invalid JWT Signature."), std::string::npos) << d.hint;
    EXPECT_EQ(d.hint.find("oauth login"), std::string::npos) << d.hint;
}

TEST(diagnose_token_failure, the_sign_in_hint_names_the_command_given) {
    const std::string body = R"({"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired."})";
    EXPECT_NE(diagnose_token_failure(400, body).hint.find("`subrelay oauth login`"), std::string::npos);
    const auto d = diagnose_token_failure(400, body, "subrelay oauth login --profile delegated");
    EXPECT_NE(d.hint.find("`subrelay oauth login --profile delegated`"), std::string::npos) << d.hint;
    EXPECT_EQ(d.hint.find("`subrelay oauth login`"), std::string::npos) << d.hint;
}

}  // namespace
