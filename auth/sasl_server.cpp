#include "auth/sasl_server.hpp"

#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <sasl/saslutil.h>
#include <strings.h>

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

#include "auth/password.hpp"

namespace subrelay::auth {
namespace {

// The SASL service name (RFC 4422 / RFC 6409: "smtp" for submission).
constexpr const char* service_name = "smtp";
// Longest identity we accept from a client.
constexpr unsigned max_identity = 255;

// ---- global callbacks (sasl_server_init) ---------------------------------

// The name of our auxprop plugin, the only one libsasl2 may consult.
constexpr const char* auxprop_name = "subrelay";

// Our options, so that libsasl2 never depends on a system config file:
// - only PLAIN and LOGIN are offered;
// - passwords are checked by our SASL_CB_SERVER_USERDB_CHECKPASS callback,
//   which libsasl2 calls before any pwcheck method. If it fails, libsasl2
//   falls back to "auxprop", restricted to our auxprop plugin, which knows
//   no properties: the fallback never finds a password (no sasldb, no
//   saslauthd) and ends in SASL_NOUSER.
int sasl_getopt_cb(void* /*context*/, const char* plugin_name, const char* option, const char** result,
                   unsigned* len) {
    if (option == nullptr || result == nullptr) {
        return SASL_BADPARAM;
    }
    const char* value = nullptr;
    if (plugin_name == nullptr) {
        if (std::strcmp(option, "mech_list") == 0) {
            value = "PLAIN LOGIN";
        } else if (std::strcmp(option, "pwcheck_method") == 0) {
            value = "auxprop";
        } else if (std::strcmp(option, "auxprop_plugin") == 0) {
            value = auxprop_name;
        } else if (std::strcmp(option, "log_level") == 0) {
            value = "1";  // SASL_LOG_ERR
        }
    }
    if (value == nullptr) {
        return SASL_FAIL;  // "not set": libsasl2's built-in default applies
    }
    *result = value;
    if (len != nullptr) {
        *len = static_cast<unsigned>(std::strlen(value));
    }
    return SASL_OK;
}

// libsasl2's messages name users and mechanisms, never passwords; still,
// authentication failures are logged by the session, so only unusual
// errors and warnings are passed on.
int sasl_log_cb(void* /*context*/, int level, const char* message) {
    if (message == nullptr) {
        return SASL_OK;
    }
    switch (level) {
    case SASL_LOG_ERR:
        spdlog::warn("sasl: {}", message);
        break;
    case SASL_LOG_WARN:
        spdlog::debug("sasl: {}", message);
        break;
    default:
        break;
    }
    return SASL_OK;
}

// Plugins may be loaded; config files (treated as absent) and password
// databases (refused) may not.
int sasl_verifyfile_cb(void* /*context*/, const char* /*file*/, sasl_verify_type_t type) {
    switch (type) {
    case SASL_VRFY_PLUGIN:
        return SASL_OK;
    case SASL_VRFY_CONF:
        return SASL_CONTINUE;
    default:
        return SASL_FAIL;
    }
}

// ---- an auxprop plugin that knows nothing ---------------------------------
// Account data lives in the policy, not in libsasl2. Having a (empty)
// plugin keeps libsasl2's auxprop lookups (done for every identity it
// canonicalises) well-defined instead of failing with SASL_NOMECH.

int empty_auxprop_lookup(void* /*glob_context*/, sasl_server_params_t* /*sparams*/, unsigned /*flags*/,
                         const char* /*user*/, unsigned /*ulen*/) {
    return SASL_OK;
}

int empty_auxprop_init(const sasl_utils_t* /*utils*/, int max_version, int* out_version, sasl_auxprop_plug_t** plug,
                       const char* /*plugname*/) {
    static sasl_auxprop_plug_t plugin = [] {
        sasl_auxprop_plug_t p{};
        p.auxprop_lookup = &empty_auxprop_lookup;
        p.name = const_cast<char*>(auxprop_name);
        return p;
    }();
    if (max_version < SASL_AUXPROP_PLUG_VERSION || out_version == nullptr || plug == nullptr) {
        return SASL_BADVERS;
    }
    *out_version = SASL_AUXPROP_PLUG_VERSION;
    *plug = &plugin;
    return SASL_OK;
}

using sasl_cb_fn = int (*)();

template <typename F>
sasl_cb_fn as_cb(F* f) {
    return reinterpret_cast<sasl_cb_fn>(reinterpret_cast<void*>(f));
}

const sasl_callback_t* global_callbacks() {
    static const sasl_callback_t callbacks[] = {
        {SASL_CB_GETOPT, as_cb(&sasl_getopt_cb), nullptr},
        {SASL_CB_LOG, as_cb(&sasl_log_cb), nullptr},
        {SASL_CB_VERIFYFILE, as_cb(&sasl_verifyfile_cb), nullptr},
        {SASL_CB_LIST_END, nullptr, nullptr},
    };
    return callbacks;
}

// Real mutexes for libsasl2 (its built-in defaults are placeholders).
void* mutex_alloc() { return new (std::nothrow) std::mutex; }
int mutex_lock(void* m) {
    static_cast<std::mutex*>(m)->lock();
    return SASL_OK;
}
int mutex_unlock(void* m) {
    static_cast<std::mutex*>(m)->unlock();
    return SASL_OK;
}
void mutex_free(void* m) { delete static_cast<std::mutex*>(m); }

// Whether the space-separated `list` names `mechanism` (case-insensitive).
bool offers(std::string_view list, std::string_view mechanism) {
    while (!list.empty()) {
        const auto space = list.find(' ');
        const std::string_view name = list.substr(0, space);
        if (name.size() == mechanism.size() && strncasecmp(name.data(), mechanism.data(), name.size()) == 0) {
            return true;
        }
        if (space == std::string_view::npos) {
            break;
        }
        list.remove_prefix(space + 1);
    }
    return false;
}

std::once_flag init_once;
int init_result = SASL_FAIL;

}  // namespace

// ---- per connection -------------------------------------------------------

std::optional<std::string> malformed_credentials(std::string_view mechanism, int index, std::string_view response) {
    auto check_user = [](std::string_view user) -> std::optional<std::string> {
        if (user.empty()) return "an empty user name";
        if (user.size() > max_user_name) return "a user name over " + std::to_string(max_user_name) + " octets";
        for (const char c : user)
            if (static_cast<unsigned char>(c) < 32 || c == 127) return "a control character in the user name";
        return std::nullopt;
    };
    auto check_password = [](std::string_view password) -> std::optional<std::string> {
        if (password.empty()) return "an empty password";
        if (password.size() > max_password) return "a password over " + std::to_string(max_password) + " octets";
        if (password.find('\0') != std::string_view::npos) return "a NUL in the password";
        return std::nullopt;
    };
    if (mechanism == "PLAIN" && index == 0) {
        // authzid NUL authcid NUL passwd (RFC 4616)
        const auto first = response.find('\0');
        const auto second = first == std::string_view::npos ? first : response.find('\0', first + 1);
        if (second == std::string_view::npos) return std::string("PLAIN credentials without their two NULs");
        if (first > max_user_name) return "an authorization identity over " + std::to_string(max_user_name) + " octets";
        if (auto why = check_user(response.substr(first + 1, second - first - 1))) return why;
        return check_password(response.substr(second + 1));
    }
    if (mechanism == "LOGIN") {
        if (index == 0) return check_user(response);
        if (index == 1) return check_password(response);
    }
    return std::nullopt;
}

struct sasl_server::impl {
    password_lookup lookup;
    std::string mechanism;   // upper-case, of the exchange under way
    int responses = 0;       // client responses so far in it

