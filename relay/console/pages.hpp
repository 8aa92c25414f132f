#pragma once
// The console's HTML: the frame every page shares (the admin center's left
// navigation, a header with the signed-in user) and each page's main part
// and flyout, as text built from values. Forms post back to the console
// (console.cpp); a reader's forms are shown with their buttons disabled.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "conf/config.hpp"
#include "policy/audit.hpp"
#include "policy/policy.hpp"
#include "relay/console/http.hpp"
#include "relay/console/sessions.hpp"

namespace subrelay::console {

struct account_activity;

struct page_frame {
    std::string title;
    std::string nav;              // "users", "org", "mailflow", "audit": the highlighted entry
    const session* who = nullptr;
    std::string notice;           // a confirmation banner
    std::string error;            // an error banner (each line one error)
};

// A whole page: the frame around `main`, with `flyout` open beside it.
std::string render_page(const page_frame& f, std::string_view main, std::string_view flyout = {});

std::string sign_in_page(std::string_view csrf, std::string_view user, std::string_view error);

// The account's path: /users/ID.
std::string user_path(std::string_view identity);

// Active users: the accounts whose identity holds `search` (any case).
std::string users_main(const session& s, const policy::engine& engine, const conf::config& cfg,
                       const std::function<account_activity(std::string_view)>& activity, std::string_view search);

// The account's flyout: tab "account" or "mail".
std::string account_flyout(const session& s, const policy::engine& engine, const conf::config& cfg,
                           const policy::mailbox& m, std::string_view tab);
std::string email_apps_flyout(const session& s, const policy::engine& engine, const policy::mailbox& m);
std::string settings_flyout(const session& s, const policy::engine& engine, const policy::mailbox& m);
// Reset password; `new_password` non-empty: the generated one, shown once.
std::string password_flyout(const session& s, const policy::mailbox& m, std::string_view new_password);
std::string delete_flyout(const session& s, const policy::mailbox& m);

// Add a user: the form, filled with `previous` after an error; or, when
// `added` is set, the new account with its password shown once.
std::string add_user_main(const session& s, const form& previous);
std::string user_added_main(std::string_view identity, std::string_view password);

std::string org_main(const session& s, const policy::engine& engine);

// Mail flow: the queue and lanes (the delivery's "status") and the token
// sources ("oauth-status").
std::string mail_flow_main(const session& s, const boost::json::object& status, const boost::json::object& tokens);

// One queued message, as `subrelay queue show` tells it: its envelope,
// what became of each recipient, its attempts and its header section.
struct queued_message_view {
    std::string id, sender, identity, upstream_mailbox, client;
    std::int64_t received_at = 0;
    std::uint64_t size = 0;
    std::vector<std::string> left, delivered;
    std::vector<std::pair<std::string, std::string>> failed;  // address, reply
    unsigned attempts = 0;
    std::int64_t next_attempt = 0;
    bool held = false;
    std::string last_reply, hint;
    std::vector<std::string> history;
    std::string header;  // the header section as stored
};
std::string message_flyout(const session& s, const queued_message_view& m);

// Audit log: newest first, those whose object holds `identity` (any case)
// and that are not older than `since` (0: any).
std::string audit_main(const std::vector<policy::audit_entry>& entries, std::string_view identity,
                       std::string_view since_text, std::int64_t since);

// A page for an error (404, 403, ...), in the frame when signed in.
std::string message_main(std::string_view heading, std::string_view text);

// The stylesheet and the flyout's few lines of script.
std::string_view stylesheet();
std::string_view script();

}  // namespace subrelay::console
