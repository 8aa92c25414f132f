#pragma once
// What a verb's run function gets from the command table (cli.cpp): its
// parsed command line, the streams, and the one way to read the configuration.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "relay/cli/options.hpp"

namespace subrelay::relay {

inline constexpr const char* default_config_file = "/etc/subrelay/subrelay.toml";

// One run of a verb, its options already parsed and checked.
struct invocation {
    std::string verb;   // as the command table names it: "queue", "get-casmailbox"
    std::string usage;  // its --help text
    parsed_options opts;
    std::istream& in;
    std::ostream& out;
    std::ostream& err;
    const std::vector<option_spec>* specs = nullptr;  // the options it takes, in the table's order

    // Starts an error line: "subrelay VERB: ".
    std::ostream& fail() const;
    // A command line the verb cannot use: the reason, then the usage, on
    // standard error. Returns the exit status for it, 2.
    int usage_error(std::string_view why) const;
    // --config FILE, or the default.
    [[nodiscard]] std::string config_file() const;
};

using run_fn = int (*)(invocation&);

// The configuration FILE, parsed and validated, with its errors and warnings,
// for the verbs that report problems themselves (check-config, test-upstream).
conf::parse_result read_config(const std::string& file);

// The configuration for a verb that needs a valid one: its problems
// ("FILE: key: what") go to err and nullopt comes back.
std::optional<conf::config> load_config(const std::string& file, std::ostream& err);

// The verbs (each in its own file; the admin verbs are in admin.hpp).
int run_check_config(invocation& v);   // check_config.cpp
int run_hash_password(invocation& v);  // hash_password.cpp
int run_queue(invocation& v);          // queue_cli.cpp
int run_oauth(invocation& v);          // oauth_cli.cpp
int run_test_upstream(invocation& v);  // test_upstream.cpp

// Small things the verbs print with.
std::string join(const std::vector<std::string>& words, std::string_view separator);
std::int64_t now_seconds();  // unix time

}  // namespace subrelay::relay
