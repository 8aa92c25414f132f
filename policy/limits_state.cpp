#include "policy/limits_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "relay/spool/durable_file.hpp"

namespace subrelay::policy {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view magic = "subrelay-limits ";
constexpr unsigned version = 1;
// Times are milliseconds since the Unix epoch, up to about the year 2255:
// any of them fits system_clock's nanoseconds.
constexpr std::int64_t max_millis = 9'000'000'000'000;
// A count of one message's recipients; more is not a number the relay wrote.
constexpr std::size_t max_count = 1'000'000'000;
// Far more than a day of events of a busy relay; more is not our file.
constexpr std::size_t max_file_size = 64 * 1024 * 1024;

std::int64_t to_millis(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
    return std::clamp<std::int64_t>(ms, 0, max_millis);  // out of range is long past or far ahead either way
}

std::chrono::system_clock::time_point from_millis(std::int64_t ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

bool plain(char c) { return c > ' ' && c != '%' && c != '\x7f'; }

std::string escape(std::string_view v) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : v) {
        if (plain(c)) {
            out += c;
            continue;
        }
        const auto b = static_cast<unsigned char>(c);
        out += '%';
        out += hex[b >> 4];
        out += hex[b & 0xf];
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> unescape(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '%') {
            if (!plain(v[i])) return std::nullopt;
            out += v[i];
            continue;
        }
        if (i + 2 >= v.size()) return std::nullopt;
        const int hi = hex_value(v[i + 1]);
        const int lo = hex_value(v[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

template <typename T>
bool parse_number(std::string_view v, T& out) {
    if (v.empty() || v.front() == '-' || v.front() == '+') return false;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc{} && end == v.data() + v.size();
}

// A piece of a damaged line for the message: short, control characters as '?'.
std::string quoted(std::string_view v) {
    std::string out = "\"";
    for (const char c : v.substr(0, 40)) {
        const auto b = static_cast<unsigned char>(c);
        out += b < 0x20 || b == 0x7f ? '?' : c;
    }
    return out + (v.size() > 40 ? "...\"" : "\"");
}

[[noreturn]] void damaged(std::size_t line, std::string_view what) {
    throw std::runtime_error("line " + std::to_string(line) + ": " + std::string(what));
}

std::chrono::system_clock::time_point parse_time(std::string_view v, std::size_t line) {
    std::int64_t ms = 0;
    if (!parse_number(v, ms)) damaged(line, quoted(v) + " is not a time (milliseconds since 1970)");
    if (ms > max_millis) damaged(line, "time " + quoted(v) + " is out of range");
    return from_millis(ms);
}

}  // namespace

std::string format_limits_state(const limiter_snapshot& s) {
    std::string out(magic);
    out += std::to_string(version) + "\n";
    for (const auto& a : s.accounts) {
        out += "account " + escape(a.identity) + "\n";
        for (const auto t : a.messages) out += "message " + std::to_string(to_millis(t)) + "\n";
        for (const auto& [t, n] : a.recipients)
            out += "recipients " + std::to_string(to_millis(t)) + " " + std::to_string(n) + "\n";
    }
    out += "end\n";
    return out;
}

limiter_snapshot parse_limits_state(std::string_view text) {
    limiter_snapshot s;
    std::size_t number = 0;
    bool ended = false;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        if (nl == std::string_view::npos) damaged(number + 1, "the file is cut short (no newline at its end)");
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++number;
        if (ended) damaged(number, "text after the end line");
        if (number == 1) {
            unsigned v = 0;
            if (!line.starts_with(magic)) damaged(number, "not a subrelay limits state file");
            if (!parse_number(line.substr(magic.size()), v) || v != version)
                damaged(number, "unknown version " + quoted(line.substr(magic.size())));
            continue;
        }
        const std::size_t sp = line.find(' ');
        const std::string_view key = line.substr(0, sp);
        const std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        if (key == "end" && sp == std::string_view::npos) {
            ended = true;
        } else if (key == "account") {
            auto identity = unescape(rest);
            if (!identity || identity->empty()) damaged(number, "bad account identity");
            s.accounts.push_back({std::move(*identity), {}, {}});
        } else if (key == "message" || key == "recipients") {
            if (s.accounts.empty()) damaged(number, std::string(key) + " before any account line");
            auto& a = s.accounts.back();
            if (key == "message") {
                a.messages.push_back(parse_time(rest, number));
                continue;
            }
            const std::size_t sp2 = rest.find(' ');
            if (sp2 == std::string_view::npos) damaged(number, "recipients without a count");
            const auto t = parse_time(rest.substr(0, sp2), number);
            std::size_t n = 0;
            if (!parse_number(rest.substr(sp2 + 1), n) || n == 0 || n > max_count)
                damaged(number, quoted(rest.substr(sp2 + 1)) + " is not a count of recipients");
            a.recipients.emplace_back(t, n);
        } else {
            damaged(number, "unknown line " + quoted(line));
        }
    }
    if (number == 0) damaged(1, "the file is empty");
    if (!ended) damaged(number, "the file is cut short (no end line)");
    return s;
}

std::optional<limiter_snapshot> load_limits_state(const fs::path& file) {
    relay::fd_guard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) {
        const int err = errno;
        if (err == ENOENT) return std::nullopt;
        throw std::runtime_error("cannot read " + file.string() + ": " + relay::errno_text(err));
    }
    std::string text;
    char buf[16384];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            throw std::runtime_error("cannot read " + file.string() + ": " + relay::errno_text(err));
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > max_file_size)
            throw std::runtime_error(file.string() + ": larger than " + std::to_string(max_file_size >> 20) +
                                     " MiB: not a subrelay limits state file");
    }
    try {
        return parse_limits_state(text);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(file.string() + ": " + e.what());
    }
}

void save_limits_state(const fs::path& file, const limiter_snapshot& s) {
    const std::string text = format_limits_state(s);
    // Hidden: never taken for the file itself.
    const fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".tmp");
    relay::write_file_atomically(file, tmp, {text}, 0600, relay::existing_tmp::replace, relay::file_mode::exact);
}

}  // namespace subrelay::policy
