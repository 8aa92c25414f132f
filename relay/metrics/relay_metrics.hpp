#pragma once
// The relay's metrics, named in one place (README "Monitoring" lists them).
// Sessions, listeners and the delivery count into relay(), each with one
// line where the event happens; the admin listener fills the gauges that
// are read from the delivery's state at scrape time, then exposes them all.
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/metrics/registry.hpp"

namespace subrelay::metrics {

struct relay_metrics {
    explicit relay_metrics(registry& r);

    registry& reg;
    counter_family& connections;            // listener, outcome
    counter_family& tls_handshakes;         // protocol, cipher
    counter_family& tls_handshake_failures; // listener
    counter_family& auth;                   // result
    counter_family& messages;               // result, stage, code
    counter_family& accepted_bytes;
    gauge_family& queue_messages;           // upstream_mailbox (scrape time)
    gauge_family& queue_oldest_age;         // upstream_mailbox (scrape time)
    counter_family& delivery_attempts;      // result, reply_class
    histogram_family& delivery_latency;
    gauge_family& upstream_connections;     // upstream_mailbox (scrape time)
    counter_family& token_requests;         // profile (scrape time)
    counter_family& token_failures;         // profile, error (scrape time)
    gauge_family& spool_free_bytes;         // (scrape time)
    counter_family& policy_reloads;
    counter_family& policy_reload_failures;
    gauge_family& cluster_shared;           // (scrape time; with [cluster] only)
    counter_family& cluster_transitions;    // (scrape time; with [cluster] only)

    // One attempt at a message ended: `verdict` "sent", "deferred" or
    // "bounced", `reply_line` the upstream's reply ("" if none). A message
    // sent whole adds its time since it was accepted to the latency.
    void delivery_attempt(std::string_view verdict, std::string_view reply_line, std::int64_t seconds_since_accept);
    // A connection to an upstream mailbox could not be set up.
    void connection_failed(std::string_view upstream_reply);
    // A message of `bytes` was accepted (250 after DATA).
    void note_accepted(std::uint64_t bytes);
    // A reply ("550 5.7.60 ...") refused a message at `stage` ("mail", "rcpt", "data").
    void refused(std::string_view stage, int code);
};

// The process's metrics (its registry is registry_of_relay()).
relay_metrics& relay();

// "2xx", "4xx", "5xx" from a reply line's first digit; "none" without a reply.
std::string reply_class(std::string_view reply_line);

}  // namespace subrelay::metrics
