#pragma once
// The delivery state of queued messages, beside the spool: one small state
// file per message (spool/state/ID), written atomically, so that what was
// delivered, how often it was tried and why it failed survive a crash; and
// the lock that says who may change a message and its state.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace subrelay::relay {

struct recipient_failure {
    std::string address;
    std::string reply;        // the upstream's reply, one line ("550 5.1.1 ...")
    friend bool operator==(const recipient_failure&, const recipient_failure&) = default;
};

struct queue_state {
    unsigned attempts = 0;
    std::int64_t first_attempt = 0;          // unix seconds; 0: not tried yet
    std::int64_t next_attempt = 0;           // unix seconds; 0: as soon as possible
    std::string last_reply;                  // one line: the last upstream reply or failure (log, `queue show`)
    std::string last_upstream_reply;         // the upstream's own last reply, the only one a notice
                                             // quotes (a failure of ours may name paths or endpoints)
    std::string hint;                        // one line naming the fix, or empty
    bool held = false;                       // `queue hold`: not delivered until released
    bool delay_warned = false;               // the delay notice went out
    std::vector<std::string> delivered;      // recipients the upstream accepted (never sent again)
    std::vector<recipient_failure> failed;   // recipients refused for good (for the bounce)
    std::vector<std::string> history;        // "DATE attempt N: reply" lines, the last 20
    friend bool operator==(const queue_state&, const queue_state&) = default;
};

std::string format_state(const queue_state& s);

// The recipients of a message's envelope that are neither delivered nor
// failed for good, in envelope order (`queue list` and `show`, the console).
std::vector<std::string> recipients_left(const std::vector<std::string>& recipients, const queue_state& st);
std::optional<queue_state> parse_state(std::string_view text);

class state_store {
public:
    explicit state_store(std::filesystem::path spool_dir);   // uses spool_dir/state/
    void open();                                             // creates the directory; throws std::runtime_error
    // nullopt when the message has no state yet (never tried).
    [[nodiscard]] std::optional<queue_state> load(const std::string& id) const;
    // Atomic: temporary file, fsync, rename, fsync the directory. Throws std::runtime_error.
    void save(const std::string& id, const queue_state& s) const;
    void remove(const std::string& id) const;
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

private:
    std::filesystem::path dir_;
};

// An exclusive flock(2) on a message's spool file (spool/queue/ID), held
// for its lifetime. The delivery holds it while it delivers the message
// and for each read-modify-write of the message or its state that the
// control socket asks for (hold, release, retry, delete); `subrelay queue`
// takes it itself only when no relay runs. Whoever holds it may change
// spool/queue/ID and spool/state/ID; nobody else may. A worker
// that planned a delivery earlier re-reads the state after taking the lock:
// the message may have been held or deleted meanwhile.
//
// The lock belongs to the file, not to its name: while holding it, do not
// replace the spool file by a rename, or the
// next locker locks the new file while the old lock is still held. Record
// progress in the state file instead (queue_state::delivered). Removing
// the file while holding the lock is fine: the next locker notices.
class message_lock {
public:
    // Opens the file read-only and takes LOCK_EX | LOCK_NB. nullopt: someone
    // else holds it (a delivery in progress), or the file does not exist (or
    // was removed by the previous holder): tell them apart with exists().
    // Throws std::system_error for other failures.
    static std::optional<message_lock> try_lock(const std::filesystem::path& file);
    // Same, but waits for the lock. For threads that may block (the CLI never
    // waits; delivery uses try_lock). Throws std::system_error, with
    // std::errc::no_such_file_or_directory when the file is (or becomes) missing.
    static message_lock lock(const std::filesystem::path& file);

    message_lock(message_lock&& other) noexcept;
    message_lock& operator=(message_lock&& other) noexcept;
    message_lock(const message_lock&) = delete;
    message_lock& operator=(const message_lock&) = delete;
    ~message_lock();   // closes the file, which releases the lock

    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    message_lock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
    static std::optional<message_lock> acquire(const std::filesystem::path& file, bool wait);
    int fd_ = -1;
    std::filesystem::path path_;
};

}  // namespace subrelay::relay
