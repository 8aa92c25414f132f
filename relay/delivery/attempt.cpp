#include "relay/delivery/attempt.hpp"

#include <algorithm>

#include "smtp/text/time.hpp"

namespace subrelay::relay {

namespace {

constexpr std::size_t history_lines = 20;

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::vector<std::string> remaining(const spool_envelope& env, const queue_state& st) {
    std::vector<std::string> out;
    for (const auto& r : env.recipients) {
        if (contains(st.delivered, r)) continue;
        if (std::any_of(st.failed.begin(), st.failed.end(), [&](const recipient_failure& f) { return f.address == r; }))
            continue;
        out.push_back(r);
    }
    return out;
}

void note_attempt(queue_state& st, std::int64_t now, const std::string& reply, const std::string& upstream_reply,
                  const std::string& hint) {
    ++st.attempts;
    if (st.first_attempt == 0) st.first_attempt = now;
    st.last_reply = reply;
    if (!upstream_reply.empty()) st.last_upstream_reply = upstream_reply;
    st.hint = hint;
    st.history.push_back(text::iso8601_utc(now) + " attempt " + std::to_string(st.attempts) + ": " + reply);
    if (st.history.size() > history_lines)
        st.history.erase(st.history.begin(), st.history.end() - static_cast<std::ptrdiff_t>(history_lines));
}

std::string describe_duration(std::chrono::seconds d) {
    const auto s = d.count();
    if (s >= 86400 && s % 86400 == 0) return std::to_string(s / 86400) + (s == 86400 ? " day" : " days");
    if (s >= 3600 && s % 3600 == 0) return std::to_string(s / 3600) + (s == 3600 ? " hour" : " hours");
    return std::to_string(s) + (s == 1 ? " second" : " seconds");
}

void expire(queue_state& st, const std::vector<std::string>& to, const retry_schedule& s,
            const std::string& lane_reply) {
    const std::string& last = st.last_upstream_reply.empty() ? lane_reply : st.last_upstream_reply;
    const std::string why = "4.4.7 message expired after " + describe_duration(s.lifetime) + " in the queue" +
                            (last.empty() ? std::string() : "; last reply: " + last);
    for (const auto& r : to) st.failed.push_back({r, why});
}

recorded record_result(queue_state& st, const std::vector<std::string>& to, const smtp::message_result& r,
                       std::int64_t now, std::string_view mailbox, std::string_view hint) {
    const std::vector<std::string> delivered = r.delivered();
    for (const auto& a : delivered) st.delivered.push_back(a);
    for (const auto& rr : r.recipients) {
        if (contains(delivered, rr.address)) continue;
        const smtp::reply& why = rr.rcpt_reply.positive() ? r.final_reply : rr.rcpt_reply;
        if (why.permanent()) st.failed.push_back({rr.address, why.summary()});
    }
    if (r.recipients.empty() && r.final_reply.permanent()) {
        // MAIL itself was refused for good: every recipient shares its fate.
        for (const auto& a : to) st.failed.push_back({a, r.final_reply.summary()});
    }
    recorded out;
    out.reply_line = r.final_reply.summary();
    const classification c = classify(r.final_reply, r.recipients.empty() ? "mail" : "data", mailbox);
    out.hint = hint.empty() ? c.hint : std::string(hint);
    out.throttled = c.throttled;
    note_attempt(st, now, out.reply_line, out.reply_line, out.hint);
    return out;
}

recorded record_failure(queue_state& st, const std::string& failure, std::int64_t now, std::string_view mailbox) {
    recorded out;
    out.reply_line = failure;
    out.hint = classify(smtp::reply{}, "data", mailbox).hint;
    note_attempt(st, now, out.reply_line, "", out.hint);
    return out;
}

}  // namespace subrelay::relay
