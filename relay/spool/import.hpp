#pragma once
// Taking over another node's spool (`subrelay queue import DIR`). Each node
// delivers its own queue; when a node is gone for good, its spool directory
// is moved to another node and its messages are imported there, each with
// its envelope and its queue state, then removed from DIR.
//
// Nothing may be lost and nothing delivered twice, wherever the process
// stops. A message goes through SPOOL/import/, under a name KEY made of its
// queue id in DIR and a fingerprint of its file there:
//   1. KEY.msg, the copy (its envelope naming the id it gets here), and
//      KEY.state, the state it gets here (when it has one), each fsynced;
//   2. KEY, the receipt: the queue id here, written atomically and the
//      directory fsynced. From here on the message is this spool's;
//   3. KEY.state becomes state/ID, then KEY.msg queue/ID (never replacing
//      a file), each directory fsynced;
//   4. the file in DIR/queue and its state are removed, DIR/queue fsynced;
//   5. the receipt is removed.
// Stopped before 2: files without a receipt, never queued, removed by the
// next import or start; the message is still whole in DIR. Between 2 and 3:
// spool::open() (the relay's start, or an import without a relay) queues
// it. After 3: an import of the same DIR finds the receipt for the same
// source file and only removes it from DIR (4, 5), whether the message is
// still queued here or was delivered meanwhile. A message already queued
// here under its id with the same bytes (a copy of DIR imported before) is
// only removed from DIR too. Its id is kept, unless a different message has
// it here: then it gets a new one.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/spool/durable_file.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"

namespace subrelay::relay {

// What became of one file of the other spool's queue.
struct import_result {
    enum class outcome {
        imported,  // queued here now, as `id`, and removed from DIR
        already,   // an earlier import had queued it here (as `id`; perhaps delivered since): removed from DIR
        skipped,   // left in DIR, for `reason`
    };
    outcome what = outcome::skipped;
    std::string source_id;              // its name in DIR/queue
    std::string id;                     // its queue id here (imported; already, when known)
    std::string reason;                 // skipped: why; imported: a remark or ""
    spool_envelope envelope;            // imported (and already, when known): as queued here
    std::optional<queue_state> state;   // imported: the state it has here (nullopt: never tried)
    bool source_removed = false;        // gone from DIR (imported and already: else `reason` says why not)
};

// One line for the operator: "imported ID", "imported ID as NEW (why)",
// "skipped ID: already imported ...", "skipped ID: why".
std::string describe(const import_result& r);

// Another node's spool, taken for an import. Holds DIR/serve.lock from the
// constructor on: no relay starts on DIR, and no other import takes its
// messages, meanwhile.
class import_source {
public:
    // Refuses (spool_error) a directory without queue/, this node's own
    // spool `own`, and one whose serve.lock another process holds ("spool
    // DIR is in use by process PID"). Queues what DIR's own relay was
    // importing when it stopped (its import/ receipts) into DIR/queue first.
    import_source(std::filesystem::path dir, const std::filesystem::path& own);

    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
    // The names in DIR/queue, sorted: queue ids, and whatever else is there
    // (reported by import_message, never touched).
    [[nodiscard]] std::vector<std::string> messages() const;

private:
    std::filesystem::path dir_;
    fd_guard lock_{-1};
};

// The names in DIR/queue, sorted, read without any lock (for a listing).
// Throws spool_error.
std::vector<std::string> queue_names(const std::filesystem::path& dir);

// Files in DIR/tmp that hold bytes: messages that were being received and
// never acknowledged with 250 (empty files are kept for reuse). They are not
// imported. Throws spool_error when DIR/tmp cannot be read (none: 0).
std::size_t unacknowledged_files(const std::filesystem::path& dir);

// The steps of the comment on top, for tests that stop an import after one
// of them, as a crash would (by throwing from `after_step`).
enum class import_step { staged, receipt_written, queued, source_removed };
using import_step_hook = std::function<void(import_step)>;

// Imports DIR/queue/NAME into `to` (opened by this process: it holds its
// serve.lock) and `states` (to's state store), as the comment on top says.
// A file that cannot be read, a damaged envelope or state file, a message
// locked by someone else: skipped, and left as it is. `now` (unix seconds)
// dates the note in the message's history. Throws spool_error only when
// Never throws for the trouble of one message: a failure before the
// receipt leaves nothing here (skipped), one after it leaves the message
// to be queued by the next spool::open() (skipped, saying so).
import_result import_message(const import_source& from, const std::string& name, const spool& to,
                             const state_store& states, std::int64_t now, const import_step_hook& after_step = {});

// The state an imported message gets here, from the one it had in DIR
// (nullopt: never tried, and none here either). Everything is kept (the
// recipients delivered and failed, attempts, history, held, the delay
// notice) but the time of the next attempt: it is tried at once (the
// backoff was the other node's), or when released if held. The history
// tells where it came from.
std::optional<queue_state> imported_state(std::optional<queue_state> there, std::int64_t now,
                                          std::string_view source_id);

// Queues the messages of `spool_dir`/import whose receipt was written
// (step 3 of the comment on top) and removes the files of imports that
// stopped before their receipt. For whoever holds spool_dir/serve.lock.
// A message that cannot be queued stays in import/, named in `problems`.
// Throws spool_error when import/ cannot be read or locked.
struct staged_imports {
    std::vector<std::string> queued;    // their queue ids
    std::vector<std::string> problems;  // one line each
};
staged_imports finish_staged_imports(const std::filesystem::path& spool_dir);

}  // namespace subrelay::relay
