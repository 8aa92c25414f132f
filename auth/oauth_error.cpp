#include "auth/oauth_error.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <boost/url.hpp>

namespace subrelay::auth {
namespace {

namespace json = boost::json;

// Longest error_description line quoted in a hint.
constexpr std::size_t max_description = 200;
// Longest `error` value quoted in a hint: real ones are short identifiers.
constexpr std::size_t max_error = 64;
// A run of token characters at least this long is taken for a token and not
// quoted. Longer than GUIDs (36) and certificate thumbprints (40), which help
// the admin; shorter than any access or refresh token.
constexpr std::size_t min_token_run = 64;
constexpr std::string_view aadsts_prefix = "AADSTS";

// ---- the answer ------------------------------------------------------------

// What a token endpoint's error answer says, as far as it is OAuth2 at all.
struct answer {
    bool oauth = false;  // a JSON object with a non-empty string `error`
    std::string error;
    std::string description;
    std::optional<long> aadsts;
    std::vector<std::string> secrets;  // token values in the body: never quoted
};

std::optional<long> to_long(std::string_view digits) {
    long value = 0;
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return value;
}

std::optional<long> code_in_description(std::string_view text) {
    for (auto pos = text.find(aadsts_prefix); pos != std::string_view::npos; pos = text.find(aadsts_prefix, pos)) {
        pos += aadsts_prefix.size();
        auto end = pos;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) {
            ++end;
        }
        if (auto code = to_long(text.substr(pos, end - pos))) {
            return code;
        }
    }
    return std::nullopt;
}

std::optional<long> first_code(const json::value& codes) {
    if (!codes.is_array() || codes.get_array().empty()) {
        return std::nullopt;
    }
    const auto& first = codes.get_array().front();
    if (first.is_int64() && first.get_int64() >= 0 && std::in_range<long>(first.get_int64())) {
        return static_cast<long>(first.get_int64());
    }
    if (first.is_uint64() && std::in_range<long>(first.get_uint64())) {
        return static_cast<long>(first.get_uint64());
    }
    return std::nullopt;
}

std::string string_field(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) {
        return std::string(it->value().get_string());
    }
    return {};
}

answer read_answer(std::string_view body) {
    answer a;
    boost::system::error_code ec;
    const json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        return a;
    }
    const auto& o = v.get_object();
    a.error = string_field(o, "error");
    a.oauth = !a.error.empty();
    a.description = string_field(o, "error_description");
    a.aadsts = code_in_description(a.description);
    if (!a.aadsts) {
        if (auto it = o.find("error_codes"); it != o.end()) {
            a.aadsts = first_code(it->value());
        }
    }
    // An error answer has no business carrying tokens, but should a server or
    // proxy mix one in, it must not end up in a log line.
    for (std::string_view key : {"access_token", "refresh_token", "id_token"}) {
        if (auto value = string_field(o, key); !value.empty()) {
            a.secrets.push_back(std::move(value));
        }
    }
    return a;
}

// ---- quoting the server ----------------------------------------------------

bool token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' || c == '~' ||
           c == '+' || c == '=';
}

// Removes the body's token values, and anything shaped like a token (JWTs,
// opaque refresh tokens), from text quoted in a hint.
std::string redact(std::string text, const std::vector<std::string>& secrets) {
    for (const auto& secret : secrets) {
        // Search on after the replacement: a secret may be part of "[redacted]".
        constexpr std::string_view replacement = "[redacted]";
        for (auto pos = text.find(secret); pos != std::string::npos;
             pos = text.find(secret, pos + replacement.size())) {
            text.replace(pos, secret.size(), replacement);
        }
    }
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        auto end = i;
        while (end < text.size() && token_char(text[end])) {
            ++end;
        }
        if (end == i) {
            out += text[i++];
        } else {
            const std::string_view run = std::string_view(text).substr(i, end - i);
            out += run.size() >= min_token_run ? std::string_view("[redacted]") : run;
            i = end;
        }
    }
    return out;
}

