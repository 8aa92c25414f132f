#include "policy/reload.hpp"

#include <sys/stat.h>

#include <unordered_set>

#include "smtp/text/ascii.hpp"

namespace subrelay::policy {

file_stamp stamp_of(const std::filesystem::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return {};
    const auto ns = [](const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; };
    return {true, st.st_ino, st.st_mode, ns(st.st_mtim), ns(st.st_ctim), st.st_size};
}

change_watch::verdict change_watch::poll(const file_stamp& now) {
    if (now == read_) {
        seen_.reset();
        return verdict::unchanged;
    }
    if (seen_ && *seen_ == now) return verdict::read;
    seen_ = now;
    return verdict::settling;
}

void change_watch::read_at(const file_stamp& stamp) {
    read_ = stamp;
    seen_.reset();
}

reload_check check_reload(const policy_file& in_force, const load_result& loaded, const std::filesystem::path& file) {
    reload_check c;
    c.before = in_force.mailboxes.size();
    c.after = loaded.policy.mailboxes.size();
    std::unordered_set<std::string> kept;
    for (const auto& m : loaded.policy.mailboxes) kept.insert(text::ascii_lower(m.identity));
    for (const auto& m : in_force.mailboxes) {
        if (!kept.contains(text::ascii_lower(m.identity))) ++c.removed;
    }
    if (c.removed * 2 <= c.before) return c;
    const std::string counts = std::to_string(c.before) + " account(s) before, " + std::to_string(c.after) + " after";
    if (!loaded.ends_complete) {
        c.apply = false;
        c.message = file.string() + ": would remove " + std::to_string(c.removed) + " of the " +
                    std::to_string(c.before) +
                    " accounts in force and does not end with a complete last table (its last line has no line "
                    "end: a file still being written?); not applied";
        return c;
    }
    c.warn = true;
    c.message = file.string() + ": more than half of the accounts were removed: " + counts;
    return c;
}

}  // namespace subrelay::policy
