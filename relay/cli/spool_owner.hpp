#pragma once
// Commands that write what the relay reads and rewrites (a message's queue
// state, an imported message, a refresh token) run as the relay's user when
// root starts them, the way Postfix's postsuper keeps its queue its owner's:
// a file root made with mode 0600 would be unreadable to the relay. The
// relay's user is the owner of its spool directory.
#include <filesystem>
#include <string>

namespace subrelay::relay {

// Switches the process for good to the owner of `spool` (its groups, its
// group, its user) when it runs as root and the spool belongs to another
// user. Nothing happens otherwise: not root, no spool yet, or root's own.
// Returns what went wrong, or "".
std::string act_as_spool_owner(const std::filesystem::path& spool);

}  // namespace subrelay::relay
