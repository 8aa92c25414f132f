#pragma once
// Safe edits of the policy file, for the CLI: take a lock, re-read, change,
// validate, write a temporary file, fsync, rename, fsync the directory.
// Two edits at once never lose one another; a crash leaves the old or the
// new file, never a broken one; an edit that would make the file invalid
// is refused with the reason.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "policy/policy.hpp"

namespace subrelay::policy {

struct edit_result {
    bool ok = false;
    bool changed = false;                 // false when the edit left the policy as it was (file untouched)
    std::vector<std::string> errors;      // "FILE: key: what is wrong", or a plain reason from the change
};

// The change returns "" on success or a reason to refuse (nothing is written).
using policy_change = std::function<std::string(policy_file&)>;

// Called with the policy before and after a change that is valid and about
// to be written, under the lock: the audit trail records it before anyone
// can read the new file. "" to go on, or why not (nothing is written).
using edit_record = std::function<std::string(const policy_file& before, const policy_file& after)>;

// A missing file is created (from an empty policy) only when create_missing.
edit_result edit_file(const std::filesystem::path& file, const policy_change& change, bool create_missing = false,
                      const edit_record& record = {});

}  // namespace subrelay::policy
