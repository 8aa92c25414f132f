#include "relay/spool/import.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace subrelay::relay {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t max_envelope_bytes = 1024 * 1024;  // no envelope is that long
constexpr std::size_t block_bytes = 64 * 1024;

fs::path import_dir(const fs::path& spool_dir) { return spool_dir / "import"; }

[[noreturn]] void fail(std::string_view what, const fs::path& path, int err) {
    throw spool_error(std::string(what) + " " + path.string() + ": " + errno_text(err), err);
}

std::size_t read_at(int fd, char* buf, std::size_t n, std::uint64_t offset, const fs::path& path) {
    for (;;) {
        const ssize_t got = ::pread(fd, buf, n, static_cast<off_t>(offset));
        if (got >= 0) return static_cast<std::size_t>(got);
        if (errno != EINTR) fail("read", path, errno);
    }
}

// A key of the import: the id in the other spool and a fingerprint of its
// file (64-bit FNV-1a of every byte), so that a receipt is found again only
// for the very file it was written for.
std::string import_key(const std::string& source_id, int fd, std::uint64_t size, const fs::path& path) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    std::string buf(block_bytes, '\0');
    for (std::uint64_t at = 0; at < size;) {
        const std::size_t n = read_at(fd, buf.data(), buf.size(), at, path);
        if (n == 0) throw spool_error(path.string() + ": shorter than it was");
        for (std::size_t i = 0; i < n; ++i) {
            h ^= static_cast<unsigned char>(buf[i]);
            h *= 0x100000001b3ULL;
        }
        at += n;
    }
    std::array<char, 17> hex{};
    std::snprintf(hex.data(), hex.size(), "%016llx", static_cast<unsigned long long>(h));
    return source_id + "." + hex.data();
}

// "ID.0123456789abcdef": the name of a receipt.
bool is_key(std::string_view name) {
    const std::size_t dot = name.find('.');
    if (dot == std::string_view::npos || !valid_queue_id(name.substr(0, dot))) return false;
    const std::string_view hex = name.substr(dot + 1);
    return hex.size() == 16 && std::all_of(hex.begin(), hex.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// Copies `size` bytes of `from` from `offset` on to the end of `to`.
void copy_range(int from, const fs::path& from_path, std::uint64_t offset, std::uint64_t size, int to,
                const fs::path& to_path) {
    std::string buf(block_bytes, '\0');
    for (std::uint64_t done = 0; done < size;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
        const std::size_t n = read_at(from, buf.data(), want, offset + done, from_path);
        if (n == 0) throw spool_error(from_path.string() + ": shorter than it was");
        as_spool_error([&] { write_all(to, std::string_view(buf.data(), n), to_path); });
        done += n;
    }
}

// Whether the file at `path` holds exactly the `size` bytes of `fd`.
bool same_content(int fd, std::uint64_t size, const fs::path& fd_path, const fs::path& path) {
    fd_guard other(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (other.get() < 0 || ::fstat(other.get(), &st) != 0) return false;
    if (static_cast<std::uint64_t>(st.st_size) != size) return false;
    std::string a(block_bytes, '\0');
    std::string b(block_bytes, '\0');
    for (std::uint64_t at = 0; at < size;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(a.size(), size - at));
        const std::size_t n = read_at(fd, a.data(), want, at, fd_path);
        if (n == 0 || read_at(other.get(), b.data(), n, at, path) != n) return false;
        if (std::char_traits<char>::compare(a.data(), b.data(), n) != 0) return false;
        at += n;
    }
    return true;
}

// Writes `bytes` to a new file, fsynced; its name is made durable by the
// directory fsync that follows (the receipt's).
void write_new_file(const fs::path& path, std::string_view bytes) {
    ::unlink(path.c_str());  // a leftover of an import that stopped before its receipt
    fd_guard fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) fail("create", path, errno);
    as_spool_error([&] { write_all(fd.get(), bytes, path); });
    if (::fsync(fd.get()) != 0) fail("fsync", path, errno);
    if (::close(fd.release()) != 0) fail("close", path, errno);
}

// The lock on SPOOL/import: one import at a time writes into a spool, and
// nothing removes the files of an import under way. Waits for it.
fd_guard lock_imports(const fs::path& spool_dir) {
    const fs::path dir = import_dir(spool_dir);
    as_spool_error([&] { ensure_private_directory(dir); });
    const fs::path path = dir / "lock";
    fd_guard fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) fail("open", path, errno);
    int rc;
    do rc = ::flock(fd.get(), LOCK_EX);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) fail("lock", path, errno);
    return fd;
}

