#include "relay/spool/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <utility>

#include "relay/spool/durable_file.hpp"
#include "relay/spool/import.hpp"

namespace subrelay::relay {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view magic = "subrelay-spool 1\n";

}  // namespace

std::string format_envelope(const spool_envelope& env) {
    std::string out(magic);
    auto line = [&out](std::string_view key, std::string_view value) {
        out.append(key).append(" ").append(value).append("\n");
    };
    line("id", env.id);
    line("sender", env.sender);
    for (const auto& r : env.recipients) line("recipient", r);
    line("identity", env.identity);
    line("upstream", env.upstream_mailbox);
    line("client", env.client_address);
    line("received", std::to_string(env.received_at));
    line("smtputf8", env.smtputf8 ? "1" : "0");
    line("8bit", env.eight_bit ? "1" : "0");
    out.append("\n");
    return out;
}

std::optional<std::pair<spool_envelope, std::size_t>> parse_envelope(std::string_view file) {
    if (file.substr(0, magic.size()) != magic) return std::nullopt;
    spool_envelope env;
    std::size_t pos = magic.size();
    for (;;) {
        std::size_t nl = file.find('\n', pos);
        if (nl == std::string_view::npos) return std::nullopt;
        std::string_view line = file.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) break;
        std::size_t sp = line.find(' ');
        if (sp == std::string_view::npos) return std::nullopt;
        std::string_view key = line.substr(0, sp);
        std::string value(line.substr(sp + 1));
        if (key == "id") env.id = value;
        else if (key == "sender") env.sender = value;
        else if (key == "recipient") env.recipients.push_back(value);
        else if (key == "identity") env.identity = value;
        else if (key == "upstream") env.upstream_mailbox = value;
        else if (key == "client") env.client_address = value;
        else if (key == "received") {
            try {
                env.received_at = std::stoll(value);
            } catch (const std::exception&) {
                return std::nullopt;
            }
        } else if (key == "smtputf8") env.smtputf8 = value == "1";
        else if (key == "8bit") env.eight_bit = value == "1";
        // Unknown keys are ignored: a newer version may add some.
    }
    if (!valid_queue_id(env.id)) return std::nullopt;
    return std::make_pair(std::move(env), pos);
}

spool::spool(fs::path dir)
    : dir_(std::move(dir)), tmp_(dir_ / "tmp"), queue_(dir_ / "queue"), queue_sync_(queue_) {}

void spool::open() {
    std::error_code ec;
    for (const auto& d : {dir_, tmp_, queue_}) as_spool_error([&] { ensure_private_directory(d); });
    instance_lock_ = lock_spool_dir(dir_);  // before tmp/ is touched: it may be another relay's
    // Files in tmp/ were never acknowledged to a client: remove them.
    for (const auto& entry : fs::directory_iterator(tmp_, ec)) fs::remove(entry.path(), ec);
    if (ec) throw spool_error("cannot read " + tmp_.string() + ": " + ec.message());
    // Messages another spool handed over before a crash: queued now.
    as_spool_error([&] {
        staged_imports staged = finish_staged_imports(dir_);
        imports_finished_ = std::move(staged.queued);
        import_problems_ = std::move(staged.problems);
    });
    // Prove that the spool accepts durable writes now rather than at the first message.
    const fs::path probe = tmp_ / ".probe";
    fd_guard fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) throw spool_error("spool " + dir_.string() + " is not writable: " + errno_text(errno));
    as_spool_error([&] { write_all(fd.get(), "probe\n", probe); });
    if (::fsync(fd.get()) != 0) throw spool_error("fsync " + probe.string() + ": " + errno_text(errno));
    ::close(fd.release());
    fs::remove(probe, ec);
    as_spool_error([&] { fsync_dir(tmp_); });
    std::lock_guard lock(recycled_mutex_);
    recycling_ = true;
}