// One line, no control characters, at most `limit` bytes without splitting a
// UTF-8 sequence.
std::string quotable(std::string_view text, std::size_t limit) {
    std::string line(text.substr(0, text.find_first_of("\r\n")));
    std::replace_if(
        line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; }, ' ');
    if (line.size() > limit) {
        auto cut = limit;
        while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0U) == 0x80U) {
            --cut;
        }
        line.resize(cut);
        line += "...";
    }
    return line;
}

// "AADSTS900144: The request body must ..." without its code, which the hint
// names already.
std::string_view without_code(std::string_view description) {
    if (description.substr(0, aadsts_prefix.size()) != aadsts_prefix) {
        return description;
    }
    auto pos = aadsts_prefix.size();
    while (pos < description.size() && std::isdigit(static_cast<unsigned char>(description[pos])) != 0) {
        ++pos;
    }
    if (pos < description.size() && description[pos] == ':') {
        ++pos;
    }
    while (pos < description.size() && description[pos] == ' ') {
        ++pos;
    }
    return description.substr(pos);
}

// ---- hints -----------------------------------------------------------------

constexpr std::string_view unavailable_hint = "the identity platform is temporarily unavailable; retrying";
constexpr std::string_view sign_in_hint =
    "the refresh token is no longer valid: sign in again with `subrelay oauth login`";

struct code_rule {
    long code;
    oauth_failure kind;
    std::string_view hint;
};

// Microsoft's AADSTS codes with a known cause. Sign-in codes count only with
// invalid_grant (see diagnose_token_failure); the others whatever `error` says.
constexpr code_rule code_rules[] = {
    // Transient trouble inside Entra ID.
    {50033, oauth_failure::retryable, unavailable_hint},
    {50087, oauth_failure::retryable, unavailable_hint},
    {90006, oauth_failure::retryable, unavailable_hint},
    {90024, oauth_failure::retryable, unavailable_hint},
    {90033, oauth_failure::retryable, unavailable_hint},
    {90055, oauth_failure::retryable, unavailable_hint},
    {90090, oauth_failure::retryable, unavailable_hint},
    {50196, oauth_failure::retryable, unavailable_hint},
    // The grant behind the refresh token is gone.
    {70008, oauth_failure::sign_in_needed, sign_in_hint},
    {700082, oauth_failure::sign_in_needed,
     "the refresh token expired after going unused for too long: sign in again with `subrelay oauth login`"},
    {50173, oauth_failure::sign_in_needed,
     "the refresh token was revoked by a password change or reset: sign in again with `subrelay oauth login`"},
    {70043, oauth_failure::sign_in_needed,
     "the refresh token expired under a Conditional Access sign-in frequency policy: sign in again with "
     "`subrelay oauth login`"},
    // The app's credentials.
    {7000215, oauth_failure::configuration,
     "the client secret is wrong: put the secret's Value (not its Secret ID) from App registrations > "
     "Certificates & secrets into oauth.client_secret_file"},
    {7000222, oauth_failure::configuration,
     "the client secret has expired: create a new one under App registrations > Certificates & secrets and update "
     "oauth.client_secret_file"},
    {700027, oauth_failure::configuration,
     "the certificate is not registered for the app or the assertion signature is wrong: upload the certificate "
     "under App registrations > Certificates & secrets"},
    {7000218, oauth_failure::configuration,
     "the request carried no client secret or assertion: set oauth.client_secret_file (or client_secret_env); for "
     "`subrelay oauth login` enable Allow public client flows under App registrations > Authentication"},
    // The app, the tenant and what the app may ask for.
    {700016, oauth_failure::configuration,
     "the application (client id) is not known in this tenant: check the tenant in oauth.token_url and "
     "oauth.client_id, and that an admin granted consent"},
    {90002, oauth_failure::configuration,
     "the tenant is not found: check the tenant id or domain (contoso.onmicrosoft.com) in oauth.token_url"},
    {500011, oauth_failure::configuration,
     "the scope's resource is not in the tenant: check oauth.scope (https://outlook.office365.com/.default for "
     "client credentials) and that the tenant has Exchange Online (its Office 365 Exchange Online service "
     "principal)"},
    {65001, oauth_failure::configuration,
     "admin consent is missing for SMTP.SendAsApp (or SMTP.Send): grant it under App registrations > API "
     "permissions"},
    {70011, oauth_failure::configuration,
     "the scope is not valid: set oauth.scope to https://outlook.office365.com/.default for client credentials "
     "(https://outlook.office365.com/SMTP.Send offline_access for a signed-in user)"},
    // Tenant policy.
    {53003, oauth_failure::configuration,
     "a Conditional Access policy blocked the token: find the sign-in in the Entra sign-in logs and exclude the app "
     "(or the relay's network location) from that policy"},
    {530035, oauth_failure::configuration,
     "security defaults blocked the sign-in: check the Entra sign-in logs, or replace security defaults with "
     "Conditional Access policies"},
};