std::string read_receipt(const fs::path& path) {
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) fail("open", path, errno);
    std::array<char, 80> buf{};
    const std::size_t n = read_at(fd.get(), buf.data(), buf.size() - 1, 0, path);
    std::string id(buf.data(), n);
    if (!id.empty() && id.back() == '\n') id.pop_back();
    if (!valid_queue_id(id)) throw spool_error(path.string() + ": damaged import receipt");
    return id;
}

// rename(2) that never replaces `to`. Throws spool_error (EEXIST when `to` exists).
void rename_without_replacing(const fs::path& from, const fs::path& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {
        // A file system without RENAME_NOREPLACE: a hard link fails the same way.
        if (::link(from.c_str(), to.c_str()) == 0) {
            ::unlink(from.c_str());
            return;
        }
        err = errno;
        std::error_code ec;
        if (err == EEXIST && fs::equivalent(from, to, ec)) {  // linked before a crash
            ::unlink(from.c_str());
            return;
        }
    }
    fail("rename " + from.string() + " to", to, err);
}

// Step 3: the staged state, then the staged message, into their places.
void commit_staged(const fs::path& spool_dir, const std::string& key, const std::string& id) {
    const fs::path dir = import_dir(spool_dir);
    const fs::path state = dir / (key + ".state");
    std::error_code ec;
    if (fs::exists(state, ec)) {
        // Before the message: a message without its state would be delivered again in full.
        const fs::path states = spool_dir / "state";
        as_spool_error([&] { ensure_private_directory(states); });
        if (::rename(state.c_str(), (states / id).c_str()) != 0) {
            const int err = errno;
            fail("rename " + state.string() + " to", states / id, err);
        }
        as_spool_error([&] { fsync_dir(states); });
    }
    const fs::path queue = spool_dir / "queue";
    rename_without_replacing(dir / (key + ".msg"), queue / id);
    as_spool_error([&] { fsync_dir(queue); });
}

std::string utc_text(std::int64_t t) {
    const auto tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    std::array<char, 32> buf{};
    std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf.data();
}

// The queue ids an import has claimed in this spool: staged messages waiting for their step 3.
std::set<std::string> claimed_ids(const fs::path& spool_dir) {
    std::set<std::string> ids;
    const fs::path dir = import_dir(spool_dir);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!is_key(name) || !fs::exists(dir / (name + ".msg"), ec)) continue;
        try {
            ids.insert(read_receipt(entry.path()));
        } catch (const spool_error&) {
        }
    }
    return ids;
}

}  // namespace

std::string describe(const import_result& r) {
    switch (r.what) {
    case import_result::outcome::imported: {
        std::string line = "imported " + r.source_id;
        if (r.id != r.source_id) line += " as " + r.id;
        if (!r.reason.empty()) line += " (" + r.reason + ")";
        return line;
    }
    case import_result::outcome::already:
        return "skipped " + r.source_id + ": already imported" + (r.id.empty() ? "" : " as " + r.id) +
               " by an earlier import; removed from the other spool" + (r.reason.empty() ? "" : " (" + r.reason + ")");
    case import_result::outcome::skipped: break;
    }
    return "skipped " + r.source_id + ": " + r.reason;
}

import_source::import_source(fs::path dir, const fs::path& own) : dir_(std::move(dir)) {
    std::error_code ec;
    if (!fs::is_directory(dir_, ec)) throw spool_error(dir_.string() + " is not a directory");
    if (!fs::is_directory(dir_ / "queue", ec))
        throw spool_error(dir_.string() + " is not a spool directory: it has no queue/");
    if (fs::equivalent(dir_, own, ec)) throw spool_error(dir_.string() + " is this node's own spool (spool.dir)");
    lock_ = lock_spool_dir(dir_);
    const staged_imports staged = finish_staged_imports(dir_);
    if (!staged.problems.empty())
        throw spool_error(dir_.string() + ": " + staged.problems.front() + "; nothing imported");
}

std::vector<std::string> import_source::messages() const { return queue_names(dir_); }

std::vector<std::string> queue_names(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    const fs::path queue = dir / "queue";
    for (const auto& entry : fs::directory_iterator(queue, ec)) names.push_back(entry.path().filename().string());
    if (ec) throw spool_error("cannot read " + queue.string() + ": " + ec.message());
    std::sort(names.begin(), names.end());
    return names;
}

std::size_t unacknowledged_files(const fs::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    const fs::path tmp = dir / "tmp";
    if (!fs::exists(tmp, ec)) return 0;
    for (const auto& entry : fs::directory_iterator(tmp, ec)) {
        std::error_code fec;
        if (entry.is_regular_file(fec) && entry.file_size(fec) > 0 && !fec) ++n;
    }
    if (ec) throw spool_error("cannot read " + tmp.string() + ": " + ec.message());
    return n;
}

