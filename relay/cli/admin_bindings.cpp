// Relay bindings: a network that submits as an account without AUTH:
// New-/Remove-/Get-RelayBinding.
#include "relay/cli/admin_context.hpp"
#include "relay/cli/admin_view.hpp"

namespace subrelay::relay::admin {

namespace {

constexpr const char* o_network = "network";
constexpr const char* o_listeners = "listeners";

bool same_network(const policy::network& a, const policy::network& b) {
    return a.address == b.address && a.prefix == b.prefix;
}

bool parse_network(const context& c, const std::string& text, policy::network& net) {
    std::string why;
    if (text.empty()) {
        c.fail() << "-Network is required\n";
        return false;
    }
    if (!policy::network::parse(text, net, why)) {
        c.fail() << "'" << text << "' " << why << '\n';
        return false;
    }
    return true;
}

}  // namespace

int new_relaybinding(context& c) {
    const auto text = c.opts.value(o_network);
    policy::network net;
    if (!parse_network(c, text, net)) return 1;
    const auto identity = c.opts.value(o_identity);
    if (identity.empty()) {
        c.fail() << "-Identity is required\n";
        return 1;
    }
    const auto listeners = c.opts.list(o_listeners);
    for (const auto& l : listeners) {
        conf::listen_address address;
        std::string why;
        if (l != "submission" && l != "submissions" && !conf::parse_listen_address(l, address, why)) {
            c.fail() << "listener '" << l << "': expected submission, submissions or HOST:PORT\n";
            return 1;
        }
    }
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            const auto* m = find_mailbox(p, identity);
            if (m == nullptr) return not_found(identity);
            for (const auto& b : p.bindings) {
                if (same_network(b.net, net)) {
                    return "A relay binding for " + b.network_text + " already exists (identity " + b.identity + ").";
                }
            }
            policy::binding b;
            b.network_text = text;
            b.net = net;
            b.identity = m->identity;
            b.listeners = listeners;
            p.bindings.push_back(std::move(b));
            return "";
        },
        true);
}

int remove_relaybinding(context& c) {
    const auto text = c.opts.value(o_network);
    policy::network net;
    if (!parse_network(c, text, net)) return 1;
    return apply_edit(
        c,
        [&](policy::policy_file& p) -> std::string {
            auto it = std::find_if(p.bindings.begin(), p.bindings.end(),
                                   [&](const policy::binding& b) { return same_network(b.net, net); });
            if (it == p.bindings.end()) return not_found(text);
            p.bindings.erase(it);
            return "";
        },
        false);
}

int get_relaybinding(context& c) {
    using policy::binding;
    static const property_table<binding> properties = {
        prop<binding>("Network", [](const binding& b) { return b.network_text; }),
        prop<binding>("Identity", [](const binding& b) { return b.identity; }),
        // No listeners named: every listener.
        {"Listeners", [](const binding& b) { return b.listeners.empty() ? std::string("All") : as_text(b.listeners); },
         [](const binding& b) { return as_json(b.listeners); }},
    };
    auto p = load_policy(c);
    if (!p) return 1;
    std::vector<const binding*> all;
    for (const auto& b : p->bindings) all.push_back(&b);
    show(c, properties, all);
    return 0;
}

}  // namespace subrelay::relay::admin
