#include "policy/policy.hpp"

#include <array>

#include "conf/toml_reader.hpp"
#include "smtp/address.hpp"

namespace subrelay::policy {

namespace {

using conf::detail::problem;
using conf::detail::table_reader;

// crypt(3) method prefixes accepted for password_hash: yescrypt, bcrypt,
// SHA-512, SHA-256, scrypt, gost-yescrypt.
constexpr std::array<std::string_view, 8> hash_prefixes{"$y$", "$2b$", "$2a$", "$2y$", "$6$", "$5$", "$7$", "$gy$"};

bool looks_like_crypt_hash(std::string_view h) {
    for (auto prefix : hash_prefixes) {
        if (h.size() > prefix.size() && h.substr(0, prefix.size()) == prefix) {
            for (char c : h) {
                const auto u = static_cast<unsigned char>(c);
                if (u <= 0x20 || u >= 0x7f) return false;
            }
            return true;
        }
    }
    return false;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

void read_mailbox(const toml::table& t, const std::string& prefix, mailbox& m, std::vector<problem>& problems) {
    table_reader r(t, prefix, problems);
    if (r.read("identity", m.identity)) {
        if (m.identity.empty()) {
            r.error("identity", "is required");
        } else if (!smtp::valid_mailbox(m.identity)) r.error("identity", quote(m.identity) + " is not a valid address");
    } else if (!r.has("identity")) {
        r.error("identity", "is required");
    }
    if (r.read("password_hash", m.password_hash)) {
        // The value itself is never echoed: it is a secret.
        if (m.password_hash.empty()) {
            r.error("password_hash", "is required");
        } else if (!looks_like_crypt_hash(m.password_hash)) {
            r.error("password_hash", "must be a crypt(3) hash starting with $y$, $2b$, $2a$, $2y$, $6$, $5$, $7$ or $gy$");
        }
    } else if (!r.has("password_hash")) {
        r.error("password_hash", "is required");
    }
    bool disabled = false;
    if (r.read("smtp_client_authentication_disabled", disabled)) m.smtp_client_authentication_disabled = disabled;
    if (const auto* arr = r.array("allowed_senders")) {
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto& element = *arr->get(i);
            const auto key = conf::detail::index_key(r.path("allowed_senders"), i);
            const auto* s = element.as_string();
            if (s == nullptr) {
                problems.push_back({key, conf::detail::type_mismatch("a string", element)});
            } else if (!smtp::valid_mailbox(s->get())) {
                problems.push_back({key, quote(s->get()) + " is not a valid address"});
            } else {
                m.allowed_senders.push_back(s->get());
            }
        }
    }
    if (r.read("upstream_mailbox", m.upstream_mailbox) && !m.upstream_mailbox.empty() &&
        !smtp::valid_mailbox(m.upstream_mailbox)) {
        r.error("upstream_mailbox", quote(m.upstream_mailbox) + " is not a valid address");
    }
    r.finish();
}

}  // namespace

std::string load_error::to_string() const {
    std::string out = file.string();
    out += ": ";
    if (!key.empty()) {
        out += key;
        out += ": ";
    }
    out += message;
    return out;
}

load_result load_text(std::string_view text, const std::filesystem::path& file) {
    load_result result;
    std::string syntax_error;
    const auto root = conf::detail::parse_document(text, file, syntax_error);
    if (!root) {
        result.errors.push_back({file, "", std::move(syntax_error)});
        return result;
    }

    std::vector<problem> problems;
    table_reader r(*root, "", problems);
    if (const auto* org = r.table("organization")) {
        table_reader o(*org, "organization", problems);
        o.read("smtp_client_authentication_disabled", result.policy.org.smtp_client_authentication_disabled);
        o.finish();
    }
    if (const auto* node = r.get("mailbox")) {
        const auto* arr = node->as_array();
        if (arr == nullptr) {
            r.error("mailbox", conf::detail::type_mismatch("an array of tables ([[mailbox]])", *node));
        } else {
            for (std::size_t i = 0; i < arr->size(); ++i) {
                const auto& element = *arr->get(i);
                const auto prefix = conf::detail::index_key("mailbox", i);
                const auto* t = element.as_table();
                if (t == nullptr) {
                    problems.push_back({prefix, conf::detail::type_mismatch("a table", element)});
                    continue;
                }
                mailbox m;
                read_mailbox(*t, prefix, m, problems);
                if (!m.identity.empty()) {
                    for (std::size_t j = 0; j < result.policy.mailboxes.size(); ++j) {
                        if (smtp::iequals(result.policy.mailboxes[j].identity, m.identity)) {
                            problems.push_back({prefix + ".identity", quote(m.identity) + " is already used by " +
                                                                          conf::detail::index_key("mailbox", j)});
                            break;
                        }
                    }
                }
                result.policy.mailboxes.push_back(std::move(m));
            }
        }
    }
    r.finish();
    for (auto& p : problems) result.errors.push_back({file, std::move(p.key), std::move(p.message)});
    return result;
}

load_result load_file(const std::filesystem::path& file) {
    std::string read_error;
    const auto text = conf::detail::read_file(file, read_error);
    if (!text) {
        load_result result;
        result.errors.push_back({file, "", std::move(read_error)});
        return result;
    }
    return load_text(*text, file);
}

engine::engine(policy_file p) : policy_(std::move(p)) {
    for (std::size_t i = 0; i < policy_.mailboxes.size(); ++i) {
        index_.try_emplace(smtp::ascii_lower(policy_.mailboxes[i].identity), i);  // first one wins
    }
}

const mailbox* engine::find(std::string_view identity) const {
    const auto it = index_.find(smtp::ascii_lower(identity));
    return it == index_.end() ? nullptr : &policy_.mailboxes[it->second];
}

auth_decision engine::may_authenticate(const mailbox& m) const {
    auth_decision d;
    if (m.smtp_client_authentication_disabled.has_value()) {
        d.source = auth_source::mailbox;
        d.allowed = !*m.smtp_client_authentication_disabled;
        if (!d.allowed) d.refusal = smtp::replies::auth_disabled_for_mailbox();
        return d;
    }
    d.source = auth_source::organization;
    d.allowed = !policy_.org.smtp_client_authentication_disabled;
    if (!d.allowed) d.refusal = smtp::replies::auth_disabled_for_tenant();
    return d;
}

std::optional<smtp::reply> engine::check_sender(std::string_view identity, std::string_view address) const {
    const mailbox* m = find(identity);
    // Unknown accounts and the null sender are refused: devices must name a sender.
    if (m == nullptr || address.empty()) return smtp::replies::send_as_denied();
    if (m->allowed_senders.empty()) {
        if (smtp::iequals(address, m->identity)) return std::nullopt;
        return smtp::replies::send_as_denied();
    }
    for (const auto& sender : m->allowed_senders) {
        if (smtp::iequals(address, sender)) return std::nullopt;
    }
    return smtp::replies::send_as_denied();
}

std::string engine::upstream_mailbox_for(std::string_view identity) const {
    const mailbox* m = find(identity);
    return m == nullptr ? std::string() : m->upstream_mailbox;
}

}  // namespace subrelay::policy
