// `subrelay test-upstream [--profile NAME] [--mailbox X] [--config FILE]`:
// checks one upstream mailbox's whole path without sending mail: gets a
// token, connects, shows the TLS version and certificate, EHLO, AUTH XOAUTH2,
// and stops before MAIL. For a mailbox that goes through Microsoft Graph:
// the token, the HTTPS connection, and a sendMail of a message without
// recipients, which Graph refuses (400 ErrorInvalidRecipients) only once
// the app's Mail.Send reaches the mailbox. Every step is printed with a
// pass/fail mark and, on failure, the hint that says what to fix.

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <ostream>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <spdlog/spdlog.h>

#include "auth/https_client.hpp"
#include "auth/token_provider.hpp"
#include "conf/config.hpp"
#include "relay/cli/verb.hpp"
#include "relay/delivery/credentials.hpp"
#include "relay/delivery/graph_rules.hpp"
#include "relay/server/logging.hpp"
#include "relay/delivery/rules.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/delivery/client_tls.hpp"
#include "relay/delivery/upstream.hpp"
#include "smtp/address.hpp"
#include "smtp/text/ascii.hpp"
#include "smtp/text/base64.hpp"

namespace subrelay::relay {

namespace asio = boost::asio;

namespace {

// What the command line asks for.
struct options {
    std::string config;
    std::string profile;
    std::string mailbox;
};

// The step lines: "[ ok ] step        what", "[FAIL] ...", detail lines under them.
class report {
public:
    explicit report(std::ostream& out) : out_(out) {}

    void ok(std::string_view step, std::string_view text) { line("[ ok ] ", step, text); }
    void fail(std::string_view step, std::string_view text) { line("[FAIL] ", step, text); }
    void skip(std::string_view step, std::string_view text) { line("[skip] ", step, text); }
    void warn(std::string_view step, std::string_view text) { line("[warn] ", step, text); }
    void detail(std::string_view label, std::string_view text) { line("       ", label, text); }
    void hint(std::string_view text) { detail("hint", text); }

private:
    void line(std::string_view mark, std::string_view label, std::string_view text) {
        std::string padded(label);
        if (padded.size() < 12) padded.resize(12, ' ');
        out_ << mark << padded << ' ' << text << '\n' << std::flush;
    }

    std::ostream& out_;
};

std::string tls_mode_text(conf::upstream_tls t) {
    switch (t) {
    case conf::upstream_tls::starttls: return "STARTTLS";
    case conf::upstream_tls::implicit: return "implicit TLS";
    case conf::upstream_tls::none: return "no TLS";
    }
    return {};
}

std::string grant_text(conf::oauth_grant g) {
    return g == conf::oauth_grant::refresh_token ? "refresh_token" : "client_credentials";
}

// "in 42 days", "in 1 day", "in less than a day", "EXPIRED".
std::string days_text(long days) {
    if (days < 0) return "EXPIRED";
    if (days == 0) return "in less than a day";
    return "in " + std::to_string(days) + (days == 1 ? " day" : " days");
}

bool lists(const conf::oauth_config& p, std::string_view mailbox) {
    for (const auto& m : p.mailboxes)
        if (text::iequals(m, mailbox)) return true;
    return false;
}

// The config with `mailbox` served by `profile` (--profile NAME given): the
// mailbox leaves every other profile's list and joins NAME's.
conf::config with_profile_for(conf::config cfg, const std::string& profile, const std::string& mailbox) {
    for (auto& p : cfg.oauth_profiles) {
        std::erase_if(p.mailboxes, [&](const std::string& m) { return text::iequals(m, mailbox); });
        if (p.name == profile) p.mailboxes.push_back(mailbox);
    }
    return cfg;
}

// What failed in upstream_connection::open().
struct open_failure {
    std::string stage;      // upstream_error::stage(), "token" for a token_error
    std::string text;
    smtp::reply reply;
    std::string hint;       // the token error's hint
};

class upstream_test {
public:
    upstream_test(options o, std::ostream& out, std::ostream& err) : o_(std::move(o)), r_(out), err_(err) {}

