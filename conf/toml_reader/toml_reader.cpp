#include "conf/toml_reader/toml_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace subrelay::toml_reader {

namespace {

bool is_bare_key(std::string_view key) {
    if (key.empty()) return false;
    return std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

}  // namespace

std::string toml_string(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out = "\"";
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\t': out += "\\t"; break;
            case '\n': out += "\\n"; break;
            case '\f': out += "\\f"; break;
            case '\r': out += "\\r"; break;
            default:
                if (u < 0x20 || u == 0x7f) {
                    out += "\\u00";
                    out += hex[u >> 4];
                    out += hex[u & 0xf];
                } else {
                    out += c;
                }
        }
    }
    out += '"';
    return out;
}

std::string join_key(std::string_view prefix, std::string_view key) {
    std::string k = is_bare_key(key) ? std::string(key) : toml_string(key);
    if (prefix.empty()) return k;
    std::string out(prefix);
    out += '.';
    out += k;
    return out;
}

std::string index_key(std::string_view prefix, std::size_t index) {
    std::string out(prefix);
    out += '[';
    out += std::to_string(index);
    out += ']';
    return out;
}

std::string_view type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::none: return "nothing";
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
    }
    return "an unknown type";
}

std::string type_mismatch(std::string_view expected, const toml::node& got) {
    std::string out = "expected ";
    out += expected;
    out += ", got ";
    out += type_name(got.type());
    return out;
}

std::optional<std::string> read_file(const std::filesystem::path& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        const int err = errno;
        error = std::string("cannot read file: ") + std::strerror(err);
        return std::nullopt;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) {
        error = "cannot read file";
        return std::nullopt;
    }
    return std::move(buf).str();
}

std::optional<toml::table> parse_document(std::string_view text, const std::filesystem::path& file, std::string& error) {
    try {
        return toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream message;
        message << "syntax error at line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
                << e.description();
        error = message.str();
        return std::nullopt;
    }
}

table_reader::table_reader(const toml::table& table, std::string prefix, std::vector<problem>& out)
    : table_(table), prefix_(std::move(prefix)), out_(out) {}

const toml::node* table_reader::get(std::string_view key) {
    if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
    return table_.get(key);
}

bool table_reader::read(std::string_view key, std::string& out) {
    const auto* node = get(key);
    if (node == nullptr) return false;
    if (const auto* s = node->as_string()) {
        out = s->get();
        return true;
    }
    error(key, type_mismatch("a string", *node));
    return false;
}

bool table_reader::read(std::string_view key, bool& out) {
    const auto* node = get(key);
    if (node == nullptr) return false;
    if (const auto* b = node->as_boolean()) {
        out = b->get();
        return true;
    }
    error(key, type_mismatch("a boolean", *node));
    return false;
}

bool table_reader::read(std::string_view key, std::vector<std::string>& out) {
    const auto* arr = array(key);
    if (arr == nullptr) return false;
    std::vector<std::string> values;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const auto& element = *arr->get(i);
        if (const auto* s = element.as_string()) {
            values.push_back(s->get());
        } else {
            out_.push_back({index_key(path(key), i), type_mismatch("a string", element)});
            ok = false;
        }
    }
    if (ok) out = std::move(values);
    return ok;
}

bool table_reader::read_integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) {
    const auto* node = get(key);
    if (node == nullptr) return false;
    const auto* i = node->as_integer();
    if (i == nullptr) {
        error(key, type_mismatch("an integer", *node));
        return false;
    }
    const std::int64_t v = i->get();
    if (v < min || v > max) {
        std::string message;
        const bool bounded = max < 1'000'000'000;  // a meaningful upper bound (e.g. a port)
        if (bounded) {
            message = "must be between " + std::to_string(min) + " and " + std::to_string(max);
        } else if (v > max) {
            message = "must be at most " + std::to_string(max);
        } else if (min == 1) {
            message = "must be greater than 0";
        } else {
            message = "must be at least " + std::to_string(min);
        }
        message += ", got " + std::to_string(v);
        error(key, std::move(message));
        return false;
    }
    out = v;
    return true;
}

const toml::table* table_reader::table(std::string_view key) {
    const auto* node = get(key);
    if (node == nullptr) return nullptr;
    if (const auto* t = node->as_table()) return t;
    error(key, type_mismatch("a table", *node));
    return nullptr;
}

const toml::array* table_reader::array(std::string_view key) {
    const auto* node = get(key);
    if (node == nullptr) return nullptr;
    if (const auto* a = node->as_array()) return a;
    error(key, type_mismatch("an array", *node));
    return nullptr;
}

void table_reader::error(std::string_view key, std::string message) {
    out_.push_back({path(key), std::move(message)});
}

void table_reader::finish() {
    for (const auto& [key, node] : table_) {
        const auto k = key.str();
        if (std::find(known_.begin(), known_.end(), k) == known_.end()) {
            out_.push_back({path(k), "unknown key"});
        }
    }
}

}  // namespace subrelay::toml_reader
