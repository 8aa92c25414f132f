#include "relay/cli/cli.hpp"

#include <algorithm>
#include <ostream>

#include "relay/cli/admin.hpp"
#include "relay/cli/verb.hpp"
#include "relay/server/server.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::relay {

namespace {

// One row of the command table: everything the command line knows of a verb.
struct verb_def {
    std::string name;
    std::string summary;  // its line in `subrelay --help`
    std::string usage;    // `subrelay VERB --help`
    std::vector<option_spec> options;
    std::size_t positionals = 0;              // how many words that are not options it takes
    const char* positional_option = nullptr;  // or: the option one such word fills (`explain IDENTITY`)
    run_fn run = nullptr;
    bool admin = false;  // listed under "administration"
};

constexpr const char* admin_help = R"(
Options are accepted in PowerShell spelling (-Identity x, -Name:value, any
case) and GNU spelling (--identity x, --name=value). Booleans: $true, $false,
$null or true, false, null. In a POSIX shell quote them ('$false') or write
false: an unquoted $false expands to nothing.
--config FILE   the configuration (default /etc/subrelay/subrelay.toml); the
                policy file it names is read and edited.
Exit status: 0 done, 1 error, 2 the command line does not parse.
)";

// An admin verb: the common help after its usage, and --config.
verb_def admin_verb(verb_def v) {
    v.usage += admin_help;
    v.options.push_back(config_option);
    v.admin = true;
    return v;
}

int run_serve(invocation& v) { return serve(v.config_file()); }

const option_spec identity_option{"Identity", value_kind::text};
const option_spec json_option{"Json", value_kind::flag};

std::vector<option_spec> account_options() {
    return {identity_option,
            {"PasswordStdin", value_kind::flag},
            {"GeneratePassword", value_kind::flag},
            {"SmtpClientAuthenticationDisabled", value_kind::tristate},
            {"AllowedSenders", value_kind::list},
            {"AllowedRecipientDomains", value_kind::list},
            {"UpstreamMailbox", value_kind::nullable_text},
            {"AuthenticationPolicy", value_kind::nullable_text},
            {"MaxMessagesPerMinute", value_kind::nullable_count},
            {"MaxRecipientsPerDay", value_kind::nullable_count},
            {"MaxRecipientsPerMessage", value_kind::nullable_count},
            {"NullSender", value_kind::text},
            {"CheckHeaderFrom", value_kind::tristate}};
}

// The web console's users: new-adminuser and set-adminuser.
std::vector<option_spec> admin_user_options() {
    return {identity_option,
            {"Role", value_kind::text},
            {"PasswordStdin", value_kind::flag},
            {"GeneratePassword", value_kind::flag}};
}

