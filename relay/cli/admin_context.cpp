#include "relay/cli/admin_context.hpp"

#include <ostream>

namespace subrelay::relay::admin {

int run(invocation& v, int (*verb)(context&)) {
    auto cfg = load_config(v.config_file(), v.err);
    if (!cfg) return 1;
    context c{v, std::move(*cfg)};
    return verb(c);
}

std::string not_found(std::string_view identity) {
    return "The operation couldn't be performed because object '" + std::string(identity) + "' couldn't be found.";
}

std::optional<policy::policy_file> load_policy(const context& c) {
    auto loaded = policy::load_file(c.cfg.policy.file);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors) c.err << e.to_string() << '\n';
        return std::nullopt;
    }
    return std::move(loaded.policy);
}

int apply_edit(const context& c, const policy::policy_change& change, bool create_missing) {
    std::string refusal;
    auto result = policy::edit_file(
        c.cfg.policy.file,
        [&](policy::policy_file& p) {
            refusal = change(p);
            return refusal;
        },
        create_missing);
    if (result.ok) return 0;
    if (!refusal.empty()) {
        c.fail() << refusal << '\n';
    } else {
        for (const auto& e : result.errors) c.err << e << '\n';
        if (result.errors.empty()) c.fail() << "the policy file was not changed\n";
    }
    return 1;
}

int nothing_to_change(const context& c, std::string_view settings) {
    c.fail() << "nothing to change: give " << settings << '\n';
    return 1;
}

}  // namespace subrelay::relay::admin
