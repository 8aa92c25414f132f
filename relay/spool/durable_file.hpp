#pragma once
// Low-level file helpers shared by the spool, the queue state store, the
// delivery code and the policy editor: an owned file descriptor, complete
// writes, directory fsync, and the atomic replace (temporary file, fsync,
// rename, fsync the directory) that everything durable relies on: the one
// implementation of it in the project.
#include <sys/stat.h>
#include <sys/types.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace subrelay::relay {

// strerror(err) as a string.
std::string errno_text(int err);

// Owns a file descriptor; closes it unless released.
class fd_guard {
public:
    explicit fd_guard(int fd) : fd_(fd) {}
    ~fd_guard();
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    fd_guard(fd_guard&& other) noexcept : fd_(other.release()) {}
    fd_guard& operator=(fd_guard&& other) noexcept;
    [[nodiscard]] int get() const { return fd_; }
    int release();

private:
    int fd_;
};

// Writes all of data to fd, retrying on EINTR. path only names the file in
// the error. Throws std::runtime_error.
void write_all(int fd, std::string_view data, const std::filesystem::path& path);

// fsyncs a directory, making renames and unlinks in it durable. Throws std::runtime_error.
void fsync_dir(const std::filesystem::path& dir);

// Group commit of one directory's fsyncs. sync() returns once an fsync of
// the directory that began after the call has completed, so every rename or
// unlink made before the call is durable; threads that call while an fsync
// runs share the next one instead of each paying for their own. Throws
// std::runtime_error when the fsync covering the call fails.
class directory_syncer {
public:
    explicit directory_syncer(std::filesystem::path dir);
    void sync();

private:
    struct batch {
        bool done = false;
        std::string error;
    };
    std::filesystem::path dir_;
    std::mutex mutex_;
    std::condition_variable finished_;
    std::shared_ptr<batch> next_ = std::make_shared<batch>();  // the batch that has not started yet
    bool running_ = false;
};

// What to do when the temporary file already exists.
enum class existing_tmp {
    replace,  // truncate it (a leftover of an earlier crash)
    fail,     // throw: someone else is writing under that name
};

// Whether the process umask applies to the mode of the new file.
enum class file_mode {
    umask_applies,  // mode & ~umask, as open(2) creates files
    exact,          // exactly mode: a replaced file keeps the mode it had
};

// Atomically replaces final_path with the concatenation of parts: writes
// tmp_path (created with mode; never through a symbolic link), fsyncs it,
// renames it to final_path, and fsyncs final_path's directory. tmp_path
// must be on the same file system as final_path. Throws std::runtime_error;
// no temporary file is left behind when any step fails. When only the final
// directory fsync fails, the rename has happened: final_path holds the new
// content, but may not survive a crash.
void write_file_atomically(const std::filesystem::path& final_path, const std::filesystem::path& tmp_path,
                           std::initializer_list<std::string_view> parts, mode_t mode = 0600,
                           existing_tmp if_exists = existing_tmp::replace,
                           file_mode how = file_mode::umask_applies);

// The same, with the content written to the temporary file's descriptor by
// `write` (in pieces, as it produces them; it throws on failure).
using content_writer = std::function<void(int fd)>;
void write_file_atomically(const std::filesystem::path& final_path, const std::filesystem::path& tmp_path,
                           const content_writer& write, mode_t mode = 0600,
                           existing_tmp if_exists = existing_tmp::replace, file_mode how = file_mode::umask_applies);

// An edited file's lock: FILE.lock (made 0600 and never removed: deleting
// it would let two editors lock two different files), flock(2)ed
// exclusively into `lock`. "" when held, else what went wrong
// ("FILE.lock: cannot lock: ...").
std::string lock_beside(const std::filesystem::path& file, fd_guard& lock);

// Replaces `file` with `text` (write_file_atomically through FILE.tmp.PID)
// with exactly `mode` whatever the umask and, when `owner` is given, its
// owner and group: a file installed root:subrelay 0640 for a relay running
// as subrelay stays readable by it after root edits it. "" on success,
// else the error.
std::string replace_file_as(const std::filesystem::path& file, std::string_view text, mode_t mode,
                            const struct stat* owner);

// A directory only this user may write to: created with mode 0700 (and its
// missing parents too) when it does not exist; an existing one is refused
// when other users may write to it (they could plant files in it: a message
// delivered as another account). Throws std::runtime_error.
void ensure_private_directory(const std::filesystem::path& dir);

// Queue ids as the spool makes them: 1 to 64 digits and capital letters
// (and so nothing that could name another file).
bool valid_queue_id(std::string_view id);

}  // namespace subrelay::relay
