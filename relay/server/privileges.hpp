#pragma once
// Without systemd's User=, `[server] user` makes the daemon bind its ports
// as root and then run as that user, as Postfix's and OpenSMTPD's daemons
// do: from then on a flaw in a session can touch only what the user may.
#include <filesystem>
#include <string>
#include <sys/types.h>

namespace subrelay::relay {

struct run_as {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};

// The account named by server.user. Throws std::runtime_error saying what
// is wrong ("server.user: no user \"x\" on this system").
run_as find_user(const std::string& name);

// Why `spool` cannot be the spool of `user` (a directory owned by another
// user, which would fail its first write after the switch), or empty.
std::string spool_ownership_problem(const std::filesystem::path& spool, const run_as& user);

// Switches the process to `user` for good: its groups, its group, its user.
// Nothing to do when it runs as that user already. Throws
// std::runtime_error when it is neither root nor that user, or when a call
// fails (the process must not go on half-switched).
void switch_to(const run_as& user);

}  // namespace subrelay::relay
