#pragma once
// One synchronous connection to Redis (hiredis), used by shared_limits on
// its own thread only: connect with a timeout, authenticate, select the
// database, then one command at a time, each with the same timeout. A
// reply is copied out of hiredis's, so nothing of hiredis leaks out of
// this file pair.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"

struct redisContext;

namespace subrelay::cluster {

// A Redis reply.
struct reply {
    enum class kind { nil, integer, string, status, error, array };
    kind type = kind::nil;
    long long integer = 0;
    std::string text;              // string, status and error replies
    std::vector<reply> elements;   // array replies

    [[nodiscard]] bool is_error() const { return type == kind::error; }
};

class redis_connection {
public:
    // Connects to `endpoint`, sends AUTH (with its password) and SELECT (a
    // database other than 0). nullptr with `why` set on failure; `why`
    // never contains the password.
    static std::unique_ptr<redis_connection> open(const conf::redis_endpoint& endpoint,
                                                  std::chrono::milliseconds timeout, std::string& why);

    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // Sends one command and waits for its reply (an error reply is a
    // reply). nullopt when the connection failed (refused, closed, no
    // answer within the timeout), with `why` set; the connection is of no
    // further use then.
    std::optional<reply> command(const std::vector<std::string>& argv, std::string& why);

    [[nodiscard]] bool broken() const { return broken_; }

private:
    redis_connection(redisContext* context, std::chrono::milliseconds timeout)
        : context_(context), timeout_(timeout) {}

    // The reason of the context's error, in words.
    [[nodiscard]] std::string context_error(int saved_errno) const;

    redisContext* context_;
    std::chrono::milliseconds timeout_;
    bool broken_ = false;
};

// An error reply's text as a reason inside a log line: every occurrence
// of `secret` replaced by "***", without its final period.
std::string reason_of_error(std::string text, std::string_view secret);

}  // namespace subrelay::cluster
