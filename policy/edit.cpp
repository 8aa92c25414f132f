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

void add_errors(edit_result& r, const std::vector<load_error>& errors) {
    for (const auto& e : errors) r.errors.push_back(e.to_string());
}

}  // namespace

edit_result edit_file(const std::filesystem::path& file, const policy_change& change, bool create_missing,
                      const edit_record& record) {
    edit_result result;

    relay::fd_guard lock(-1);
    if (auto error = relay::lock_beside(file, lock); !error.empty()) {
        result.errors.push_back(std::move(error));
        return result;
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
    if (auto error = relay::replace_file_as(file, text, mode, exists ? &st : nullptr); !error.empty()) {
        result.errors.push_back(std::move(error));
        return result;
    }
    result.ok = true;
    result.changed = true;
    return result;
}

}  // namespace subrelay::policy
