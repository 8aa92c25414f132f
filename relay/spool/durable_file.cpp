#include "relay/spool/durable_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace subrelay::relay {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::strerror(err); }

namespace {

// Reads errno before the message is built: building it may allocate.
[[noreturn]] void throw_errno(std::string_view what, const fs::path& path) {
    const int err = errno;
    throw std::runtime_error(std::string(what) + " " + path.string() + ": " + errno_text(err));
}

}  // namespace

fd_guard::~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
}

int fd_guard::release() { return std::exchange(fd_, -1); }

fd_guard& fd_guard::operator=(fd_guard&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.release();
    }
    return *this;
}

void write_all(int fd, std::string_view data, const fs::path& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("write", path);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string lock_beside(const fs::path& file, fd_guard& lock) {
    const auto lock_path = fs::path(file.string() + ".lock");
    lock = fd_guard(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (lock.get() < 0) return lock_path.string() + ": cannot open lock file: " + errno_text(errno);
    while (::flock(lock.get(), LOCK_EX) != 0) {
        if (errno != EINTR) return lock_path.string() + ": cannot lock: " + errno_text(errno);
    }
    return {};
}

std::string replace_file_as(const fs::path& file, std::string_view text, mode_t mode, const struct stat* owner) {
    const auto dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    const auto tmp = dir / (file.filename().string() + ".tmp." + std::to_string(::getpid()));
    const auto write = [&](int fd) {
        write_all(fd, text, tmp);
        if (owner == nullptr) return;
        struct stat now {};
        if (::fstat(fd, &now) != 0) throw std::system_error(errno, std::generic_category(), tmp.string());
        if (now.st_uid == owner->st_uid && now.st_gid == owner->st_gid) return;
        if (::fchown(fd, owner->st_uid, owner->st_gid) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    file.string() + ": cannot give it to " + std::to_string(owner->st_uid) + ":" +
                                        std::to_string(owner->st_gid) + " (edit it as its owner, or as root)");
        }
    };
    try {
        write_file_atomically(file, tmp, write, mode, existing_tmp::replace, file_mode::exact);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

void ensure_private_directory(const fs::path& dir) {
    // The missing components, made from the top down (existing parents are
    // left as they are: /var/spool or /tmp are not ours to judge).
    std::vector<fs::path> missing;
    std::error_code ec;
    for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
        missing.push_back(p);
        if (p == p.parent_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it)
        if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) throw_errno("create", *it);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) throw_errno("stat", dir);
    if (!S_ISDIR(st.st_mode)) throw std::runtime_error(dir.string() + " is not a directory");
    if ((st.st_mode & S_IWOTH) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error(dir.string() + " is writable by other users (mode " + mode +
                                 "), who could plant messages in it: chmod o-w " + dir.string());
    }
}

void fsync_dir(const fs::path& dir) {
    fd_guard fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) throw_errno("open", dir);
    if (::fsync(fd.get()) != 0) throw_errno("fsync", dir);
}

directory_syncer::directory_syncer(fs::path dir) : dir_(std::move(dir)) {}

void directory_syncer::sync() {
    std::unique_lock lock(mutex_);
    // The batch that has not started yet covers this call; whoever finds no
    // fsync running starts it, and later callers wait for the one after.
    const std::shared_ptr<batch> mine = next_;
    while (!mine->done) {
        if (running_) {
            finished_.wait(lock);
            continue;
        }
        running_ = true;
        next_ = std::make_shared<batch>();
        lock.unlock();
        std::string error;
        try {
            fsync_dir(dir_);
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
        lock.lock();
        mine->error = std::move(error);
        mine->done = true;
        running_ = false;
        finished_.notify_all();
    }
    if (!mine->error.empty()) throw std::runtime_error(mine->error);
}

void write_file_atomically(const fs::path& final_path, const fs::path& tmp_path, const content_writer& write,
                           mode_t mode, existing_tmp if_exists, file_mode how) {
    const int flags =
        O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (if_exists == existing_tmp::fail ? O_EXCL : O_TRUNC);
    fd_guard fd(::open(tmp_path.c_str(), flags, mode));
    if (fd.get() < 0) throw_errno("create", tmp_path);
    try {
        if (how == file_mode::exact && ::fchmod(fd.get(), mode) != 0) throw_errno("chmod", tmp_path);
        write(fd.get());
        if (::fsync(fd.get()) != 0) throw_errno("fsync", tmp_path);
        if (::close(fd.release()) != 0) throw_errno("close", tmp_path);
        if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
            const int err = errno;
            throw std::runtime_error("rename " + tmp_path.string() + " to " + final_path.string() + ": " +
                                     errno_text(err));
        }
    } catch (...) {
        ::unlink(tmp_path.c_str());
        throw;
    }
    fsync_dir(final_path.parent_path());
}

void write_file_atomically(const fs::path& final_path, const fs::path& tmp_path,
                           std::initializer_list<std::string_view> parts, mode_t mode, existing_tmp if_exists,
                           file_mode how) {
    const auto write_parts = [&parts, &tmp_path](int fd) {
        for (std::string_view part : parts) write_all(fd, part, tmp_path);
    };
    write_file_atomically(final_path, tmp_path, write_parts, mode, if_exists, how);
}

bool valid_queue_id(std::string_view id) {
    return !id.empty() && id.size() <= 64 &&
           std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); });
}

}  // namespace subrelay::relay