    // Refuses what no account can have before libsasl2 sees it.
    std::optional<sasl_result> refuse_malformed(std::string_view response) {
        const auto why = malformed_credentials(mechanism, responses++, response);
        if (!why) return std::nullopt;
        sasl_result r;
        r.state = sasl_result::status::malformed;
        r.reason = *why;
        return r;
    }
    sasl_conn_t* conn = nullptr;
    sasl_callback_t callbacks[4]{};

    ~impl() {
        if (conn != nullptr) {
            sasl_dispose(&conn);
        }
    }

    // Called by libsasl2 (via _sasl_checkpass) with the canonical
    // authentication identity and the password the client sent.
    static int checkpass(sasl_conn_t* /*conn*/, void* context, const char* user, const char* pass,
                         unsigned passlen, struct propctx* /*propctx*/) {
        auto* self = static_cast<impl*>(context);
        if (self == nullptr || user == nullptr || pass == nullptr) {
            return SASL_BADPARAM;
        }
        const std::string_view password(pass, passlen);
        std::optional<password_record> account;
        try {
            account = self->lookup(std::string_view(user));
        } catch (const std::exception& e) {
            spdlog::error("sasl: password lookup failed: {}", e.what());
            return SASL_FAIL;
        }
        if (!account) {
            // Same work as for a known account, then fail.
            (void)verify_password(password, dummy_hash());
            return SASL_NOUSER;
        }
        // A locked-out account costs the guesser's victim no hashing at all.
        if (account->locked) return SASL_BADAUTH;
        return shared_verified_cache().verify(password, account->hash) ? SASL_OK : SASL_BADAUTH;
    }

