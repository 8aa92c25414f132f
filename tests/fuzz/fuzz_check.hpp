#pragma once
// Helpers shared by the fuzz targets: an invariant check that stops the run
// (libFuzzer then saves the input), and the shape of SMTP replies on the wire.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace subrelay::fuzz {

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    std::abort();
}

// A reply as a server sends it: lines "DDD-text\r\n" ... "DDD text\r\n" with
// one code per reply, 200-599, and no CR or LF inside a line. `out` may hold
// several replies (pipelining).
inline bool well_formed_replies(std::string_view out) {
    int group = 0;  // the code of the multi-line reply being read, 0 between replies
    while (!out.empty()) {
        const auto end = out.find("\r\n");
        if (end == std::string_view::npos) return false;
        const std::string_view line = out.substr(0, end);
        out.remove_prefix(end + 2);
        if (line.size() < 4 || line.find_first_of("\r\n") != std::string_view::npos) return false;
        for (int i = 0; i < 3; ++i)
            if (line[i] < '0' || line[i] > '9') return false;
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code < 200 || code > 599) return false;
        if (group != 0 && code != group) return false;
        if (line[3] == '-')
            group = code;
        else if (line[3] == ' ')
            group = 0;
        else
            return false;
    }
    return group == 0;
}

}  // namespace subrelay::fuzz

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) ::subrelay::fuzz::fail(#cond, __FILE__, __LINE__); \
    } while (false)
