#pragma once
// What the config and policy parsers share (subrelay::toml_reader): reading
// typed values from a toml++ table while collecting every problem with its
// full key path ("server.submission[1]", "mailbox[2].identity"), and
// writing TOML strings and keys. Its interface is toml++'s types, so a
// library that uses it links toml++ too.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace subrelay::toml_reader {

struct problem {
    std::string key;       // full key path; empty for file-level problems
    std::string message;
};

// A TOML basic string ("..."), escaping what TOML requires: the quote, the
// backslash and control characters. '$' and '/' need no escaping.
std::string toml_string(std::string_view s);
// "a" + "b" -> "a.b"; "" + "b" -> "b". Keys that are not bare TOML keys are quoted.
std::string join_key(std::string_view prefix, std::string_view key);
// "a" + 1 -> "a[1]".
std::string index_key(std::string_view prefix, std::size_t index);
// "a string", "an integer", "a table", ...
std::string_view type_name(toml::node_type type);
// "expected an integer, got a string".
std::string type_mismatch(std::string_view expected, const toml::node& got);

// The whole content of file, or nullopt with error set to
// "cannot read file[: reason]".
std::optional<std::string> read_file(const std::filesystem::path& file, std::string& error);
// The parsed document, or nullopt with error set to
// "syntax error at line N, column M: description". file names the source
// in toml++'s own diagnostics.
std::optional<toml::table> parse_document(std::string_view text, const std::filesystem::path& file, std::string& error);

// Reads the keys of one table. Every key that is read (or merely asked
// for) is "known"; finish() reports the rest as "unknown key".
class table_reader {
public:
    table_reader(const toml::table& table, std::string prefix, std::vector<problem>& out);

    // The node for key (marking it known), or nullptr when absent.
    const toml::node* get(std::string_view key);
    bool has(std::string_view key) const { return table_.contains(key); }

    // Each returns true when the key was present and valid (out is set);
    // false when absent (out untouched, no problem) or invalid (problem added).
    bool read(std::string_view key, std::string& out);
    bool read(std::string_view key, bool& out);
    bool read(std::string_view key, std::vector<std::string>& out);
    bool read_integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max);

    // An integer stored into Int; max defaults to the largest value of Int
    // (capped at the largest TOML integer).
    template <typename Int>
    bool read_number(std::string_view key, Int& out, std::int64_t min, std::int64_t max = largest<Int>()) {
        std::int64_t v = 0;
        if (!read_integer(key, v, min, max)) return false;
        out = static_cast<Int>(v);
        return true;
    }

    template <typename Int>
    static constexpr std::int64_t largest() {
        constexpr auto toml_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
        constexpr auto int_max = static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
        return static_cast<std::int64_t>(int_max < toml_max ? int_max : toml_max);
    }

    // A sub-table; nullptr when absent or not a table (problem added then).
    const toml::table* table(std::string_view key);
    // An array; nullptr when absent or not an array (problem added then).
    const toml::array* array(std::string_view key);

    void error(std::string_view key, std::string message);
    [[nodiscard]] std::string path(std::string_view key) const { return join_key(prefix_, key); }
    [[nodiscard]] const std::string& prefix() const { return prefix_; }

    // Reports the keys never asked for.
    void finish();

private:
    const toml::table& table_;
    std::string prefix_;
    std::vector<problem>& out_;
    std::vector<std::string> known_;
};

}  // namespace subrelay::toml_reader
