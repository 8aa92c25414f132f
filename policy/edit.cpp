#include "policy/edit.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "relay/spool/durable_file.hpp"

namespace subrelay::policy {

namespace {

std::string system_error(const std::filesystem::path& file, std::string_view what, int err) {
    return file.string() + ": " + std::string(what) + ": " + std::strerror(err);
}

// Writes `text` to a temporary file next to `file`, syncs it, renames it
// over `file` and syncs the directory. The new file gets `mode` whatever the
// umask and, when `owner` is given, that file's owner and group: a policy
// installed root:subrelay 0640 for a relay running as subrelay stays
// readable by it after root edits it. "" on success, else the error.
std::string replace_file(const std::filesystem::path& file, const std::string& text, mode_t mode,
                         const struct stat* owner) {
    const auto dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    const auto tmp = dir / (file.filename().string() + ".tmp." + std::to_string(::getpid()));
    const auto write = [&](int fd) {
        relay::write_all(fd, text, tmp);
        if (owner == nullptr) return;
        struct stat now {};
        if (::fstat(fd, &now) != 0) throw std::system_error(errno, std::generic_category(), tmp.string());
        if (now.st_uid == owner->st_uid && now.st_gid == owner->st_gid) return;
        if (::fchown(fd, owner->st_uid, owner->st_gid) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    file.string() + ": cannot keep its owner " + std::to_string(owner->st_uid) + ":" +
                                        std::to_string(owner->st_gid) + " (edit it as its owner, or as root)");
        }
    };
    try {
        // The umask must not narrow (or widen) the mode of the policy file.
        relay::write_file_atomically(file, tmp, write, mode, relay::existing_tmp::replace, relay::file_mode::exact);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

void add_errors(edit_result& r, const std::vector<load_error>& errors) {
    for (const auto& e : errors) r.errors.push_back(e.to_string());
}

}  // namespace

edit_result edit_file(const std::filesystem::path& file, const policy_change& change, bool create_missing,
                      const edit_record& record) {
    edit_result result;

    // The sidecar lock file outlives every edit: deleting it would let two
    // editors lock two different files.
    const auto lock_path = std::filesystem::path(file.string() + ".lock");
    const relay::fd_guard lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (lock.get() < 0) {
        result.errors.push_back(system_error(lock_path, "cannot open lock file", errno));
        return result;
    }
    while (::flock(lock.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            result.errors.push_back(system_error(lock_path, "cannot lock", errno));
            return result;
        }
    }

    // Re-read under the lock: the change applies to the latest file.
    policy_file before;
    mode_t mode = 0600;
    bool exists = false;
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
        exists = true;
        mode = st.st_mode & 07777;
        const auto loaded = load_file(file);
        if (!loaded.ok()) {
            add_errors(result, loaded.errors);
            return result;
        }
        before = loaded.policy;
    } else if (errno != ENOENT || !create_missing) {
        result.errors.push_back(system_error(file, "cannot read file", errno));
        return result;
    }

    policy_file after = before;
    if (auto reason = change(after); !reason.empty()) {
        result.errors.push_back(std::move(reason));
        return result;
    }
    // A binding is written by its text: a change may set either the text or
    // the parsed network.
    for (auto& b : after.bindings) {
        std::string why;
        if (b.network_text.empty()) {
            b.network_text = b.net.to_string();
        } else {
            network::parse(b.network_text, b.net, why);  // an invalid text is reported by the check below
        }
    }
    if (exists && after == before) {
        result.ok = true;
        return result;
    }

    const auto text = to_toml(after);
    const auto check = load_text(text, file);
    if (!check.ok()) {
        add_errors(result, check.errors);
        return result;
    }
    if (!(check.policy == after)) {
        result.errors.push_back(file.string() + ": the edited policy does not read back as written; nothing was changed");
        return result;
    }

    if (record) {
        if (auto why = record(before, after); !why.empty()) {
            result.errors.push_back(std::move(why));
            return result;
        }
    }
    if (auto error = replace_file(file, text, mode, exists ? &st : nullptr); !error.empty()) {
        result.errors.push_back(std::move(error));
        return result;
    }
    result.ok = true;
    result.changed = true;
    return result;
}

}  // namespace subrelay::policy
