#pragma once
// When a running relay may take in a changed policy file: only once the
// file has stopped changing, and never a file that looks cut short while it
// would remove most of the accounts. Pure decisions, apart from stamp_of().
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "policy/policy.hpp"

namespace subrelay::policy {

// What identifies one version of a file: an edit by rename changes the
// inode, an edit in place the times or the size.
struct file_stamp {
    bool exists = false;
    ino_t inode = 0;
    mode_t mode = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    off_t size = -1;
    friend bool operator==(const file_stamp&, const file_stamp&) = default;
};

// The stamp of `file` now (exists = false when it cannot be stat'ed).
file_stamp stamp_of(const std::filesystem::path& file);

// Decides, poll after poll, when a changed file may be read: once its stamp
// has been the same at two polls in a row. A file written in place in two
// steps with a poll between them is therefore never read half-way.
class change_watch {
public:
    enum class verdict {
        unchanged,  // the version read last (or none changed since start)
        settling,   // changed since the last poll: wait for one more
        read,       // changed, and the same at two polls: read it now
    };

    explicit change_watch(file_stamp read_last) : read_(read_last) {}

    verdict poll(const file_stamp& now);
    // The file was read at `stamp` (whatever came of it): it is not read
    // again until it changes.
    void read_at(const file_stamp& stamp);

private:
    file_stamp read_;
    std::optional<file_stamp> seen_;  // a changed stamp seen at the last poll
};

// Whether a policy that loaded without errors may replace the one in force.
struct reload_check {
    bool apply = true;
    bool warn = false;           // applied, but logged as a warning (`message`)
    std::size_t before = 0;      // accounts in force
    std::size_t after = 0;       // accounts in the new file
    std::size_t removed = 0;     // accounts in force that the new file no longer has
    std::string message;         // the warning, or why it is not applied ("FILE: ...")
};

// A reload that removes more than half of the accounts in force is applied
// only when the file ends with a complete last table (loaded.ends_complete),
// and then with a warning naming the count before and after; otherwise it is
// taken for a file still being written and refused.
reload_check check_reload(const policy_file& in_force, const load_result& loaded, const std::filesystem::path& file);

}  // namespace subrelay::policy
