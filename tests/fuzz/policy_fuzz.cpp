// The policy file parser and the engine built from a valid policy.
// Input: a policy file's text.
// Checked: load_text never throws and names the file in every problem; a
// valid policy written back with to_toml loads to an equal policy (what the
// CLI's edits rely on); the engine finds every account, decides AUTH with a
// refusal exactly when it refuses, and answers sender, recipient and binding
// questions without failing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/policy.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace subrelay::policy;

const std::filesystem::path file = "/nonexistent/policy.toml";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    load_result r = load_text(text, file);
    for (const auto& e : r.errors) {
        FUZZ_CHECK(!e.message.empty());
        FUZZ_CHECK(e.to_string().starts_with(file.string()));
    }
    if (!r.ok()) return 0;

    const std::string written = to_toml(r.policy);
    const load_result again = load_text(written, file);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again.policy == r.policy);

    const engine e(std::move(r.policy));
    for (const auto& m : e.file().mailboxes) {
        FUZZ_CHECK(e.find(m.identity) != nullptr);
        const auto* found = e.find_login(m.identity, "contoso.com");
        FUZZ_CHECK(found != nullptr);
        const auth_decision d = e.may_authenticate(*found);
        FUZZ_CHECK(d.allowed == !d.refusal.has_value());
        FUZZ_CHECK(!d.steps.empty());
        if (d.refusal) FUZZ_CHECK(d.refusal->code == 535);
        (void)e.limits_for(*found);
        (void)e.upstream_mailbox_for(m.identity);
        for (const auto& s : found->allowed_senders) {
            if (s.empty() || s.starts_with("*@")) continue;
            FUZZ_CHECK(!e.check_sender(found->identity, s).has_value());
        }
        (void)e.check_sender(m.identity, "");
        (void)e.envelope_sender(m.identity, "");
        (void)e.check_recipient(m.identity, "someone@example.com");
    }
    (void)e.binding_for("10.1.20.7", "submission", "0.0.0.0:587");
    (void)e.binding_for("2001:db8::7", "submissions", "[::]:465");
    return 0;
}