// Every verb, in the order `subrelay --help` lists them.
const std::vector<verb_def>& verb_table() {
    using namespace admin;
    static const std::vector<verb_def> table = {
        {.name = "serve",
         .summary = "run the relay in the foreground",
         .usage = "usage: subrelay serve [--config FILE]\n\n"
                  "Runs the relay in the foreground, logging to standard error.\n"
                  "SIGTERM or SIGINT stop it cleanly (open sessions get 421 4.3.2, accepted\n"
                  "messages stay in the spool); SIGHUP reloads the policy file and the TLS\n"
                  "certificates and keys.\n",
         .options = {config_option},
         .run = run_serve},
        {.name = "check-config",
         .summary = "validate the configuration and the policy file",
         .usage = "usage: subrelay check-config [--config FILE]\n\n"
                  "Validates the configuration, the policy file and the web console's users\n"
                  "file it names, the TLS certificates and device profiles, the upstream's CA\n"
                  "file and client certificate, and each OAuth profile's secret, certificate\n"
                  "and key. Prints `ok` and exits 0, or\n"
                  "prints one line per problem (`FILE: key: what is wrong`) and exits 1.\n",
         .options = {config_option},
         .run = run_check_config},
        {.name = "hash-password",
         .summary = "read a password on standard input, print its crypt(3) hash",
         .usage = "usage: subrelay hash-password [--scheme yescrypt|bcrypt|sha512-crypt]\n\n"
                  "Reads one password from standard input and prints its crypt(3) hash, for\n"
                  "the password_hash key of an account in the policy file. yescrypt by default.\n",
         .options = {{"Scheme", value_kind::text}},
         .run = run_hash_password},
        {.name = "queue",
         .summary = "list, show, retry, hold, release or delete queued messages; import another node's spool",
         .usage = R"(usage: subrelay queue list [--json]
       subrelay queue show ID
       subrelay queue retry ID...|--all
       subrelay queue hold ID...|--all
       subrelay queue release ID...|--all
       subrelay queue delete ID...|--all [--yes]
       subrelay queue import DIR
       (each with [--config FILE])

Looks at and changes the relay's queue. While the relay runs, changes are
made by it (over its control socket, SPOOL/control.sock); otherwise on the
files, under each message's lock.
  list     one line per message: id, age, size, attempts, next attempt, sender
           and the recipients still to deliver; then the last upstream reply
           and a hint naming the fix. --json: a JSON array of objects.
  show     the envelope, the message headers, delivered and failed recipients
           and the delivery history of one message.
  retry    try the messages now (a held message stays held); an unavailable
           upstream mailbox is tried again at once.
  hold     keep messages queued without delivering them, until `release`.
  release  deliver held messages again.
  delete   remove messages and their state. Asks for confirmation at a
           terminal; elsewhere --yes is required.
  import   take over the queue of another node's spool DIR (moved here from
           a node that is gone): each message of DIR/queue is written into
           this spool with its envelope and its delivery state (a held one
           stays held; the others are tried at once), then removed from DIR.
           Refused while a relay serves DIR. Files in DIR/tmp were never
           acknowledged and are not imported; damaged files stay in DIR.
           Prints `imported ID` or `skipped ID: why` per message, then a
           summary. Run it again after an interruption: nothing is imported
           twice. Exits 0 when every message of DIR/queue is now queued here
           (imported now or by an earlier run), 1 otherwise.
A message that is being delivered right now is held or deleted as soon as
its attempt ends.
)",
         .options = {{"All", value_kind::flag}, json_option, {"Yes", value_kind::flag, "y"}, config_option},
         .positionals = any_number,  // the action, then message ids
         .run = run_queue},
        {.name = "oauth",
         .summary = "sign in a delegated profile (login), or show each profile's tokens (status)",
         .usage = R"(usage: subrelay oauth login [--profile NAME]
       subrelay oauth status [--json]
       (each with [--config FILE])

Signs in delegated OAuth profiles and shows every profile's tokens.
  login    signs a person in for a profile with grant = "refresh_token" on a
           server without a browser (the device code flow: open the page shown
           on any device and enter the code), then stores the refresh token in
           the profile's refresh_token_file. NAME defaults to "default". A
           running relay uses the new token at its next request: no restart.
  status   per profile (and per mailbox for a Google service account): the
           provider, the grant, the current token's age and expiry, the
           requests made, the last error and what to do about it, as the
           running relay last wrote them; for a refresh-token profile whether
           someone has signed in. --json: one JSON object.
)",
         .options = {{"Profile", value_kind::text}, json_option, config_option},
         .positionals = 1,  // the action
         .run = run_oauth},
        {.name = "test-upstream",
         .summary = "get a token, connect, EHLO and AUTH upstream, stop before MAIL",
         .usage = R"(usage: subrelay test-upstream [--profile NAME] [--mailbox ADDRESS] [--config FILE]

Checks one upstream mailbox's whole path without sending mail: reads the
configuration, gets an access token from the profile's token endpoint,
connects to the upstream, shows the TLS version, cipher and certificate and
the EHLO extensions, authenticates with AUTH XOAUTH2 as the mailbox, and
says QUIT before MAIL. Each step is printed with [ ok ] or [FAIL]; a failed
step is followed by a hint naming the fix and ends the test. Tokens and
secrets are never printed.
  --mailbox  the upstream mailbox to test (default: the profile's first
             mailbox, else upstream.mailbox)
  --profile  the OAuth profile to get its token with (default: the profile
             that serves the mailbox)
Exits 0 when every step passed, 1 when one failed.
)",
         .options = {{"Profile", value_kind::text}, {"Mailbox", value_kind::text}, config_option},
         .run = run_test_upstream},

        admin_verb({.name = "get-transportconfig",
                    .summary = "show the organization-wide SmtpClientAuthenticationDisabled",
                    .usage = "usage: subrelay get-transportconfig [--json]\n\n"
                             "Shows the organization-wide SmtpClientAuthenticationDisabled, like "
                             "Get-TransportConfig.\n",
                    .options = {json_option},
                    .run = with_config<get_transportconfig>}),
        admin_verb({.name = "set-transportconfig",
                    .summary = "turn SMTP AUTH off or on for the organization",
                    .usage = "usage: subrelay set-transportconfig -SmtpClientAuthenticationDisabled $true|$false\n\n"
                             "Sets the organization-wide default, like Set-TransportConfig. Accounts whose\n"
                             "own SmtpClientAuthenticationDisabled is set ($true or $false) are not affected.\n",
                    .options = {{"SmtpClientAuthenticationDisabled", value_kind::boolean}},
                    .run = with_config<set_transportconfig>}),
        admin_verb({.name = "get-organizationconfig",
                    .summary = "show the organization's defaults and limits",
                    .usage = "usage: subrelay get-organizationconfig [--json]\n\n"
                             "Shows DefaultAuthenticationPolicy, SecurityDefaults, the default limits and\n"
                             "CheckHeaderFrom.\n",
                    .options = {json_option},
                    .run = with_config<get_organizationconfig>}),
        admin_verb({.name = "set-organizationconfig",
                    .summary = "change the organization's defaults and limits",
                    .usage = "usage: subrelay set-organizationconfig [-DefaultAuthenticationPolicy NAME|$null]\n"
                             "           [-SecurityDefaults $true|$false] [-MaxMessagesPerMinute N]\n"
                             "           [-MaxRecipientsPerDay N] [-MaxRecipientsPerMessage N]\n"
                             "           [-CheckHeaderFrom $true|$false]\n\n"
                             "CheckHeaderFrom $true (the default): every address in a message's From: and\n"
                             "Sender: must be one of the account's allowed senders, else 550 5.7.60 at the\n"
                             "end of DATA; accounts whose own CheckHeaderFrom is set are not affected.\n"
                             "SecurityDefaults $true turns SMTP AUTH off for every account. A limit of 0\n"
                             "(or unlimited) means no limit.\n",
                    .options = {{"DefaultAuthenticationPolicy", value_kind::nullable_text},
                                {"SecurityDefaults", value_kind::boolean},
                                {"MaxMessagesPerMinute", value_kind::count},
                                {"MaxRecipientsPerDay", value_kind::count},
                                {"MaxRecipientsPerMessage", value_kind::count},
                                {"CheckHeaderFrom", value_kind::boolean}},
                    .run = with_config<set_organizationconfig>}),
        admin_verb({.name = "get-casmailbox",
                    .summary = "show SmtpClientAuthenticationDisabled per account",
                    .usage = "usage: subrelay get-casmailbox [-Identity X] [-ResultSize unlimited|N]\n"
                             "           [-Filter 'SmtpClientAuthenticationDisabled -eq $true'] [--json]\n\n"
                             "Lists accounts and their SmtpClientAuthenticationDisabled (blank: unset, the\n"
                             "organization decides), like Get-CASMailbox. -Filter supports -eq and -ne with\n"
                             "$true, $false or $null; -ne $true also lists unset accounts. Without\n"
                             "-ResultSize at most 1000 accounts are listed.\n",
                    .options = {identity_option,
                                {"ResultSize", value_kind::text},
                                {"Filter", value_kind::text},
                                json_option},
                    .positional_option = "identity",
                    .run = with_config<get_casmailbox>}),
        admin_verb({.name = "set-casmailbox",
                    .summary = "turn SMTP AUTH off or on for accounts",
                    .usage = "usage: subrelay set-casmailbox -Identity X -SmtpClientAuthenticationDisabled "
                             "$true|$false|$null\n"
                             "       subrelay set-casmailbox --from-file FILE -SmtpClientAuthenticationDisabled ...\n\n"
                             "$true: SMTP AUTH off for the account; $false: on, whatever the organization\n"
                             "says; $null: the organization decides. --from-file reads one identity a line\n"
                             "(- for standard input; blank lines and # comments ignored) and changes all\n"
                             "of them in one edit; identities not found are reported and make the exit\n"
                             "status 1, the others are still changed.\n",
                    .options = {identity_option,
                                {"SmtpClientAuthenticationDisabled", value_kind::tristate},
                                {"FromFile", value_kind::text}},
                    .positional_option = "identity",
                    .run = with_config<set_casmailbox>}),
        admin_verb({.name = "new-relayaccount",
                    .summary = "create an account",
                    .usage = "usage: subrelay new-relayaccount -Identity X (--password-stdin | --generate-password)\n"
                             "           [-SmtpClientAuthenticationDisabled $true|$false|$null]\n"
                             "           [--allowed-senders a@x,*@y] [--allowed-recipient-domains d1,d2]\n"
                             "           [--upstream-mailbox M] [--authentication-policy NAME]\n\n"
                             "--password-stdin reads the password as one line; --generate-password makes\n"
                             "a random one and prints it once. Only its crypt(3) hash is stored.\n",
                    .options = account_options(),
                    .positional_option = "identity",
                    .run = with_config<new_relayaccount>}),
        admin_verb({.name = "set-relayaccount",
                    .summary = "change an account",
                    .usage = "usage: subrelay set-relayaccount -Identity X [--password-stdin | --generate-password]\n"
                             "           [-SmtpClientAuthenticationDisabled $true|$false|$null]\n"
                             "           [--allowed-senders LIST|$null] [--allowed-recipient-domains LIST|$null]\n"
                             "           [--upstream-mailbox M|$null] [--authentication-policy NAME|$null]\n"
                             "           [--max-messages-per-minute N|$null] [--max-recipients-per-day N|$null]\n"
                             "           [--max-recipients-per-message N|$null] [--null-sender rewrite|refuse]\n"
                             "           [-CheckHeaderFrom $true|$false|$null]\n\n"
                             "$null clears a setting (the default applies: the organization's limits, the\n"
                             "default upstream mailbox, the identity as the only sender). 0 = no limit.\n"
                             "--null-sender: MAIL FROM:<> is relayed with the account's identity as the\n"
                             "envelope sender (rewrite, the default) or refused (refuse).\n"
                             "-CheckHeaderFrom: the message's From: and Sender: addresses must be allowed\n"
                             "senders too ($true), are not checked ($false), or the organization decides\n"
                             "($null).\n",
                    .options = account_options(),
                    .positional_option = "identity",
                    .run = with_config<set_relayaccount>}),
        admin_verb({.name = "remove-relayaccount",
                    .summary = "delete an account",
                    .usage = "usage: subrelay remove-relayaccount -Identity X\n\n"
                             "Refuses while a relay binding uses the account.\n",
                    .options = {identity_option},
                    .positional_option = "identity",
                    .run = with_config<remove_relayaccount>}),
        admin_verb({.name = "get-relayaccount",
                    .summary = "show accounts and their settings",
                    .usage = "usage: subrelay get-relayaccount [-Identity X] [--json]\n\n"
                             "Shows every setting of the accounts except the password hash.\n",
                    .options = {identity_option, json_option},
                    .positional_option = "identity",
                    .run = with_config<get_relayaccount>}),
        admin_verb({.name = "new-authenticationpolicy",
                    .summary = "create an authentication policy",
                    .usage = "usage: subrelay new-authenticationpolicy -Name N [-AllowBasicAuthSmtp $true|$false]\n\n"
                             "Like New-AuthenticationPolicy: AllowBasicAuthSmtp is $false unless given.\n",
                    .options = {{"Name", value_kind::text}, {"AllowBasicAuthSmtp", value_kind::boolean}},
                    .positional_option = "name",
                    .run = with_config<new_authenticationpolicy>}),
        admin_verb({.name = "set-authenticationpolicy",
                    .summary = "change an authentication policy",
                    .usage = "usage: subrelay set-authenticationpolicy -Identity N -AllowBasicAuthSmtp $true|$false\n",
                    .options = {identity_option, {"AllowBasicAuthSmtp", value_kind::boolean}},
                    .positional_option = "identity",
                    .run = with_config<set_authenticationpolicy>}),
        admin_verb({.name = "remove-authenticationpolicy",
                    .summary = "delete an authentication policy",
                    .usage = "usage: subrelay remove-authenticationpolicy -Identity N\n\n"
                             "Refuses while accounts or the organization default use the policy.\n",
                    .options = {identity_option},
                    .positional_option = "identity",
                    .run = with_config<remove_authenticationpolicy>}),
        admin_verb({.name = "get-authenticationpolicy",
                    .summary = "show authentication policies",
                    .usage = "usage: subrelay get-authenticationpolicy [-Identity N] [--json]\n",
                    .options = {identity_option, json_option},
                    .positional_option = "identity",
                    .run = with_config<get_authenticationpolicy>}),
        admin_verb({.name = "new-relaybinding",
                    .summary = "let a network submit as an account without AUTH",
                    .usage = "usage: subrelay new-relaybinding -Network CIDR -Identity X [--listeners a,b]\n\n"
                             "Clients from CIDR (10.1.20.0/24, 2001:db8::/48 or one address) submit as X\n"
                             "without authenticating. --listeners: submission, submissions or HOST:PORT\n"
                             "(default: all listeners).\n",
                    .options = {{"Network", value_kind::text}, identity_option, {"Listeners", value_kind::list}},
                    .run = with_config<new_relaybinding>}),
        admin_verb({.name = "remove-relaybinding",
                    .summary = "delete a relay binding",
                    .usage = "usage: subrelay remove-relaybinding -Network CIDR\n",
                    .options = {{"Network", value_kind::text}},
                    .run = with_config<remove_relaybinding>}),
        admin_verb({.name = "get-relaybinding",
                    .summary = "show relay bindings",
                    .usage = "usage: subrelay get-relaybinding [--json]\n",
                    .options = {json_option},
                    .run = with_config<get_relaybinding>}),
        admin_verb({.name = "new-adminuser",
                    .summary = "add a user of the web console",
                    .usage = "usage: subrelay new-adminuser -Identity NAME [-Role admin|reader]\n"
                             "           (--password-stdin | --generate-password)\n\n"
                             "Adds a user who may sign in to the web console, to the file [admin]\n"
                             "users_file names (made with mode 0600 when missing). -Role admin (the\n"
                             "default) sees and changes everything; reader sees everything and changes\n"
                             "nothing. --password-stdin reads the password as one line; --generate-password\n"
                             "makes a random one and prints it once. Only its crypt(3) hash is stored.\n"
                             "NAME: 1 to 64 letters, digits, '.', '_', '-' or '@', unique in any case.\n",
                    .options = admin_user_options(),
                    .positional_option = "identity",
                    .run = with_config<new_adminuser>}),
        admin_verb({.name = "set-adminuser",
                    .summary = "change a web console user's role or password",
                    .usage = "usage: subrelay set-adminuser -Identity NAME [-Role admin|reader]\n"
                             "           [--password-stdin | --generate-password]\n\n"
                             "Changes a console user's role, or its password as for new-adminuser.\n",
                    .options = admin_user_options(),
                    .positional_option = "identity",
                    .run = with_config<set_adminuser>}),
        admin_verb({.name = "remove-adminuser",
                    .summary = "delete a user of the web console",
                    .usage = "usage: subrelay remove-adminuser -Identity NAME\n",
                    .options = {identity_option},
                    .positional_option = "identity",
                    .run = with_config<remove_adminuser>}),
        admin_verb({.name = "get-adminuser",
                    .summary = "show the web console's users",
                    .usage = "usage: subrelay get-adminuser [-Identity NAME] [--json]\n\n"
                             "Shows the console users: Name, Role and HasPassword (never the hash).\n",
                    .options = {identity_option, json_option},
                    .positional_option = "identity",
                    .run = with_config<get_adminuser>}),
        admin_verb({.name = "search-adminauditlog",
                    .summary = "show who changed the policy or the console's users, what and when",
                    .usage = "usage: subrelay search-adminauditlog [-Identity X] [--since DATE] [--json]\n\n"
                             "Shows the changes the admin verbs made to the policy and the console's users,\n"
                             "oldest first, from audit.log in the spool directory, like\n"
                             "Search-AdminAuditLog: when, who (the Unix user), the cmdlet that makes the\n"
                             "same change, the object and the properties that changed. -Identity: the\n"
                             "changes of one object (an account, a policy's name, a network,\n"
                             "Organization, a console user). --since: from a UTC date or time\n"
                             "(2026-12-05 or 2026-12-05T10:30:00Z). --json: every entry with the object's\n"
                             "properties before and after. No password or hash is ever recorded.\n",
                    .options = {identity_option, {"Since", value_kind::text}, json_option},
                    .positional_option = "identity",
                    .run = with_config<search_adminauditlog>}),
        admin_verb({.name = "explain",
                    .summary = "explain what the policy decides for an account",
                    .usage = "usage: subrelay explain IDENTITY [--from ADDR] [--client IP]\n"
                             "           [--listener submission|submissions|HOST:PORT]\n\n"
                             "Prints each step of the SMTP AUTH decision, whether the account may send as\n"
                             "ADDR, which relay binding a client address matches, and the limits in force.\n"
                             "Exits 0 even when the account is refused (it is a report).\n",
                    .options = {identity_option,
                                {"From", value_kind::text},
                                {"Client", value_kind::text},
                                {"Listener", value_kind::text}},
                    .positional_option = "identity",
                    .run = with_config<explain>}),
    };
    return table;
}