    int run() {
        auto parsed = read_config(o_.config);
        for (const auto& w : parsed.warnings) err_ << o_.config << ": " << w.key << ": warning: " << w.message << '\n';
        if (!parsed.ok()) {
            r_.fail("config", o_.config + ": " + std::to_string(parsed.errors.size()) + " problem(s)");
            for (const auto& e : parsed.errors) r_.detail("", e.to_string());
            r_.hint("fix the configuration (subrelay check-config lists the same problems)");
            return 1;
        }
        cfg_ = std::move(parsed.cfg);
        if (cfg_.upstream.kind == conf::upstream_kind::directory) {
            r_.fail("config", o_.config + ": upstream.kind = \"directory\": there is no upstream to test");
            r_.hint("the relay writes messages to " + cfg_.upstream.directory.string() +
                    "; set upstream.kind = \"smtp\" to relay them to Exchange Online or Gmail");
            return 1;
        }
        oauth_ = cfg_.upstream.auth == conf::upstream_auth::xoauth2;
        if (!choose()) return 1;
        if (!build_credentials()) return 1;

        std::optional<int> status;
        std::exception_ptr crashed;
        asio::co_spawn(io_, test(), [&status, &crashed](std::exception_ptr e, int s) {
            if (e) crashed = e;
            else status = s;
        });
        io_.run();
        if (crashed) std::rethrow_exception(crashed);
        return status.value_or(1);
    }

private:
    options o_;
    report r_;
    std::ostream& err_;
    conf::config cfg_;
    conf::config tested_;   // cfg_, with the mailbox moved to --profile's list
    bool oauth_ = true;
    std::string mailbox_;
    const conf::oauth_config* profile_ = nullptr;  // in tested_
    asio::io_context io_{1};   // the token sources and the connection run on it
    std::unique_ptr<upstream_credentials> credentials_;
    std::optional<asio::ssl::context> tls_;
    auth::token_source* tokens_ = nullptr;
    upstream_endpoint to_;

    // Step 1: the mailbox and the profile.
    bool choose() {
        const conf::oauth_config* asked = nullptr;
        if (!o_.profile.empty() && oauth_) {
            asked = cfg_.find_profile(o_.profile);
            if (asked == nullptr) {
                std::vector<std::string> names{cfg_.oauth.name};
                for (const auto& p : cfg_.oauth_profiles) names.push_back(p.name);
                r_.fail("config", "no OAuth profile named '" + o_.profile + "' in " + o_.config);
                r_.hint("the profiles are: " + join(names, ", ") + " (" + cfg_.oauth.name +
                        " is the [oauth] table, the others [oauth.profiles.NAME])");
                return false;
            }
        }
        mailbox_ = !o_.mailbox.empty()                           ? o_.mailbox
                   : asked != nullptr && !asked->mailboxes.empty() ? asked->mailboxes.front()
                                                                   : cfg_.upstream.mailbox;
        if (mailbox_.empty()) {
            r_.fail("config", "no upstream mailbox to test");
            r_.hint("give --mailbox ADDRESS or set upstream.mailbox");
            return false;
        }
        r_.ok("config", o_.config);
        r_.detail("mailbox", mailbox_);
        if (!oauth_) {
            if (!o_.profile.empty()) r_.warn("profile", "--profile is ignored: upstream.auth = \"none\" uses no OAuth");
            tested_ = cfg_;
            return true;
        }
        const conf::oauth_config& serving = cfg_.profile_for_mailbox(mailbox_);
        if (asked != nullptr && asked->name != serving.name) {
            std::string why = !asked->mailboxes.empty() && !lists(*asked, mailbox_)
                                  ? "profile " + asked->name + " does not list " + mailbox_ + " in its mailboxes"
                                  : mailbox_ + " is listed by profile " + serving.name;
            r_.warn("profile", why + ": the relay sends its mail with profile " + serving.name +
                                   "; testing profile " + asked->name + " as asked");
        }
        tested_ = asked != nullptr ? with_profile_for(cfg_, asked->name, mailbox_) : cfg_;
        profile_ = &tested_.profile_for_mailbox(mailbox_);
        r_.detail("profile", profile_->name + (asked != nullptr ? "" : " (the profile serving " + mailbox_ + ")"));
        r_.detail("grant", grant_text(profile_->grant));
        r_.detail("token URL", profile_->token_url.empty() ? "(none)" : profile_->token_url);
        return true;
    }

