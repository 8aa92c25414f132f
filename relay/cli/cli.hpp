#pragma once
// The `subrelay` command line: verbs and their options.
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"

namespace subrelay::relay {

// Runs the verb named by args (args[0] is the verb). Returns the exit status.
int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

// One word of a verb's command line, as every verb reads it: "--name=value"
// split into name and value, "-c" spelled "--config".
struct cli_word {
    std::string name;
    std::optional<std::string> value;
    [[nodiscard]] bool is_help() const { return name == "--help" || name == "-h"; }
};
cli_word split_cli_word(const std::string& word);
// The value of an option that takes one: the one after '=', else the next
// word (advancing i). nullopt when the command line ends first.
std::optional<std::string> take_value(const cli_word& w, const std::vector<std::string>& args, std::size_t& i);

// The configuration a verb works on; its problems (FILE: key: what) go to
// err and nullopt comes back.
std::optional<conf::config> load_config(const std::string& file, std::ostream& err);

// Small things the verbs print with.
std::string join(const std::vector<std::string>& words, std::string_view separator);
std::int64_t now_seconds();  // unix time

}  // namespace subrelay::relay