// Verbs are case-insensitive: admin verbs are PowerShell cmdlet names
// (Set-CASMailbox, set-casmailbox).
const verb_def* find_verb(std::string_view name) {
    const auto& table = verb_table();
    auto it = std::find_if(table.begin(), table.end(), [&](const verb_def& v) { return text::iequals(v.name, name); });
    return it == table.end() ? nullptr : &*it;
}

// The verbs of one section of the main usage, one indented line each.
std::string verb_lines(bool admin, std::size_t width) {
    std::string out;
    for (const auto& v : verb_table()) {
        if (v.admin != admin) continue;
        out += "  " + v.name + std::string(v.name.size() < width ? width - v.name.size() : 1, ' ') + v.summary + '\n';
    }
    return out;
}

std::string main_usage() {
    return "usage: subrelay VERB [options]\n"
           "\n"
           "SMTP submission relay: devices authenticate with a local password, messages\n"
           "are relayed to Exchange Online (or Gmail) with OAuth2 (SASL XOAUTH2).\n"
           "\n"
           "verbs:\n" +
           verb_lines(false, 15) +
           "\n"
           "administration (like Exchange Online's cmdlets; verbs are case-insensitive):\n" +
           verb_lines(true, 30) +
           "\n"
           "options:\n"
           "  --help         this text; `subrelay VERB --help` describes a verb\n"
           "  --version      print the version\n"
           "\n"
           "The configuration is read from --config FILE (default " +
           default_config_file + ").\n";
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        (args.empty() ? err : out) << main_usage();
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version" || args[0] == "version") {
        out << "subrelay " << SUBRELAY_VERSION << '\n';
        return 0;
    }
    const verb_def* v = find_verb(args[0]);
    if (v == nullptr) {
        err << "subrelay: unknown verb '" << args[0] << "' (see subrelay --help)\n";
        return 2;
    }
    invocation call{v->name, v->usage, {}, in, out, err, &v->options};
    const std::size_t positionals = v->positional_option != nullptr ? 1 : v->positionals;
    if (auto why = parse_options(args, v->options, positionals, call.opts); !why.empty()) {
        return call.usage_error(why);
    }
    if (call.opts.help) {
        out << v->usage;
        return 0;
    }
    if (v->positional_option != nullptr && !call.opts.positionals.empty()) {
        const std::string name = v->positional_option;
        if (call.opts.has(name)) {
            return call.usage_error("'" + call.opts.positionals[0] + "' and " + call.opts.spelling(name) +
                                    " both name the object");
        }
        call.opts.values[name] = call.opts.positionals[0];
    }
    return v->run(call);
}

}  // namespace subrelay::relay
