#pragma once
// The delivery's one notion of time: every message waiting for a retry and
// every upstream mailbox waiting to be probed again or to end a pause has
// exactly one entry, keyed by name, ordered by when it is due (unix
// seconds). Setting a key again replaces its entry, so a rescheduled
// message can never fire at its old time. The delivery runs a single timer
// for earliest(). Pure: no clock, no I/O.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace subrelay::relay {

class due_queue {
public:
    // Due at `at`; replaces any earlier entry for `key`.
    void set(const std::string& key, std::int64_t at);
    // Removes the entry; false when there was none.
    bool erase(const std::string& key);
    [[nodiscard]] std::optional<std::int64_t> due_of(const std::string& key) const;
    // When the next entry is due; nullopt when the queue is empty.
    [[nodiscard]] std::optional<std::int64_t> earliest() const;
    // Removes and returns the keys due at `now` or before, earliest first.
    std::vector<std::string> take_due(std::int64_t now);
    [[nodiscard]] std::size_t size() const { return at_.size(); }
    [[nodiscard]] bool empty() const { return at_.empty(); }

private:
    std::set<std::pair<std::int64_t, std::string>> order_;
    std::map<std::string, std::int64_t> at_;
};

}  // namespace subrelay::relay
