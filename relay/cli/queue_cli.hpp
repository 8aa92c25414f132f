#pragma once
// `subrelay queue ...`: look at and change the queue (list, show, retry,
// hold, release, delete), like Postfix's postqueue and postsuper. While the
// relay runs, changes are asked of it over its control socket
// (relay/server/control.hpp): it alone writes queue state. Without a relay,
// each change takes the message's lock (relay/spool/queue_state.hpp).
#include <iosfwd>
#include <string>
#include <vector>

namespace subrelay::relay {

// args[0] is "queue", args[1] the action. Returns the exit status: 0 done,
// 1 failed (unknown id, busy message, unreadable spool, refused delete),
// 2 usage error.
int run_queue_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

// The `subrelay queue --help` text.
const char* queue_usage();

}  // namespace subrelay::relay