    // Keeps the identity exactly as typed: no realm is appended and nothing
    // is split at '@' (libsasl2's internal canonicalisation still trims
    // surrounding white space).
    static int canon_user(sasl_conn_t* /*conn*/, void* /*context*/, const char* in, unsigned inlen,
                          unsigned /*flags*/, const char* /*user_realm*/, char* out, unsigned out_max,
                          unsigned* out_len) {
        if (in == nullptr || out == nullptr || out_len == nullptr) {
            return SASL_BADPARAM;
        }
        if (inlen == 0) {
            inlen = static_cast<unsigned>(std::strlen(in));
        }
        if (inlen > max_identity || inlen >= out_max) {
            return SASL_BADPROT;
        }
        if (std::memchr(in, '\0', inlen) != nullptr) {
            return SASL_BADPROT;
        }
        std::memcpy(out, in, inlen);
        out[inlen] = '\0';
        *out_len = inlen;
        return SASL_OK;
    }

    // A device authenticates as itself only: an authorization identity, if
    // given, must name the authentication identity (ASCII case-insensitive,
    // as account lookups are).
    static int proxy_policy(sasl_conn_t* conn, void* /*context*/, const char* requested_user, unsigned rlen,
                            const char* auth_identity, unsigned alen, const char* /*def_realm*/,
                            unsigned /*urlen*/, struct propctx* /*propctx*/) {
        if (requested_user == nullptr || rlen == 0 || requested_user[0] == '\0') {
            return SASL_OK;
        }
        if (auth_identity != nullptr && rlen == alen && strncasecmp(requested_user, auth_identity, rlen) == 0) {
            return SASL_OK;
        }
        sasl_seterror(conn, SASL_NOLOG, "authorization identity differs from authentication identity");
        return SASL_NOAUTHZ;
    }