std::optional<queue_state> imported_state(std::optional<queue_state> there, std::int64_t now,
                                          std::string_view source_id) {
    if (!there) return std::nullopt;
    queue_state s = std::move(*there);
    s.next_attempt = 0;
    s.history.push_back(utc_text(now) + " imported from another node's spool (queue id " + std::string(source_id) +
                        " there)");
    constexpr std::size_t history_lines = 20;  // as many as delivery keeps
    if (s.history.size() > history_lines)
        s.history.erase(s.history.begin(), s.history.end() - static_cast<std::ptrdiff_t>(history_lines));
    return s;
}

staged_imports finish_staged_imports(const fs::path& spool_dir) {
    staged_imports out;
    const fs::path dir = import_dir(spool_dir);
    std::error_code ec;
    if (!fs::exists(dir, ec)) return out;
    const fd_guard lock = lock_imports(spool_dir);
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir, ec)) names.push_back(entry.path().filename().string());
    if (ec) throw spool_error("cannot read " + dir.string() + ": " + ec.message());
    std::sort(names.begin(), names.end());
    std::set<std::string> receipts;
    for (const auto& n : names)
        if (is_key(n)) receipts.insert(n);
    for (const auto& key : receipts) {
        if (!fs::exists(dir / (key + ".msg"), ec)) continue;  // queued; its source may still have to go
        try {
            const std::string id = read_receipt(dir / key);
            commit_staged(spool_dir, key, id);
            out.queued.push_back(id);
        } catch (const std::exception& e) {
            out.problems.push_back(std::string("an imported message cannot be queued: ") + e.what() + " (kept in " +
                                   dir.string() + ")");
        }
    }
    // What an import wrote before its receipt: never this spool's.
    for (const auto& name : names) {
        const std::size_t dot = name.rfind('.');
        if (dot == std::string::npos) continue;
        const std::string_view ext = std::string_view(name).substr(dot);
        const std::string key = name.substr(0, dot);
        if (ext != ".msg" && ext != ".state" && ext != ".tmp") continue;
        if (!is_key(key)) continue;
        if (ext == ".tmp" || !receipts.count(key)) ::unlink((dir / name).c_str());
    }
    return out;
}