const code_rule* find_rule(std::optional<long> code) {
    if (!code) {
        return nullptr;
    }
    const auto* it = std::find_if(std::begin(code_rules), std::end(code_rules),
                                  [&](const code_rule& r) { return r.code == *code; });
    return it != std::end(code_rules) ? it : nullptr;
}

// The hint for a transient failure, or nullopt if it is not one. Besides
// Microsoft's codes: RFC 6749's temporarily_unavailable and server_error,
// and the device flow's polling answers (RFC 8628 3.5).
std::optional<std::string> retry_hint(int status, const answer& a) {
    if (status == 0) {
        return "the token endpoint did not answer (timeout, connection or TLS failure); retrying; if it persists, "
               "check the network path to oauth.token_url and oauth.ca_file";
    }
    if (status == 429) {
        return "the identity platform is throttling token requests (HTTP 429); retrying";
    }
    if (a.error == "authorization_pending" || a.error == "slow_down") {
        return "the sign-in is not finished yet; polling again";
    }
    const auto* rule = find_rule(a.aadsts);
    if ((status >= 500 && status <= 599) || status == 408 || a.error == "temporarily_unavailable" ||
        a.error == "server_error" || (rule != nullptr && rule->kind == oauth_failure::retryable)) {
        return std::string(unavailable_hint);
    }
    return std::nullopt;
}

// The device flow's two ways of ending without a token (RFC 8628 3.5), and a
// refresh token that is no longer good.
std::optional<std::string> sign_in_hint_for(const answer& a) {
    if (a.error == "expired_token") {
        return "the sign-in code expired before the sign-in was finished: run `subrelay oauth login` again and "
               "finish it in time";
    }
    if (a.error == "authorization_declined") {
        return "the sign-in was declined: run `subrelay oauth login` again and accept the request";
    }
    if (a.error != "invalid_grant") {
        return std::nullopt;
    }
    if (!a.aadsts) {
        // Google answers a bad service-account assertion with invalid_grant
        // too ("Invalid JWT Signature.", "Invalid JWT: Token must be a
        // short-lived token..."): that is the key or the clock, not a sign-in.
        if (a.description.starts_with("Invalid JWT")) return std::nullopt;
        return std::string(sign_in_hint);  // Google: "Token has been expired or revoked."
    }
    if (const auto* rule = find_rule(a.aadsts); rule != nullptr && rule->kind == oauth_failure::sign_in_needed) {
        return std::string(rule->hint);
    }
    return std::nullopt;
}

// No OAuth2 error at all: something other than the identity platform
// answered, or the URL points elsewhere.
std::string not_oauth_hint(int status, std::string_view body) {
    return "the token endpoint answered HTTP " + std::to_string(status) +
           (body.empty() ? " with an empty body" : " without an OAuth2 error") +
           ": check oauth.token_url, and whether a proxy or firewall is in the way";
}

