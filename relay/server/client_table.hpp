#pragma once
// Per client address, what the listeners need to keep one client from
// taking every session slot (like Postfix's anvil): its open connections,
// its connection attempts in the current minute, and when a refusal of it
// was last logged. Pure bookkeeping with the time passed in; used from the
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
    };
    enum class verdict { accept, too_many_connections, too_fast };

    explicit client_table(limits l) : limits_(l) {}

    // A connection attempt from `client` at `now`: counted in its rate;
    // when accepted, also counted as open until release().
    verdict admit(const std::string& client, clock::time_point now);
    void release(const std::string& client);

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
    };
    limits limits_;
    std::unordered_map<std::string, entry> clients_;
    clock::time_point last_prune_{};
    void prune(clock::time_point now);
};

}  // namespace subrelay::relay