    // Step 1 continued: secrets, certificates and keys, the TLS context.
    bool build_credentials() {
        try {
            if (oauth_) {
                credentials_ = std::make_unique<upstream_credentials>(io_.get_executor(), tested_);
            } else {
                credentials_ = std::make_unique<upstream_credentials>(tested_, nullptr);
            }
            to_ = credentials_->endpoint_for(mailbox_);
        } catch (const std::exception& e) {
            r_.fail("credentials", e.what());
            r_.hint("fix the profile's settings named above (subrelay check-config reads them too)");
            return false;
        }
        try {
            tls_.emplace(make_client_context(tested_.upstream.ca_file));
        } catch (const std::exception& e) {
            r_.fail("credentials", std::string("upstream.ca_file: ") + e.what());
            r_.hint("upstream.ca_file must be a PEM file of CA certificates (leave it out for the system CAs)");
            return false;
        }
        if (!tested_.upstream.client_cert_file.empty()) {
            try {
                use_client_certificate(*tls_, tested_.upstream.client_cert_file, tested_.upstream.client_key_file);
            } catch (const std::exception& e) {
                r_.fail("credentials", std::string("upstream.client_cert_file: ") + e.what());
                r_.hint("upstream.client_cert_file and client_key_file must be a PEM certificate and its key");
                return false;
            }
        }
        return true;
    }

    [[nodiscard]] std::string endpoint_text() const {
        return to_.host + ":" + std::to_string(to_.port) + ", " + tls_mode_text(to_.tls);
    }

    // "upstream.host" / "oauth.profiles.NAME.smtp_host": where the endpoint is set.
    [[nodiscard]] std::string endpoint_key(std::string_view key) const {
        if (profile_ == nullptr || profile_->name == tested_.oauth.name) return "upstream." + std::string(key);
        return auth::profile_key(*profile_, "smtp_" + std::string(key));
    }

    asio::awaitable<int> test() {
        // Token sources are made on the loop they run on.
        if (oauth_) {
            try {
                tokens_ = credentials_->tokens_for(mailbox_);
            } catch (const std::exception& e) {
                r_.fail("credentials", e.what());
                r_.hint("fix the profile's settings named above (subrelay check-config reads them too)");
                co_return 1;
            }
        }
        if (tokens_ != nullptr) r_.ok("credentials", tokens_->status().grant);
        else r_.ok("credentials", oauth_ ? "read" : "none needed: upstream.auth = \"none\"");
        if (tested_.delivery_for_mailbox(mailbox_) == conf::upstream_kind::graph) {
            r_.detail("Graph", profile_->graph_url + " (scope " + profile_->scope + ")");
            if (!co_await token_step()) co_return 1;
            co_return co_await graph_steps();
        }
        if (!tested_.upstream.client_cert_file.empty())
            r_.detail("client cert", tested_.upstream.client_cert_file.string());
        r_.detail("SMTP", endpoint_text());

        if (!co_await token_step()) co_return 1;

        upstream_connection conn(tested_, to_, *tls_, tokens_, mailbox_);
        std::optional<open_failure> failed;
        try {
            co_await conn.open();
        } catch (const upstream_error& e) {
            failed = open_failure{e.stage(), e.what(), e.server_reply(), {}};
        } catch (const auth::token_error& e) {
            failed = open_failure{"token", e.what(), {}, e.hint()};
        } catch (const std::exception& e) {
            failed = open_failure{"connect", e.what(), {}, {}};
        }
        if (failed) {
            report_failure(conn, *failed);
            co_return 1;
        }
        report_connect();
        report_tls(conn, true);
        r_.ok("ehlo", join(conn.extensions(), " "));
        if (oauth_) r_.ok("auth", "AUTH XOAUTH2 as " + mailbox_ + ": accepted (235)");
        else r_.skip("auth", "upstream.auth = \"none\": the upstream trusts this relay's address or certificate");
        co_await conn.quit();
        r_.ok("quit", "stopped before MAIL: no message was sent");
        co_return 0;
    }