fd_guard lock_spool_dir(const fs::path& dir) {
    const fs::path path = dir / "serve.lock";
    fd_guard fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
        const int err = errno;
        throw spool_error("open " + path.string() + ": " + errno_text(err), err);
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) throw spool_error("lock " + path.string() + ": " + errno_text(errno));
        std::array<char, 32> pid{};
        const ssize_t n = ::pread(fd.get(), pid.data(), pid.size() - 1, 0);
        std::string holder(pid.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
        throw spool_error("spool " + dir.string() + " is in use by process " + (holder.empty() ? "?" : holder));
    }
    // The holder's PID, for the message above (the lock itself is the flock).
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0) throw spool_error("truncate " + path.string() + ": " + errno_text(errno));
    as_spool_error([&] { write_all(fd.get(), pid, path); });
    return fd;
}

std::string spool::take_recycled() {
    std::lock_guard lock(recycled_mutex_);
    if (recycled_.empty()) return {};
    std::string name = std::move(recycled_.front());
    recycled_.pop_front();
    return name;
}

void spool::return_recycled(std::string name) {
    std::lock_guard lock(recycled_mutex_);
    recycled_.push_back(std::move(name));
}

bool spool::recycle(const fs::path& file) {
    std::string name;
    {
        std::lock_guard lock(recycled_mutex_);
        if (!recycling_ || recycled_.size() >= max_recycled_files) return false;
        name = "recycled." + std::to_string(++recycled_counter_);
    }
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(file, ec);
    if (ec || size > max_recycled_size) return false;
    if (::rename(file.c_str(), (tmp_ / name).c_str()) != 0) return false;
    // Emptied at once: a delivered message does not stay readable on disk
    // until the file is used again. (Should this fail, the file goes.)
    if (::truncate((tmp_ / name).c_str(), 0) != 0) {
        ::unlink((tmp_ / name).c_str());
        return true;
    }
    std::lock_guard lock(recycled_mutex_);
    recycled_.push_back(std::move(name));
    return true;
}

std::string spool::new_id() {
    // 11 base-32 digits of microseconds since the epoch, then 5 random ones:
    // ids sort by arrival time and do not collide across restarts.
    static constexpr char digits[] = "0123456789ABCDEFGHJKLMNPQRSTVWXY";
    static std::atomic<std::uint64_t> counter{0};
    thread_local std::mt19937_64 rng{std::random_device{}()};
    auto us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    std::uint64_t rnd = rng() ^ counter.fetch_add(1);
    std::string id(16, '0');
    for (int i = 10; i >= 0; --i) {
        id[static_cast<std::size_t>(i)] = digits[us & 31];
        us >>= 5;
    }
    for (std::size_t i = 11; i < 16; ++i) {
        id[i] = digits[rnd & 31];
        rnd >>= 5;
    }
    return id;
}

bool spool_error::out_of_space() const { return errno_ == ENOSPC || errno_ == EDQUOT; }

