#include "relay/spool/queue_state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "relay/spool/durable_file.hpp"

namespace subrelay::relay {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view state_magic = "subrelay-state ";
constexpr unsigned state_version = 1;

// Values are written on one line: backslash, newline, carriage return and
// tab are escaped, so that any string survives (and a tab can separate two
// values).
std::string escape(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: out += c;
        }
    }
    return out;
}

std::optional<std::string> unescape(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '\\') {
            out += v[i];
            continue;
        }
        if (++i == v.size()) return std::nullopt;
        switch (v[i]) {
            case '\\': out += '\\'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            default: return std::nullopt;
        }
    }
    return out;
}

template <typename T>
bool parse_number(std::string_view v, T& out) {
    if (v.empty()) return false;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc{} && end == v.data() + v.size();
}

bool parse_flag(std::string_view v, bool& out) {
    if (v != "0" && v != "1") return false;
    out = v == "1";
    return true;
}

void check_id(const std::string& id) {
    if (!valid_queue_id(id)) throw std::runtime_error("invalid queue id");
}

}  // namespace

// ---------------------------------------------------------------------------
// State file format

std::string format_state(const queue_state& s) {
    std::string out(state_magic);
    out += std::to_string(state_version) + "\n";
    auto line = [&out](std::string_view key, std::string_view value) {
        out.append(key).append(" ").append(value).append("\n");
    };
    line("attempts", std::to_string(s.attempts));
    line("first_attempt", std::to_string(s.first_attempt));
    line("next_attempt", std::to_string(s.next_attempt));
    line("held", s.held ? "1" : "0");
    line("delay_warned", s.delay_warned ? "1" : "0");
    if (!s.last_reply.empty()) line("last_reply", escape(s.last_reply));
    if (!s.last_upstream_reply.empty()) line("last_upstream_reply", escape(s.last_upstream_reply));
    if (!s.hint.empty()) line("hint", escape(s.hint));
    for (const auto& d : s.delivered) line("delivered", escape(d));
    for (const auto& f : s.failed) line("failed", escape(f.address) + "\t" + escape(f.reply));
    for (const auto& h : s.history) line("history", escape(h));
    return out;
}

std::optional<queue_state> parse_state(std::string_view text) {
    if (!text.starts_with(state_magic)) return std::nullopt;
    queue_state s;
    bool first = true;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (first) {
            // "subrelay-state N": any version; newer ones only add keys.
            unsigned version = 0;
            if (!parse_number(line.substr(state_magic.size()), version) || version == 0) return std::nullopt;
            first = false;
            continue;
        }
        if (line.empty()) continue;
        std::size_t sp = line.find(' ');
        std::string_view key = line.substr(0, sp);
        std::string_view raw = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        bool ok = true;
        if (key == "attempts") ok = parse_number(raw, s.attempts);
        else if (key == "first_attempt") ok = parse_number(raw, s.first_attempt);
        else if (key == "next_attempt") ok = parse_number(raw, s.next_attempt);
        else if (key == "held") ok = parse_flag(raw, s.held);
        else if (key == "delay_warned") ok = parse_flag(raw, s.delay_warned);
        else if (key == "last_reply" || key == "last_upstream_reply" || key == "hint" || key == "delivered" ||
                 key == "history") {
            auto v = unescape(raw);
            if (!v) return std::nullopt;
            if (key == "last_reply") s.last_reply = std::move(*v);
            else if (key == "last_upstream_reply") s.last_upstream_reply = std::move(*v);
            else if (key == "hint") s.hint = std::move(*v);
            else if (key == "delivered") s.delivered.push_back(std::move(*v));
            else s.history.push_back(std::move(*v));
        } else if (key == "failed") {
            std::size_t tab = raw.find('\t');
            if (tab == std::string_view::npos) return std::nullopt;
            auto address = unescape(raw.substr(0, tab));
            auto reply = unescape(raw.substr(tab + 1));
            if (!address || !reply) return std::nullopt;
            s.failed.push_back({std::move(*address), std::move(*reply)});
        }
        // Unknown keys are ignored: a newer version may add some.
        if (!ok) return std::nullopt;
    }
    if (first) return std::nullopt;
    return s;
}

// ---------------------------------------------------------------------------
// state_store

state_store::state_store(fs::path spool_dir) : dir_(std::move(spool_dir) / "state") {}

void state_store::open() {
    ensure_private_directory(dir_);
}

std::optional<queue_state> state_store::load(const std::string& id) const {
    check_id(id);
    const fs::path path = dir_ / id;
    fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw std::runtime_error("cannot read " + path.string() + ": " + errno_text(errno));
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("cannot read " + path.string() + ": " + errno_text(errno));
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    auto s = parse_state(text);
    if (!s) throw std::runtime_error(path.string() + ": damaged queue state file");
    return s;
}

void state_store::save(const std::string& id, const queue_state& s) const {
    check_id(id);
    const fs::path final_path = dir_ / id;
    // Hidden, and unique per process: never taken for a state file.
    const fs::path tmp = dir_ / ("." + id + ".tmp." + std::to_string(::getpid()));
    const std::string text = format_state(s);
    write_file_atomically(final_path, tmp, {text});
}

void state_store::remove(const std::string& id) const {
    check_id(id);
    const fs::path path = dir_ / id;
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw std::runtime_error("remove " + path.string() + ": " + errno_text(errno));
    }
    // No directory fsync: the message file is removed durably first, and a
    // state file that outlives it after a crash is removed at the next start.
}

// ---------------------------------------------------------------------------
// message_lock

std::optional<message_lock> message_lock::acquire(const fs::path& file, bool wait) {
    // Lock, then check that the name still refers to the locked file: the
    // previous holder may have removed or replaced it meanwhile.
    for (int tries = 0;; ++tries) {
        fd_guard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) {
            if (errno == ENOENT && !wait) return std::nullopt;
            throw std::system_error(errno, std::generic_category(), "open " + file.string());
        }
        int rc;
        do rc = ::flock(fd.get(), wait ? LOCK_EX : LOCK_EX | LOCK_NB);
        while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            if (errno == EWOULDBLOCK) return std::nullopt;
            throw std::system_error(errno, std::generic_category(), "flock " + file.string());
        }
        struct stat locked {};
        struct stat named {};
        if (::fstat(fd.get(), &locked) != 0)
            throw std::system_error(errno, std::generic_category(), "fstat " + file.string());
        if (::stat(file.c_str(), &named) != 0) {
            if (errno == ENOENT && !wait) return std::nullopt;
            throw std::system_error(errno, std::generic_category(), "stat " + file.string());
        }
        if (locked.st_dev == named.st_dev && locked.st_ino == named.st_ino) return message_lock(fd.release(), file);
        if (tries >= 100)
            throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                    "lock " + file.string() + ": the file keeps being replaced");
    }
}

std::optional<message_lock> message_lock::try_lock(const fs::path& file) { return acquire(file, false); }

message_lock message_lock::lock(const fs::path& file) { return std::move(*acquire(file, true)); }

message_lock::message_lock(message_lock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

message_lock& message_lock::operator=(message_lock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
    }
    return *this;
}

message_lock::~message_lock() {
    if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> recipients_left(const std::vector<std::string>& recipients, const queue_state& st) {
    std::vector<std::string> left;
    for (const auto& r : recipients) {
        const bool done = std::find(st.delivered.begin(), st.delivered.end(), r) != st.delivered.end() ||
                          std::any_of(st.failed.begin(), st.failed.end(),
                                      [&r](const recipient_failure& f) { return f.address == r; });
        if (!done) left.push_back(r);
    }
    return left;
}

}  // namespace subrelay::relay
