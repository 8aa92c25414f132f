#pragma once
// `subrelay queue ...`: look at and change the queue while the relay runs
// (list, show, retry, hold, release, delete), like Postfix's postqueue and
// postsuper. Every change takes the message's lock (relay/queue.hpp), so a
// message that is being delivered right now is never changed under the
// delivery worker.
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