    // Microsoft Graph: connect, then a sendMail that cannot send anything.
    asio::awaitable<int> graph_steps() {
        const std::string url_key = auth::profile_key(*profile_, "graph_url");
        const std::string ca_key = auth::profile_key(*profile_, "ca_file");
        auth::https_session http(io_.get_executor(), profile_->graph_url, profile_->ca_file,
                                 std::chrono::seconds(tested_.upstream.connect_timeout_seconds));
        std::string failure;
        try {
            co_await http.connect();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        upstream_tls_facts facts;
        facts.established = http.tls().established;
        facts.version = http.tls().version;
        facts.cipher = http.tls().cipher;
        facts.verify_result = http.tls().verify_result;
        note_certificate(http.peer_certificate(), facts);
        if (!failure.empty()) {
            const bool handshake = failure.find("TLS handshake") != std::string::npos;
            if (handshake) r_.ok("connect", http.where());
            r_.fail(handshake ? "tls" : "connect", failure);
            if (handshake && !facts.verify_result.empty()) r_.detail("verified", facts.verify_result);
            r_.hint(handshake ? "check " + url_key + " and " + ca_key + " (empty: the system CAs)"
                              : "check that " + http.where() + " resolves and accepts connections (" + url_key +
                                    ") and that no firewall blocks outgoing HTTPS");
            co_return 1;
        }
        r_.ok("connect", http.where());
        r_.ok("tls", facts.version + ", cipher " + facts.cipher);
        if (!facts.subject.empty()) {
            r_.detail("certificate", facts.subject);
            r_.detail("issuer", facts.issuer);
            if (!facts.not_after.empty()) r_.detail("expires", facts.not_after + " (" + days_text(facts.days_left) + ")");
        }
        r_.detail("verified", facts.verify_result);

        // A message with no recipient: Graph checks the token, the
        // permission and the mailbox first, and then has nobody to send it to.
        const std::string req_body = text::base64_encode(
            "From: <" + mailbox_ + ">\r\nSubject: subrelay test-upstream (no recipients: nothing is sent)\r\n"
            "\r\nsubrelay test-upstream\r\n");
        auth::https_session::request req = graph_mime_post(graph_send_path(mailbox_), req_body);
        req.bearer_token = (co_await tokens_->get()).value;
        auth::http_response res;
        try {
            res = co_await http.send(std::move(req));
        } catch (const std::exception& e) {
            r_.fail("sendMail", e.what());
            r_.hint("the connection to " + http.where() + " broke off: try again, and check " + url_key);
            co_return 1;
        }
        graph_answer a;
        a.status = res.status;
        read_graph_error(res.body, a);
        const std::string said = std::to_string(a.status) + (a.error_code.empty() ? "" : " " + a.error_code);
        if (a.status == 400 && a.error_code == "ErrorInvalidRecipients") {
            r_.ok("sendMail", "Mail.Send reaches " + mailbox_ + ": Graph refused a message without recipients (" +
                                  said + "), so nothing was sent");
            co_return co_await draft_step(http, req_body);
        }
        if (a.status == 202) {
            r_.warn("sendMail", "Graph accepted a message without recipients (202): it reaches " + mailbox_ +
                                    ", and nobody can have received it");
            co_return co_await draft_step(http, req_body);
        }
        r_.fail("sendMail", "POST " + graph_send_path(mailbox_) + ": " + said +
                                (a.error_message.empty() ? "" : ": " + a.error_message));
        const graph_outcome o = classify_graph(a, mailbox_, true);
        r_.hint(!o.hint.empty() ? o.hint
                : a.status == 401
                    ? "Graph refused the token: the profile's scope must be " + profile_->scope
                    : "check " + url_key + " and that the app has Mail.Send (application) with admin consent");
        co_return 1;
    }

    // save_to_sent_items = false: the draft the delivery makes needs
    // Mail.ReadWrite. One without recipients is made and deleted at once.
    asio::awaitable<int> draft_step(auth::https_session& http, const std::string& body) {
        if (profile_->save_to_sent_items) {
            r_.skip("draft", "save_to_sent_items = true: one sendMail, and Graph keeps a copy in Sent Items");
            co_await http.close();
            co_return 0;
        }
        const std::string token = (co_await tokens_->get()).value;
        auth::https_session::request create = graph_mime_post(graph_messages_path(mailbox_), body);
        create.bearer_token = token;
        auth::http_response made;
        try {
            made = co_await http.send(std::move(create));
        } catch (const std::exception& e) {
            r_.fail("draft", e.what());
            r_.hint("the connection to " + http.where() + " broke off: try again");
            co_return 1;
        }
        const std::string draft = made.status == 201 ? read_created_id(made.body) : std::string();
        if (draft.empty()) {
            graph_answer a;
            a.status = made.status;
            read_graph_error(made.body, a);
            r_.fail("draft", "POST " + graph_messages_path(mailbox_) + ": " + std::to_string(a.status) +
                                 (a.error_code.empty() ? "" : " " + a.error_code));
            r_.hint(a.error_code == "ErrorAccessDenied" ? draft_access_hint(mailbox_)
                                                        : classify_graph(a, mailbox_, true).hint);
            co_await http.close();
            co_return 1;
        }
        auth::https_session::request del;
        del.method = "DELETE";
        del.path = graph_message_path(mailbox_, draft);
        del.bearer_token = token;
        int deleted = 0;
        try {
            deleted = (co_await http.send(std::move(del))).status;
        } catch (const std::exception&) {
            deleted = 0;
        }
        co_await http.close();
        if (deleted != 204 && deleted != 200) {
            r_.warn("draft", "Mail.ReadWrite reaches " + mailbox_ + ", but the test draft could not be deleted (" +
                                 std::to_string(deleted) + "): delete it from Drafts");
            co_return 0;
        }
        r_.ok("draft", "Mail.ReadWrite reaches " + mailbox_ +
                           ": a draft was made and deleted (save_to_sent_items = false sends through one)");
        co_return 0;
    }

    // Step 2: a token, as delivery gets it. The token itself is never shown.
    asio::awaitable<bool> token_step() {
        if (tokens_ == nullptr) {
            r_.skip("token", "upstream.auth = \"none\": no token needed");
            co_return true;
        }
        std::optional<auth::access_token> token;
        std::string failure;
        std::string hint;
        try {
            auth::access_token t = co_await tokens_->get();
            token = std::move(t);
        } catch (const auth::token_error& e) {
            failure = e.what();
            hint = e.hint();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!token) {
            r_.fail("token", failure);
            r_.hint(hint.empty() ? "check the profile's token_url, client_id and credential" : hint);
            co_return false;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::minutes>(token->expires_at - std::chrono::steady_clock::now());
        r_.ok("token", "access token for " + mailbox_ + " (" + std::to_string(token->value.size()) +
                           " characters, not shown), expires in " + std::to_string(left.count()) + " min");
        co_return true;
    }

    void report_connect() { r_.ok("connect", to_.host + ":" + std::to_string(to_.port)); }

    // The TLS step's lines (ok: the handshake completed).
    void report_tls(const upstream_connection& conn, bool ok) {
        const upstream_tls_facts& t = conn.tls_facts();
        if (to_.tls == conf::upstream_tls::none) {
            r_.skip("tls", "upstream.tls = \"none\": the connection is not encrypted");
            return;
        }
        if (ok) r_.ok("tls", t.version + ", cipher " + t.cipher + " (" + tls_mode_text(to_.tls) + ")");
        if (!t.subject.empty()) {
            r_.detail("certificate", (t.subject_cn.empty() ? "" : "CN=" + t.subject_cn + " (") + t.subject +
                                         (t.subject_cn.empty() ? "" : ")"));
            r_.detail("issuer", t.issuer);
            if (!t.not_after.empty()) r_.detail("expires", t.not_after + " (" + days_text(t.days_left) + ")");
        }
        if (!t.subject.empty() || t.established) {
            r_.detail("verified", t.verify_result == "ok" ? "ok, for host " + to_.host : t.verify_result);
        }
    }

    // Which step a failure of open() belongs to; the steps before it passed.
    [[nodiscard]] std::string failed_step(const upstream_connection& conn, const std::string& stage) const {
        if (stage == "tls" || stage == "starttls") return "tls";
        if (stage == "greeting" || stage == "ehlo") return "ehlo";
        if (stage == "auth" || stage == "token") return "auth";
        // "connect": resolving or connecting, or the connection broke or timed out later.
        if (!conn.connected()) return "connect";
        const bool tls_wanted = to_.tls != conf::upstream_tls::none;
        if (to_.tls == conf::upstream_tls::starttls && !conn.tls_facts().established && conn.extensions().empty())
            return "ehlo";
        if (tls_wanted && !conn.tls_facts().established) return "tls";
        if (conn.extensions().empty()) return "ehlo";
        return "auth";
    }

    void report_failure(const upstream_connection& conn, const open_failure& f) {
        const std::string step = failed_step(conn, f.stage);
        const bool tls_done = conn.tls_facts().established;
        const bool tls_wanted = to_.tls != conf::upstream_tls::none;
        if (step != "connect") report_connect();
        // STARTTLS comes after the first EHLO: a refusal there is not a TLS problem.
        if (step == "ehlo" && to_.tls == conf::upstream_tls::starttls && !tls_done) {
            // TLS was not reached.
        } else if (step != "connect" && step != "tls" && (tls_done || !tls_wanted)) {
            report_tls(conn, true);
        }
        if (step == "auth") r_.ok("ehlo", join(conn.extensions(), " "));

        std::string text = f.text;
        if (step == "auth" && f.reply.code != 0)
            text = "AUTH XOAUTH2 as " + mailbox_ + " refused: " + f.reply.summary();
        r_.fail(step, text);
        if (step == "tls") report_tls(conn, false);

        std::string hint = f.hint;
        if (hint.empty() && f.stage != "token") {
            // Without a reply (TLS, network), the failure's text is what there is to go by.
            const smtp::reply said = f.reply.code != 0 ? f.reply : smtp::reply(0, "", f.text);
            hint = classify(said, step, mailbox_).hint;
        }
        if (hint.empty()) hint = fallback_hint(step, f);
        r_.hint(hint);
    }

    [[nodiscard]] std::string fallback_hint(const std::string& step, const open_failure& f) const {
        const std::string port = std::to_string(to_.port);
        if (step == "connect")
            return "check that " + to_.host + " resolves and accepts connections on port " + port + " (" +
                   endpoint_key("host") + ", " + endpoint_key("port") +
                   ") and that no firewall blocks outgoing connections to port " + port;
        if (step == "tls")
            return "check " + endpoint_key("tls") + " (\"starttls\" for port 587, \"implicit\" for 465), "
                   "upstream.ca_file (empty: the system CAs) and " + endpoint_key("host");
        if (step == "ehlo")
            return "the server did not accept the session: check " + endpoint_key("host") + " and " +
                   endpoint_key("port") + ", and server.hostname (sent in EHLO)";
        if (f.text.find("does not offer AUTH XOAUTH2") != std::string::npos)
            return "the server does not offer XOAUTH2: check " + endpoint_key("host") +
                   ", or set upstream.auth = \"none\" for a connector that trusts this relay";
        return "check that the app may send as " + mailbox_ + " and that SMTP AUTH is enabled for it";
    }
};

// Warnings and errors of the token sources and the connection go to stderr.
void quiet_logging() {
    if (spdlog::get("subrelay") == nullptr) {
        setup_logging("warn");
        return;
    }
    spdlog::set_level(spdlog::level::warn);
}

}  // namespace

int run_test_upstream(invocation& v) {
    options o{v.config_file(), v.opts.value("profile"), v.opts.value("mailbox")};
    quiet_logging();
    try {
        upstream_test t(std::move(o), v.out, v.err);
        return t.run();
    } catch (const std::exception& e) {
        v.err << "subrelay test-upstream: " << e.what() << '\n';
        return 1;
    }
}

}  // namespace subrelay::relay
