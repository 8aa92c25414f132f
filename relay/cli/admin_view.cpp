#include "relay/cli/admin_view.hpp"

#include <algorithm>
#include <ostream>

namespace subrelay::relay::admin {

std::string as_text(const std::string& s) { return s; }
std::string as_text(const std::optional<std::string>& s) { return s.value_or(""); }
std::string as_text(bool b) { return b ? "True" : "False"; }
std::string as_text(std::optional<bool> b) { return b ? as_text(*b) : ""; }
std::string as_text(std::uint32_t n) { return std::to_string(n); }
std::string as_text(std::optional<std::uint32_t> n) { return n ? as_text(*n) : ""; }

// PowerShell's rendering of a multi-valued property: "{a, b}".
std::string as_text(const std::vector<std::string>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ", ";
        out += values[i];
    }
    return out + "}";
}

json::value as_json(const std::string& s) { return json::value(s); }
json::value as_json(const std::optional<std::string>& s) { return s ? json::value(*s) : json::value(nullptr); }
json::value as_json(bool b) { return json::value(b); }
json::value as_json(std::optional<bool> b) { return b ? json::value(*b) : json::value(nullptr); }
json::value as_json(std::uint32_t n) { return json::value(n); }
json::value as_json(std::optional<std::uint32_t> n) { return n ? json::value(*n) : json::value(nullptr); }

json::value as_json(const std::vector<std::string>& values) {
    json::array a;
    for (const auto& v : values) a.emplace_back(v);
    return a;
}

void format_list(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& properties) {
    std::size_t width = 0;
    for (const auto& [name, value] : properties) width = std::max(width, name.size());
    for (const auto& [name, value] : properties) {
        // PowerShell writes "Name : " even when the value is empty.
        out << name << std::string(width - name.size(), ' ') << " : " << value << '\n';
    }
}

}  // namespace subrelay::relay::admin
