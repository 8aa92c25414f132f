#include "relay/server/logging.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace subrelay::relay {

namespace {

bool key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

// Log messages carry what clients sent (names, addresses): JSON must be
// UTF-8, so a byte that does not belong to a well-formed sequence becomes
// U+FFFD.
std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = n != 0 && i + n <= s.size();
        for (std::size_t j = 1; ok && j < n; ++j) ok = (static_cast<unsigned char>(s[i + j]) & 0xC0) == 0x80;
        if (ok && n > 1) {
            // No overlong forms, no surrogates, nothing above U+10FFFF.
            std::uint32_t cp = c & (0x7F >> n);
            for (std::size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3F);
            static constexpr std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= least[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out.append("\xEF\xBF\xBD");
            ++i;
        }
    }
    return out;
}

// The JSON format: the time as the text format writes it, the level, the
// message, and its fields.
class json_formatter final : public spdlog::formatter {
public:
    json_formatter()
        : time_(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z", spdlog::pattern_time_type::local,
                                                            "")) {}

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        spdlog::memory_buf_t time;
        time_->format(msg, time);
        const auto level = spdlog::level::to_string_view(msg.level);
        const std::string line = json_log_line(std::string_view(time.data(), time.size()),
                                               std::string_view(level.data(), level.size()),
                                               std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(line.data(), line.data() + line.size());
        dest.push_back('\n');
    }
    [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }

private:
    std::unique_ptr<spdlog::pattern_formatter> time_;
};

}  // namespace

std::vector<std::pair<std::string, std::string>> log_fields(std::string_view m) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    while (i < m.size()) {
        // A key starts the message or follows a space.
        if (i > 0 && m[i - 1] != ' ') {
            ++i;
            continue;
        }
        std::size_t k = i;
        while (k < m.size() && key_char(m[k])) ++k;
        if (k == i || k >= m.size() || m[k] != '=') {
            i = std::max(k, i + 1);
            continue;
        }
        std::string key(m.substr(i, k - i));
        std::size_t v = k + 1;
        std::string value;
        if (v < m.size() && m[v] == '"') {
            std::size_t e = v + 1;
            for (; e < m.size() && m[e] != '"'; ++e) {
                if (m[e] == '\\' && e + 1 < m.size()) ++e;
                value.push_back(m[e]);
            }
            i = e + 1;
        } else {
            std::size_t e = v;
            while (e < m.size() && m[e] != ' ') ++e;
            value.assign(m.substr(v, e - v));
            // "id=ABC: the connection..." - the value is ABC.
            if (!value.empty() && (value.back() == ':' || value.back() == ';' || value.back() == ','))
                value.pop_back();
            i = e;
        }
        if (std::none_of(out.begin(), out.end(), [&](const auto& f) { return f.first == key; }))
            out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

std::string json_log_line(std::string_view time, std::string_view level, std::string_view message) {
    boost::json::object o;
    o["time"] = time;
    o["level"] = level;
    o["msg"] = valid_utf8(message);
    for (auto& [key, value] : log_fields(message))
        if (key != "time" && key != "level" && key != "msg") o[key] = valid_utf8(value);
    return boost::json::serialize(o);
}

bool setup_logging(std::string_view level, log_format format) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off") return false;
    auto logger = spdlog::stderr_logger_mt("subrelay");
    if (format == log_format::json)
        logger->set_formatter(std::make_unique<json_formatter>());
    else
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    return true;
}

}  // namespace subrelay::relay