import_result import_message(const import_source& from, const std::string& name, const spool& to,
                             const state_store& states, std::int64_t now, const import_step_hook& after_step) {
    const auto step_done = [&after_step](import_step s) {
        if (after_step) after_step(s);
    };
    import_result r;
    r.source_id = name;
    auto skip = [&r](std::string why) {
        r.what = import_result::outcome::skipped;
        r.reason = std::move(why);
        return r;
    };
    if (!valid_queue_id(name)) return skip("not a queued message (left as it is)");
    const fs::path source = from.dir() / "queue" / name;

    // The source under its lock, read and checked: what cannot be read stays where it is.
    std::optional<message_lock> source_lock;
    try {
        source_lock = message_lock::try_lock(source);
    } catch (const std::system_error& e) {
        return skip(e.what());
    }
    std::error_code ec;
    if (!source_lock)
        return skip(fs::exists(source, ec) ? "locked by another process; try again in a moment"
                                           : "no longer in " + (from.dir() / "queue").string());
    fd_guard fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
        const int err = errno;
        return skip("open " + source.string() + ": " + errno_text(err));
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::optional<std::pair<spool_envelope, std::size_t>> parsed;
    std::string key;
    std::optional<queue_state> there;
    try {
        std::string head;
        while (head.find("\n\n") == std::string::npos && head.size() < std::min<std::uint64_t>(size, max_envelope_bytes)) {
            const std::size_t had = head.size();
            head.resize(had + 4096);
            head.resize(had + read_at(fd.get(), head.data() + had, 4096, had, source));
            if (head.size() == had) break;
        }
        parsed = parse_envelope(head);
        if (parsed && parsed->first.id == name) {
            there = state_store(from.dir()).load(name);
            key = import_key(name, fd.get(), size, source);
        }
    } catch (const std::exception& e) {
        return skip(e.what());
    }
    if (!parsed) return skip("damaged envelope (" + source.string() + "); left as it is");
    if (parsed->first.id != name)
        return skip("damaged envelope: it names queue id " + parsed->first.id + " (" + source.string() +
                    "); left as it is");
    spool_envelope env = std::move(parsed->first);
    const std::size_t message_offset = parsed->second;

    // Step 4 and 5: the source goes; a message here is never undone for it.
    auto remove_source = [&](const fs::path& receipt) {
        if (::unlink(source.c_str()) != 0 && errno != ENOENT) {
            const int err = errno;
            r.reason += std::string(r.reason.empty() ? "" : "; ") + "but it could not be removed from " +
                        source.parent_path().string() + ": " + errno_text(err) + " (import again to remove it)";
            return;
        }
        try {
            fsync_dir(source.parent_path());
            state_store(from.dir()).remove(name);
        } catch (const std::exception& e) {
            r.reason += std::string(r.reason.empty() ? "" : "; ") + "its removal from " +
                        source.parent_path().string() + " may not last: " + e.what() + " (import again to make sure)";
            return;
        }
        r.source_removed = true;
        step_done(import_step::source_removed);
        if (!receipt.empty()) ::unlink(receipt.c_str());
    };

    fd_guard imports(-1);
    try {
        imports = lock_imports(to.dir());
    } catch (const std::exception& e) {
        return skip(std::string("cannot import into this spool: ") + e.what());
    }
    const fs::path dir = import_dir(to.dir());
    const fs::path receipt = dir / key;

    // Imported before, by a run that stopped before removing it from DIR.
    if (fs::exists(receipt, ec)) {
        std::string id;
        try {
            id = read_receipt(receipt);
        } catch (const std::exception& e) {
            return skip(e.what());
        }
        r.id = id;
        env.id = id;
        r.envelope = env;
        if (fs::exists(dir / (key + ".msg"), ec)) {
            try {
                commit_staged(to.dir(), key, id);
            } catch (const std::exception& e) {
                return skip(std::string("cannot be queued here: ") + e.what() +
                            "; the copy waits in " + dir.string() + " and is queued at the relay's next start");
            }
            r.what = import_result::outcome::imported;
            r.reason = "an interrupted import finished";
            try {
                r.state = states.load(id);
            } catch (const std::exception&) {
            }
        } else {
            r.what = import_result::outcome::already;
        }
        remove_source(receipt);
        return r;
    }

    // A copy of this very file is queued here already.
    const fs::path queue = to.dir() / "queue";
    try {
        if (fs::exists(queue / name, ec) && same_content(fd.get(), size, source, queue / name)) {
            r.what = import_result::outcome::already;
            r.id = name;
            r.reason = "the same message is queued here";
            remove_source({});
            return r;
        }
    } catch (const std::exception& e) {
        return skip(e.what());
    }

    // Its id here: the same unless it is taken.
    const std::set<std::string> claimed = claimed_ids(to.dir());
    auto taken = [&](const std::string& id) {
        std::error_code tec;
        return fs::exists(queue / id, tec) || fs::exists(to.dir() / "state" / id, tec) || claimed.count(id) > 0;
    };
    std::string id = name;
    while (taken(id)) id = spool::new_id();
    spool_envelope here = env;
    here.id = id;

    // Steps 1 and 2.
    const fs::path staged = dir / (key + ".msg");
    const fs::path staged_state = dir / (key + ".state");
    const std::optional<queue_state> state = imported_state(there, now, name);
    try {
        ::unlink(staged.c_str());
        fd_guard out(::open(staged.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (out.get() < 0) fail("create", staged, errno);
        if (id == name) {
            copy_range(fd.get(), source, 0, size, out.get(), staged);  // byte for byte
        } else {
            as_spool_error([&] { write_all(out.get(), format_envelope(here), staged); });
            copy_range(fd.get(), source, message_offset, size - message_offset, out.get(), staged);
        }
        if (::fsync(out.get()) != 0) fail("fsync", staged, errno);
        if (::close(out.release()) != 0) fail("close", staged, errno);
        if (state) write_new_file(staged_state, format_state(*state));
        step_done(import_step::staged);
        as_spool_error([&] { write_file_atomically(receipt, dir / (key + ".tmp"), {id + "\n"}); });
    } catch (const std::exception& e) {
        std::error_code rec;
        if (!fs::exists(receipt, rec)) {
            ::unlink(staged.c_str());
            ::unlink(staged_state.c_str());
            return skip(std::string("cannot be written here: ") + e.what());
        }
        // Only the receipt's directory fsync failed: it is handed over, and queued below.
    }
    step_done(import_step::receipt_written);

    // Step 3.
    r.id = id;
    r.envelope = here;
    try {
        commit_staged(to.dir(), key, id);
    } catch (const std::exception& e) {
        return skip(std::string("cannot be queued here: ") + e.what() + "; the copy waits in " + dir.string() +
                    " and is queued at the relay's next start");
    }
    r.what = import_result::outcome::imported;
    r.state = state;
    if (id != name) r.reason = "the id " + name + " is taken here";
    step_done(import_step::queued);
    remove_source(receipt);
    return r;
}

}  // namespace subrelay::relay