spool::incoming::incoming(incoming&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      fd_(std::move(other.fd_)),
      id_(std::move(other.id_)),
      name_(std::move(other.name_)),
      tmp_path_(std::move(other.tmp_path_)),
      reused_(other.reused_),
      written_(other.written_),
      size_(other.size_) {}

spool::incoming& spool::incoming::operator=(incoming&& other) noexcept {
    if (this != &other) {
        abort();
        owner_ = std::exchange(other.owner_, nullptr);
        fd_ = std::move(other.fd_);
        id_ = std::move(other.id_);
        name_ = std::move(other.name_);
        tmp_path_ = std::move(other.tmp_path_);
        reused_ = other.reused_;
        written_ = other.written_;
        size_ = other.size_;
    }
    return *this;
}

spool::incoming spool::begin(spool_envelope env, const header_builder& make_header) {
    env.id = new_id();
    std::string head = format_envelope(env);
    if (make_header) head += make_header(env.id);
    // A recycled file is overwritten and cut to size at commit(): its old
    // content is never in queue/, and a crash before the rename leaves it in
    // tmp/, which start-up empties. A new file is created with O_EXCL: two
    // writers of one name must not mix their bytes.
    // A recycled file whose last reader still holds its lock (message_lock:
    // flock on the file) waits for a later message: the next reader of
    // this one must not find it locked.
    incoming in;
    in.id_ = env.id;
    std::string name = take_recycled();
    if (!name.empty()) {
        fd_guard reused(::open((tmp_ / name).c_str(), O_WRONLY | O_CLOEXEC));
        if (reused.get() >= 0 && ::flock(reused.get(), LOCK_EX | LOCK_NB) == 0) {
            in.fd_ = std::move(reused);
            in.reused_ = true;
        } else {
            if (reused.get() >= 0) return_recycled(std::move(name));
            name.clear();
        }
    }
    if (!in.reused_) {
        name = env.id;
        const fs::path path = tmp_ / name;
        in.fd_ = fd_guard(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (in.fd_.get() < 0) {
            const int err = errno;  // before anything below can allocate
            throw spool_error("create " + path.string() + ": " + errno_text(err), err);
        }
    }
    in.name_ = std::move(name);
    in.tmp_path_ = tmp_ / in.name_;
    in.owner_ = this;
    in.write(head);
    return in;
}

void spool::incoming::write(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write", n < 0 ? errno : EIO);
        bytes.remove_prefix(static_cast<std::size_t>(n));
        written_ += static_cast<std::uint64_t>(n);
    }
}

void spool::incoming::fail(std::string_view what, int err) {
    std::string text = std::string(what) + " " + tmp_path_.string() + ": " + errno_text(err);
    abort();
    throw spool_error(text, err);
}

void spool::incoming::append(std::string_view bytes) {
    if (!active()) throw spool_error("no message is being written");
    write(bytes);
    size_ += bytes.size();
}

std::string spool::incoming::commit() {
    if (!active()) throw spool_error("no message is being written");
    if (::fdatasync(fd_.get()) != 0) fail("fsync", errno);
    spool& s = *owner_;
    const fs::path final_path = s.queue_ / id_;
    // From here on the file is never kept for another message.
    owner_ = nullptr;
    if (::close(fd_.release()) != 0) {
        const int err = errno;
        ::unlink(tmp_path_.c_str());
        throw spool_error("close " + tmp_path_.string() + ": " + errno_text(err), err);
    }
    if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp_path_.c_str());
        throw spool_error("rename " + tmp_path_.string() + " to " + final_path.string() + ": " + errno_text(err), err);
    }
    try {
        as_spool_error([&] { s.queue_sync_.sync(); });
    } catch (const spool_error&) {
        // The rename has happened but may not last: the client gets a 4xx,
        // so the message must not be delivered too.
        ::unlink(final_path.c_str());
        throw;
    }
    return id_;
}

void spool::incoming::abort() noexcept {
    if (owner_ == nullptr) return;
    spool* s = std::exchange(owner_, nullptr);
    bool kept = false;
    if (reused_ && ::ftruncate(fd_.get(), 0) == 0) {
        fd_ = fd_guard(-1);  // closed first: the lock goes with it
        try {
            s->return_recycled(std::move(name_));
            kept = true;
        } catch (...) {  // no memory for the name: the file goes
        }
    }
    fd_ = fd_guard(-1);
    if (!kept) ::unlink(tmp_path_.c_str());
}

std::string spool::store(spool_envelope env, std::string_view body, const header_builder& make_header) {
    incoming in = begin(std::move(env), make_header);
    in.append(body);
    return in.commit();
}

std::vector<std::string> spool::list() const {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(queue_, ec)) {
        std::string name = entry.path().filename().string();
        if (valid_queue_id(name)) ids.push_back(std::move(name));
    }
    if (ec) throw spool_error("cannot read " + queue_.string() + ": " + ec.message());
    std::sort(ids.begin(), ids.end());
    return ids;
}

namespace {

// Whether `message` (its first bytes) holds the end of its header section:
// an empty line, or the message starts with one (no header fields at all).
bool header_section_ends_in(std::string_view message) {
    return message.starts_with("\r\n") || message.starts_with("\n") ||
           message.find("\r\n\r\n") != std::string_view::npos || message.find("\n\n") != std::string_view::npos;
}

}  // namespace

