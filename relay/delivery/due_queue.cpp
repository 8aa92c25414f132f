#include "relay/delivery/due_queue.hpp"

namespace subrelay::relay {

void due_queue::set(const std::string& key, std::int64_t at) {
    auto [it, inserted] = at_.try_emplace(key, at);
    if (!inserted) {
        order_.erase({it->second, key});
        it->second = at;
    }
    order_.emplace(at, key);
}

bool due_queue::erase(const std::string& key) {
    auto it = at_.find(key);
    if (it == at_.end()) return false;
    order_.erase({it->second, key});
    at_.erase(it);
    return true;
}

std::optional<std::int64_t> due_queue::due_of(const std::string& key) const {
    auto it = at_.find(key);
    if (it == at_.end()) return std::nullopt;
    return it->second;
}

std::optional<std::int64_t> due_queue::earliest() const {
    if (order_.empty()) return std::nullopt;
    return order_.begin()->first;
}

std::vector<std::string> due_queue::take_due(std::int64_t now) {
    std::vector<std::string> out;
    while (!order_.empty() && order_.begin()->first <= now) {
        out.push_back(order_.begin()->second);
        at_.erase(out.back());
        order_.erase(order_.begin());
    }
    return out;
}

}  // namespace subrelay::relay
