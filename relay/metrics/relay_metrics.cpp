#include "relay/metrics/relay_metrics.hpp"

namespace subrelay::metrics {

relay_metrics::relay_metrics(registry& r)
    : reg(r),
      connections(r.counter("subrelay_connections_total",
                            "Connections to the SMTP listeners, by listener and outcome (accepted or why refused).",
                            {"listener", "outcome"})),
      tls_handshakes(r.counter("subrelay_tls_handshakes_total",
                               "TLS handshakes completed with devices, by protocol version and cipher.",
                               {"protocol", "cipher"})),
      tls_handshake_failures(r.counter("subrelay_tls_handshake_failures_total",
                                       "TLS handshakes with devices that failed or timed out, by listener.",
                                       {"listener"})),
      auth(r.counter("subrelay_auth_total",
                     "SMTP AUTH results, by result: ok, bad_credentials, lockout, tenant, mailbox, "
                     "security_defaults, policy, malformed, bad_mechanism, temporary.",
                     {"result"})),
      messages(r.counter("subrelay_messages_total",
                         "Messages accepted (250 after DATA) and refused, by result, SMTP stage and reply code.",
                         {"result", "stage", "code"})),
      accepted_bytes(r.counter("subrelay_accepted_bytes_total", "Bytes of the messages accepted into the spool.")),
      queue_messages(r.gauge("subrelay_queue_messages", "Messages in the queue, by upstream mailbox.",
                             {"upstream_mailbox"})),
      queue_oldest_age(r.gauge("subrelay_queue_oldest_message_age_seconds",
                               "Age of the oldest message in the queue, by upstream mailbox.", {"upstream_mailbox"})),
      delivery_attempts(r.counter("subrelay_delivery_attempts_total",
                                  "Delivery attempts, by result (sent, deferred, bounced, connection_failed) and "
                                  "the class of the upstream's reply (2xx, 4xx, 5xx, none).",
                                  {"result", "reply_class"})),
      delivery_latency(r.histogram("subrelay_delivery_latency_seconds",
                                   "Time from a message's acceptance to the upstream's 250 for its last recipient.",
                                   {}, {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400})),
      upstream_connections(r.gauge("subrelay_upstream_connections",
                                   "Upstream connections open or opening, by upstream mailbox.",
                                   {"upstream_mailbox"})),
      token_requests(r.counter("subrelay_token_requests_total", "Requests to the OAuth token endpoint, by profile.",
                               {"profile"})),
      token_failures(r.counter("subrelay_token_failures_total",
                               "Failed token requests, by profile and classified error (retryable, configuration, "
                               "sign_in_needed, other).",
                               {"profile", "error"})),
      spool_free_bytes(r.gauge("subrelay_spool_free_bytes", "Bytes free for the relay on the spool's file system.")),
      policy_reloads(r.counter("subrelay_policy_reloads_total", "Policy files read and put in force.")),
      policy_reload_failures(r.counter("subrelay_policy_reload_failures_total",
                                       "Policy reloads refused (invalid file, or a change not allowed); the previous "
                                       "policy stayed in force.")),
      cluster_shared(r.gauge("subrelay_cluster_limits_shared",
                             "1 while the limits are shared with the other nodes in Redis ([cluster]), 0 while "
                             "Redis is unreachable and this node keeps its share of each limit.")),
      cluster_transitions(r.counter("subrelay_cluster_redis_transitions_total",
                                    "Times Redis became reachable or unreachable ([cluster]).")) {}

std::string reply_class(std::string_view reply_line) {
    if (reply_line.empty() || reply_line[0] < '2' || reply_line[0] > '5') return "none";
    return std::string(1, reply_line[0]) + "xx";
}

void relay_metrics::delivery_attempt(std::string_view verdict, std::string_view reply_line,
                                     std::int64_t seconds_since_accept) {
    delivery_attempts.inc({std::string(verdict), reply_class(reply_line)});
    if (verdict == "sent") delivery_latency.observe(static_cast<double>(seconds_since_accept < 0 ? 0 : seconds_since_accept));
}

void relay_metrics::connection_failed(std::string_view upstream_reply) {
    delivery_attempts.inc({"connection_failed", reply_class(upstream_reply)});
}

void relay_metrics::note_accepted(std::uint64_t bytes) {
    messages.inc({"accepted", "data", "250"});
    accepted_bytes.inc({}, static_cast<double>(bytes));
}

void relay_metrics::refused(std::string_view stage, int code) {
    messages.inc({"refused", std::string(stage), std::to_string(code)});
}

relay_metrics& relay() {
    static registry r;
    static relay_metrics m(r);
    return m;
}

}  // namespace subrelay::metrics