// An error we know nothing about: quote what the server said, so that the
// admin can look it up.
std::string unknown_hint(int status, const answer& a) {
    std::string hint = "the identity platform refused the token request (HTTP " + std::to_string(status) + ", " +
                       quotable(a.error, max_error);
    if (a.aadsts) {
        hint += ", AADSTS" + std::to_string(*a.aadsts);
    }
    hint += ")";
    if (const auto line = quotable(redact(quotable(without_code(a.description), std::string::npos), a.secrets),
                                   max_description);
        !line.empty()) {
        hint += ": " + line;
    }
    if (a.aadsts) {
        hint += (hint.back() == '.' ? " See" : ". See");
        hint += " https://login.microsoftonline.com/error?code=" + std::to_string(*a.aadsts);
    }
    return redact(std::move(hint), a.secrets);
}

}  // namespace

std::optional<long> aadsts_code(std::string_view error_description, std::string_view error_codes_json) {
    if (auto code = code_in_description(error_description)) {
        return code;
    }
    boost::system::error_code ec;
    const json::value codes = json::parse(error_codes_json, ec);
    return ec ? std::nullopt : first_code(codes);
}

oauth_diagnosis diagnose_token_failure(int http_status, std::string_view body, std::string_view sign_in_command) {
    const answer a = read_answer(body);
    oauth_diagnosis d;
    d.error = a.error;
    d.aadsts = a.aadsts;
    if (auto hint = retry_hint(http_status, a)) {
        d.kind = oauth_failure::retryable;
        d.hint = std::move(*hint);
    } else if (auto sign_in = sign_in_hint_for(a)) {
        d.kind = oauth_failure::sign_in_needed;
        d.hint = std::move(*sign_in);
    } else if (const auto* rule = find_rule(a.aadsts); rule != nullptr && rule->kind == oauth_failure::configuration) {
        d.kind = oauth_failure::configuration;
        d.hint = rule->hint;
    } else if (a.error == "unauthorized_client" && !a.aadsts) {
        // Only Google answers unauthorized_client without an AADSTS code; for a
        // service account it means domain-wide delegation is missing.
        d.kind = oauth_failure::configuration;
        d.hint = "the service account is not allowed to act for this user: add its client id with scope "
                 "https://mail.google.com/ under Domain-wide delegation in the Admin console";
    } else {
        // Unknown errors are not retried: repeating a refused request only
        // fills the logs until someone fixes the cause.
        d.kind = oauth_failure::configuration;
        d.hint = a.oauth ? unknown_hint(http_status, a) : not_oauth_hint(http_status, body);
    }
    // The hints are written with the plain command; name the profile's.
    const std::string plain = "`subrelay oauth login`";
    const std::string own = "`" + std::string(sign_in_command) + "`";
    for (auto pos = d.hint.find(plain); pos != std::string::npos; pos = d.hint.find(plain, pos + own.size()))
        d.hint.replace(pos, plain.size(), own);
    return d;
}

std::string_view to_string(oauth_failure f) {
    switch (f) {
    case oauth_failure::retryable:
        return "retryable";
    case oauth_failure::configuration:
        return "configuration";
    case oauth_failure::sign_in_needed:
        return "sign-in needed";
    }
    return "unknown";
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
    for (const auto& secret : secrets) {
        if (secret.empty()) continue;
        // Search on after the replacement: a secret may be part of "[redacted]".
        constexpr std::string_view replacement = "[redacted]";
        for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + replacement.size()))
            text.replace(pos, secret.size(), replacement);
    }
    return text;
}

std::string describe_endpoint(const std::string& url, std::string_view otherwise) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) return std::string(otherwise);
    return std::string(parsed->encoded_host_and_port()) + std::string(parsed->encoded_path());
}

}  // namespace subrelay::auth
