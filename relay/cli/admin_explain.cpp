// `subrelay explain IDENTITY`: what the policy decides for an account, step
// by step (SMTP AUTH, senders, bindings, recipients, limits, upstream mailbox).
#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr const char* o_listener = "listener";
constexpr const char* o_from = "from";
constexpr const char* o_client = "client";

std::string limit_text(std::uint32_t n) { return n == 0 ? "unlimited" : std::to_string(n); }

}  // namespace

int explain(context& c) {
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "an identity is required (subrelay explain IDENTITY)\n";
        return 1;
    }
    // Which listener addresses to ask binding_for about.
    std::string kind = "submission";
    std::vector<std::string> addresses;
    if (c.opts.has(o_client)) {
        std::string why;
        const auto client = c.opts.value(o_client);
        if (!policy::network::parse_address(client)) {
            c.fail() << c.opts.spelling(o_client) << ": '" << client << "' is not an IP address\n";
            return 1;
        }
        const auto listener = c.opts.has(o_listener) ? c.opts.value(o_listener) : std::string("submission");
        auto texts = [](const std::vector<conf::listen_address>& list) {
            std::vector<std::string> out;
            for (const auto& a : list) out.push_back(a.to_string());
            return out;
        };
        if (listener == "submission" || listener == "submissions") {
            kind = listener;
            addresses = texts(listener == "submission" ? c.cfg.server.submission : c.cfg.server.submissions);
        } else {
            conf::listen_address wanted;
            if (!conf::parse_listen_address(listener, wanted, why)) {
                c.fail() << c.opts.spelling(o_listener) << ": expected submission, submissions or HOST:PORT\n";
                return 1;
            }
            const auto sub = texts(c.cfg.server.submission);
            const auto subs = texts(c.cfg.server.submissions);
            if (std::find(sub.begin(), sub.end(), wanted.to_string()) != sub.end()) {
                kind = "submission";
            } else if (std::find(subs.begin(), subs.end(), wanted.to_string()) != subs.end()) {
                kind = "submissions";
            } else {
                c.fail() << "'" << listener << "' is not a listener of " << c.cfg.source.string() << '\n';
                return 1;
            }
            addresses = {wanted.to_string()};
        }
        if (addresses.empty()) addresses.emplace_back();
    }

    auto p = load_policy(c);
    if (!p) return 1;
    const policy::engine engine(std::move(*p));
    const auto* m = engine.find(identity);
    if (m == nullptr) {
        c.fail() << not_found(identity) << '\n';
        return 1;
    }
    const auto decision = engine.may_authenticate(*m);
    c.out << "Identity: " << m->identity << '\n';
    c.out << "SMTP AUTH:\n";
    for (const auto& step : decision.steps) c.out << "  " << step << '\n';
    if (decision.refusal) c.out << "AUTH reply: " << decision.refusal->summary() << '\n';

    if (c.opts.has(o_from)) {
        const auto from = c.opts.value(o_from);
        if (auto refusal = engine.check_sender(m->identity, from)) {
            c.out << "Sender " << from << ": refused (" << refusal->summary() << ")\n";
        } else {
            c.out << "Sender " << from << ": allowed\n";
        }
    }
    if (c.opts.has(o_client)) {
        const auto client = c.opts.value(o_client);
        for (const auto& address : addresses) {
            c.out << "Client " << client << " on " << kind;
            if (!address.empty()) c.out << " (" << address << ")";
            if (const auto* b = engine.binding_for(client, kind, address)) {
                c.out << ": binding " << b->network_text << " (identity " << b->identity << ")\n";
            } else {
                c.out << ": no binding\n";
            }
        }
    }
    c.out << "Recipients: "
          << (m->allowed_recipient_domains.empty() ? std::string("any domain")
                                                   : as_text(m->allowed_recipient_domains))
          << '\n';
    // Whether the message's From: and Sender: must be allowed senders too, and who says so.
    c.out << "Header From/Sender: "
          << (engine.checks_header_from(*m) ? "checked against the allowed senders" : "not checked")
          << (m->check_header_from ? " (account's CheckHeaderFrom)" : " (organization's CheckHeaderFrom)") << '\n';
    const auto limits = engine.limits_for(*m);
    c.out << "Limits: MaxMessagesPerMinute " << limit_text(limits.max_messages_per_minute) << ", MaxRecipientsPerDay "
          << limit_text(limits.max_recipients_per_day) << ", MaxRecipientsPerMessage "
          << limit_text(limits.max_recipients_per_message) << '\n';
    auto upstream = engine.upstream_mailbox_for(m->identity);
    if (upstream.empty()) upstream = c.cfg.upstream.mailbox;
    if (!upstream.empty()) c.out << "Upstream mailbox: " << upstream << '\n';
    return 0;
}

}  // namespace subrelay::relay::admin
