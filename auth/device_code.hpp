#pragma once
// The OAuth 2.0 device authorization grant (RFC 8628), as Microsoft's
// identity platform and Google implement it: how `subrelay oauth login`
// signs a user in on a server without a browser and gets the refresh token
// that grant = "refresh_token" then uses. The relay asks the device
// authorization endpoint for a code, a person enters it at the verification
// page on any other device, and meanwhile the relay polls the token endpoint
// until the sign-in is finished, declined or expired.
//
// Nothing here prints or stores anything: the command shows the code (and
// the message) and keeps the refresh token (refresh_token_store). Messages
// never carry the device code, a token or the client secret: the device code
// is what redeems the sign-in, so whoever reads it in a log could take it.
#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "conf/config.hpp"

namespace subrelay::auth {

// The device authorization endpoint's answer (RFC 8628 3.2).
struct device_authorization {
    std::string device_code;       // secret: redeems the sign-in; never shown, never logged
    std::string user_code;         // what the person enters ("ABCD-EFGH")
    std::string verification_uri;  // where they enter it (Google calls it verification_url)
    std::string message;           // Microsoft's ready-made instruction; empty from Google
    // The least time between two polls (RFC 8628: 5 s when not given).
    std::chrono::seconds interval{5};
    // How long the codes are good for (Microsoft 15 min, Google 30 min).
    std::chrono::seconds expires_in{900};
};

// Asks profile.device_code_url for a device and a user code, sending exactly
// client_id and profile.scope (form fields). The scope must ask for a refresh
// token: Microsoft's "https://outlook.office.com/SMTP.Send offline_access";
// Google's is "https://mail.google.com/" (a Google answer's verification_url
// is taken as verification_uri). No client secret goes here: RFC 8628 does
// not need one, and Google wants it only when polling.
// Throws token_error (token_provider.hpp) with diagnose_token_failure's kind
// and hint when the endpoint refuses or does not answer; std::runtime_error
// when a setting is missing or the answer is malformed (a proxy's page, a
// field missing). `profile` must outlive the returned awaitable.
boost::asio::awaitable<device_authorization> start_device_authorization(const conf::oauth_config& profile);

// How poll_for_refresh_token waits and reads the time. Polling lasts up to
// expires_in (minutes): tests replace both so that they neither wait nor
// depend on the real clock, and can see each wait.
struct device_poll_options {
    // Waits the given time. Default: an asio steady_timer on the current executor.
    std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> sleep;
    // Default: std::chrono::steady_clock::now.
    std::function<std::chrono::steady_clock::time_point()> now;
};

// Polls profile.token_url with grant_type
// urn:ietf:params:oauth:grant-type:device_code, client_id, device_code and,
// when non-empty, client_secret (Google's clients need theirs here;
// Microsoft's public clients have none), until the person has signed in;
// returns the refresh token.
// Waits a.interval before each poll (RFC 8628 3.5). The answers:
//   authorization_pending: poll again;
//   slow_down: poll again, the interval 5 s longer for this and all later polls;
//   expired_token, authorization_declined (Google: access_denied): token_error
//     of kind sign_in_needed with diagnose_token_failure's hint;
//   no answer at all (timeout, refused connection): the interval doubles
//     (RFC 8628 3.5 asks clients to back off) and polling goes on, giving up
//     with a retryable token_error after a few failures in a row;
//   any other error: token_error with the diagnosis (kind and hint);
//   200: its refresh_token; std::runtime_error when it has none (Microsoft
//     issues one only when the scope includes offline_access).
// Polling also stops, with a sign_in_needed token_error, once the next poll
// would come after expires_in counted from the call: the codes are dead then.
// std::runtime_error also when a setting is missing (token_url, client_id,
// Google's client secret). `profile` and `a` must outlive the returned awaitable.
boost::asio::awaitable<std::string> poll_for_refresh_token(const conf::oauth_config& profile,
                                                           const device_authorization& a,
                                                           std::string client_secret /* may be empty */,
                                                           device_poll_options opts = {});

}  // namespace subrelay::auth