    sasl_result map(int rc, const char* out, unsigned outlen) const {
        sasl_result r;
        switch (rc) {
        case SASL_CONTINUE:
            r.state = sasl_result::status::challenge;
            if (out != nullptr) {
                r.challenge.assign(out, outlen);
            }
            break;
        case SASL_OK: {
            const void* value = nullptr;
            if (sasl_getprop(conn, SASL_AUTHUSER, &value) != SASL_OK || value == nullptr) {
                if (sasl_getprop(conn, SASL_USERNAME, &value) != SASL_OK || value == nullptr) {
                    r.state = sasl_result::status::failure;
                    break;
                }
            }
            r.state = sasl_result::status::success;
            r.identity = static_cast<const char*>(value);
            break;
        }
        case SASL_BADPROT:
            r.state = sasl_result::status::protocol_error;
            break;
        default:
            r.state = sasl_result::status::failure;
            break;
        }
        return r;
    }
};

void sasl_server::global_init() {
    std::call_once(init_once, [] {
        sasl_set_mutex(&mutex_alloc, &mutex_lock, &mutex_unlock, &mutex_free);
        // No application name: libsasl2 then reads no <app>.conf at all.
        init_result = sasl_server_init(global_callbacks(), nullptr);
        if (init_result == SASL_OK) {
            init_result = sasl_auxprop_add_plugin(auxprop_name, &empty_auxprop_init);
        }
        // Computed now, so that the first unknown account costs no more than a known one.
        (void)dummy_hash();
        if (init_result != SASL_OK) {
            spdlog::error("sasl: initialisation failed: {}", sasl_errstring(init_result, nullptr, nullptr));
        }
    });
    if (init_result != SASL_OK) {
        throw std::runtime_error(std::string("SASL initialisation failed: ") +
                                 sasl_errstring(init_result, nullptr, nullptr));
    }
}

sasl_server::sasl_server(std::string hostname, password_lookup lookup) : impl_(std::make_unique<impl>()) {
    global_init();
    if (!lookup) {
        throw std::invalid_argument("sasl_server: no password lookup function");
    }
    impl_->lookup = std::move(lookup);
    impl_->callbacks[0] = {SASL_CB_SERVER_USERDB_CHECKPASS, as_cb(&impl::checkpass), impl_.get()};
    impl_->callbacks[1] = {SASL_CB_CANON_USER, as_cb(&impl::canon_user), impl_.get()};
    impl_->callbacks[2] = {SASL_CB_PROXY_POLICY, as_cb(&impl::proxy_policy), impl_.get()};
    impl_->callbacks[3] = {SASL_CB_LIST_END, nullptr, nullptr};

    // No user realm: identities such as scanner@contoso.com are used as typed.
    const int rc = sasl_server_new(service_name, hostname.empty() ? nullptr : hostname.c_str(), nullptr, nullptr,
                                   nullptr, impl_->callbacks, 0, &impl_->conn);
    if (rc != SASL_OK) {
        throw std::runtime_error(std::string("SASL connection setup failed: ") +
                                 sasl_errstring(rc, nullptr, nullptr));
    }
    // The relay enforces TLS itself before offering AUTH: plaintext
    // mechanisms are allowed and no SASL security layer is negotiated.
    sasl_security_properties_t props{};
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = 0;
    props.security_flags = 0;
    props.property_names = nullptr;
    props.property_values = nullptr;
    int prc = sasl_setprop(impl_->conn, SASL_SEC_PROPS, &props);
    if (prc == SASL_OK) {
        const sasl_ssf_t external = 0;
        prc = sasl_setprop(impl_->conn, SASL_SSF_EXTERNAL, &external);
    }
    if (prc != SASL_OK) {
        throw std::runtime_error(std::string("SASL connection setup failed: ") +
                                 sasl_errstring(prc, nullptr, nullptr));
    }
}

sasl_server::~sasl_server() = default;

sasl_result sasl_server::start(std::string_view mechanism, std::optional<std::string_view> initial_response) {
    // Mechanism names are short tokens (RFC 4422 3.1: up to 20 characters).
    if (mechanism.empty() || mechanism.size() > 20) {
        sasl_result r;
        r.state = sasl_result::status::bad_mechanism;
        return r;
    }
    // Whether the mechanism is offered is decided here, from the list: once
    // a mechanism runs, libsasl2 may report a failed password check as
    // SASL_NOMECH too (from its pwcheck fallback), which is a failure.
    if (!offers(mechanisms(), mechanism)) {
        sasl_result r;
        r.state = sasl_result::status::bad_mechanism;
        return r;
    }
    const std::string mech(mechanism);
    impl_->mechanism = mech;
    for (auto& c : impl_->mechanism) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    impl_->responses = 0;
    if (initial_response) {
        if (auto refused = impl_->refuse_malformed(*initial_response)) return *refused;
    }
    const char* out = nullptr;
    unsigned outlen = 0;
    const char* in = nullptr;
    unsigned inlen = 0;
    if (initial_response) {
        in = initial_response->data() != nullptr ? initial_response->data() : "";
        inlen = static_cast<unsigned>(initial_response->size());
    }
    const int rc = sasl_server_start(impl_->conn, mech.c_str(), in, inlen, &out, &outlen);
    return impl_->map(rc, out, outlen);
}

sasl_result sasl_server::step(std::string_view response) {
    if (auto refused = impl_->refuse_malformed(response)) return *refused;
    const char* out = nullptr;
    unsigned outlen = 0;
    const char* in = response.data() != nullptr ? response.data() : "";
    const int rc = sasl_server_step(impl_->conn, in, static_cast<unsigned>(response.size()), &out, &outlen);
    return impl_->map(rc, out, outlen);
}

std::string sasl_server::mechanisms() const {
    const char* list = nullptr;
    unsigned len = 0;
    int count = 0;
    if (sasl_listmech(impl_->conn, nullptr, "", " ", "", &list, &len, &count) != SASL_OK || list == nullptr) {
        return {};
    }
    return std::string(list, len);
}

}  // namespace subrelay::auth
