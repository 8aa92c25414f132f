#pragma once
// Operator verbs that mirror Exchange Online's cmdlets (Get-/Set-CASMailbox,
// Get-/Set-TransportConfig, New-AuthenticationPolicy, ...), run from the
// `subrelay` command line; the command table (cli.cpp) holds their usage and
// options. Each reads the policy file through policy::load_file and changes
// it through policy::edit_file (lock, re-read, change, validate, atomic write);
// the *-adminuser verbs do the same with the web console's users file
// (console::load_users, console::edit_users).
#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/cli/verb.hpp"

namespace subrelay::relay::admin {

struct context;  // admin_context.hpp

// Runs an admin verb on the configuration --config names. Returns the exit
// status: 0 done, 1 error (not found, refused edit, unreadable files).
int run(invocation& v, int (*verb)(context&));
template <int (*verb)(context&)>
int with_config(invocation& v) {
    return run(v, verb);
}

// The verbs.
int get_transportconfig(context& c);
int set_transportconfig(context& c);
int get_organizationconfig(context& c);
int set_organizationconfig(context& c);
int get_casmailbox(context& c);
int set_casmailbox(context& c);
int new_relayaccount(context& c);
int set_relayaccount(context& c);
int remove_relayaccount(context& c);
int get_relayaccount(context& c);
int new_authenticationpolicy(context& c);
int set_authenticationpolicy(context& c);
int remove_authenticationpolicy(context& c);
int get_authenticationpolicy(context& c);
int new_relaybinding(context& c);
int remove_relaybinding(context& c);
int get_relaybinding(context& c);
int explain(context& c);
int search_adminauditlog(context& c);  // admin_audit.cpp
int new_adminuser(context& c);         // admin_users.cpp: the web console's users ([admin] users_file)
int set_adminuser(context& c);
int remove_adminuser(context& c);
int get_adminuser(context& c);

// ---- Pieces, exposed for tests -------------------------------------------

// -Filter for get-casmailbox: `SmtpClientAuthenticationDisabled -eq $true`
// (-eq or -ne; $true, $false or $null), optionally wrapped in { } or quotes.
struct cas_filter {
    bool equal = true;
    std::optional<bool> value;
    // -ne $true matches False and unset; -ne $null matches True and False.
    [[nodiscard]] bool matches(std::optional<bool> setting) const;
};
bool parse_filter(std::string_view text, cas_filter& out, std::string& why);

// PowerShell's Format-List: "Name : value", the colons aligned.
void format_list(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& properties);

}  // namespace subrelay::relay::admin
