#pragma once
// The session's policy as the state machine sees it, with every refusal of
// a sender or a recipient counted in subrelay_messages_total.
#include <optional>
#include <string>

#include "relay/metrics/relay_metrics.hpp"
#include "smtp/server_session.hpp"

namespace subrelay::relay {

class counted_policy final : public smtp::server_policy {
public:
    explicit counted_policy(smtp::server_policy& inner) : inner_(inner) {}

    std::optional<smtp::reply> check_sender(const std::string& identity, const std::string& address) override {
        return counted("mail", inner_.check_sender(identity, address));
    }
    std::optional<smtp::reply> check_recipient(const std::string& identity, const std::string& sender,
                                               const std::string& address) override {
        return counted("rcpt", inner_.check_recipient(identity, sender, address));
    }

private:
    static std::optional<smtp::reply> counted(const char* stage, std::optional<smtp::reply> r) {
        if (r) metrics::relay().refused(stage, r->code);
        return r;
    }

    smtp::server_policy& inner_;
};

}  // namespace subrelay::relay