spool::stored_message spool::open_message(const std::string& id) const {
    if (!valid_queue_id(id)) throw spool_error("invalid queue id");
    stored_message m;
    m.path_ = (queue_ / id).string();
    m.fd_ = fd_guard(::open(m.path_.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (m.fd_.get() < 0 || ::fstat(m.fd_.get(), &st) != 0)
        throw spool_error("open " + m.path_ + ": " + errno_text(errno));
    auto file_size = static_cast<std::uint64_t>(st.st_size);
    // Blocks until the envelope is whole, then head_bytes of the message
    // and its header section (up to max_head_bytes), or the end of the file.
    std::string content;
    std::optional<std::pair<spool_envelope, std::size_t>> parsed;
    constexpr std::size_t block = 64 * 1024;
    for (;;) {
        if (!parsed) parsed = parse_envelope(content);
        if (!parsed && content.size() >= max_head_bytes) break;  // no envelope is that long
        if (parsed) {
            const std::string_view message = std::string_view(content).substr(parsed->second);
            const bool enough = message.size() >= head_bytes &&
                                (message.size() >= max_head_bytes || header_section_ends_in(message));
            if (enough) break;
        }
        const std::size_t had = content.size();
        if (had >= file_size) break;
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(block, file_size - had));
        content.resize(had + want);
        ssize_t n;
        do n = ::pread(m.fd_.get(), content.data() + had, want, static_cast<off_t>(had));
        while (n < 0 && errno == EINTR);
        if (n < 0) throw spool_error("read " + m.path_ + ": " + errno_text(errno));
        content.resize(had + static_cast<std::size_t>(n));
        if (n == 0) file_size = had;  // shorter than fstat said (it is never rewritten in place)
    }
    if (!parsed) throw spool_error(m.path_ + ": damaged spool file");
    m.envelope = std::move(parsed->first);
    m.start_ = parsed->second;
    m.size_ = file_size - m.start_;
    content.erase(0, parsed->second);
    m.head_ = std::move(content);
    return m;
}

std::size_t spool::stored_message::read_at(std::uint64_t offset, std::span<char> buf) const {
    if (offset >= size_ || buf.empty()) return 0;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size_ - offset));
    ssize_t n;
    do n = ::pread(fd_.get(), buf.data(), want, static_cast<off_t>(start_ + offset));
    while (n < 0 && errno == EINTR);
    if (n < 0) throw spool_error("read " + path_ + ": " + errno_text(errno));
    if (n == 0) throw spool_error(path_ + ": shorter than it was (" + std::to_string(start_ + offset) + " bytes)");
    return static_cast<std::size_t>(n);
}

spool::loaded spool::load(const std::string& id) const {
    stored_message m = open_message(id);
    loaded out;
    out.envelope = std::move(m.envelope);
    out.data = std::move(m.head_);
    const std::size_t had = out.data.size();
    out.data.resize(static_cast<std::size_t>(m.size_));
    for (std::size_t got = had; got < out.data.size();)
        got += m.read_at(got, std::span<char>(out.data.data() + got, out.data.size() - got));
    return out;
}

spool_envelope spool::load_envelope(const std::string& id) const {
    if (!valid_queue_id(id)) throw spool_error("invalid queue id");
    const fs::path path = queue_ / id;
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) throw spool_error("open " + path.string() + ": " + errno_text(errno));
    // The envelope ends at the first empty line; read up to it, a block at a time.
    std::string head;
    char block[4096];
    while (head.find("\n\n") == std::string::npos) {
        const ssize_t n = ::read(fd.get(), block, sizeof block);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw spool_error("read " + path.string() + ": " + errno_text(errno));
        if (n == 0) break;
        head.append(block, static_cast<std::size_t>(n));
    }
    auto parsed = parse_envelope(head);
    if (!parsed) throw spool_error(path.string() + ": damaged spool file");
    return std::move(parsed->first);
}

std::optional<std::uint64_t> spool::free_bytes() const {
    struct statvfs st {};
    if (::statvfs(queue_.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

void spool::remove(const std::string& id) {
    if (!valid_queue_id(id)) throw spool_error("invalid queue id");
    const fs::path path = queue_ / id;
    if (!recycle(path) && ::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw spool_error("remove " + path.string() + ": " + errno_text(errno));
    as_spool_error([&] { queue_sync_.sync(); });
}

}  // namespace subrelay::relay
