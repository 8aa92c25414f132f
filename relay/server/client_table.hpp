#pragma once
// Per client address, what the listeners need to keep one client from
// taking every session slot or guessing passwords (like Postfix's anvil):
// its open connections, its connection attempts in the current minute, its
// failed logins, and when a refusal of it was last logged. Pure bookkeeping with the time passed in; used from the
// listeners' event loop only (not thread-safe).
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace subrelay::relay {

class client_table {
public:
    using clock = std::chrono::steady_clock;

    struct limits {
        std::uint32_t max_connections = 20;       // open at once; 0: no limit
        std::uint32_t max_rate_per_minute = 60;   // attempts a minute; 0: no limit
        std::uint32_t max_auth_failures = 10;     // in auth_failure_window, then blocked; 0: no limit
    };
    enum class verdict { accept, too_many_connections, too_fast, blocked };
    static constexpr auto auth_failure_window = std::chrono::minutes(10);
    static constexpr auto first_block = std::chrono::minutes(1);   // then doubled, up to longest_block
    static constexpr auto longest_block = std::chrono::hours(1);

    explicit client_table(limits l) : limits_(l) {}

    // A connection attempt from `client` at `now`: counted in its rate;
    // when accepted, also counted as open until release().
    verdict admit(const std::string& client, clock::time_point now);
    void release(const std::string& client);

    // A failed AUTH from `client`: returns true when this one blocks it
    // (max_auth_failures within auth_failure_window). A blocked client is
    // refused at connect until its block ends; each new block lasts twice
    // as long as the one before.
    bool auth_failed(const std::string& client, clock::time_point now);
    // A successful AUTH: its failures are forgotten (not its block history).
    void auth_succeeded(const std::string& client);
    // Whether `client` is blocked at `now` for its failed logins.
    [[nodiscard]] bool blocked(const std::string& client, clock::time_point now) const;

    // Whether a refusal of `client` at `now` should be logged: once a
    // minute per client (1,900 identical lines were logged for one).
    bool log_refusal(const std::string& client, clock::time_point now);

    [[nodiscard]] std::uint32_t open(const std::string& client) const;
    [[nodiscard]] std::size_t size() const { return clients_.size(); }

private:
    struct entry {
        std::uint32_t open = 0;
        clock::time_point window_start{};
        std::uint32_t attempts = 0;          // in the window starting at window_start
        clock::time_point logged{};
        bool ever_logged = false;
        clock::time_point failures_since{};
        std::uint32_t failures = 0;          // AUTH failures since failures_since
        clock::time_point blocked_until{};
        clock::duration last_block{};        // zero: never blocked
    };
    limits limits_;
    std::unordered_map<std::string, entry> clients_;
    clock::time_point last_prune_{};
    void prune(clock::time_point now);
};

}  // namespace subrelay::relay
