#include "relay/cli/verb.hpp"

#include <chrono>
#include <ostream>

namespace subrelay::relay {

std::ostream& invocation::fail() const { return err << "subrelay " << verb << ": "; }

int invocation::usage_error(std::string_view why) const {
    fail() << why << '\n' << usage;
    return 2;
}

std::string invocation::config_file() const {
    return opts.has("config") ? opts.value("config") : std::string(default_config_file);
}

conf::parse_result read_config(const std::string& file) { return conf::parse_file(file); }

std::optional<conf::config> load_config(const std::string& file, std::ostream& err) {
    auto parsed = read_config(file);
    if (!parsed.ok()) {
        for (const auto& e : parsed.errors) err << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(parsed.cfg);
}

std::string join(const std::vector<std::string>& words, std::string_view separator) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += separator;
        out += w;
    }
    return out;
}

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace subrelay::relay
