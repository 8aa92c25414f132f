// The console's pages as functions of a request: sign-in, sessions, CSRF,
// roles, the three-way SMTP AUTH setting and its audit record, without a
// browser or a socket.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "auth/password.hpp"
#include "policy/audit.hpp"
#include "relay/console/console.hpp"
#include "relay/console/users.hpp"
#include "relay/spool/spool.hpp"
#include "tests/relay/temp_dir.hpp"

namespace subrelay::console {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class fake_backend : public backend {
public:
    explicit fake_backend(conf::config cfg) : cfg_(std::move(cfg)) { policy_changed(); }
    const conf::config& config() const override { return cfg_; }
    std::shared_ptr<const policy::engine> policy() const override { return engine_; }
    void policy_changed() override {
        auto loaded = policy::load_file(cfg_.policy.file);
        if (!loaded.ok()) throw std::runtime_error(loaded.errors.front().to_string());
        engine_ = std::make_shared<const policy::engine>(std::move(loaded.policy));
        ++reloads;
    }
    account_activity activity(std::string_view identity) const override {
        return identity == "scanner@contoso.com" ? account_activity{1764936000, 7} : account_activity{};
    }
    asio::awaitable<void> off_loop(const std::function<void()>& work) override {
        work();
        co_return;
    }
    bool sign_in_refused(const std::string& user, const std::string&) override { return user == locked; }
    void sign_in_failed(const std::string& user, const std::string&) override { failures.push_back(user); }
    void sign_in_succeeded(const std::string& user, const std::string&) override { successes.push_back(user); }
    asio::awaitable<boost::json::object> control(boost::json::object request) override {
        requests.push_back(request);
        const std::string verb(request.at("verb").as_string());
        if (verb == "status") {
            co_return boost::json::object{
                {"ok", true},
                {"now", 1764936000},
                {"messages", boost::json::object{{"20261205-abc", boost::json::object{{"status", "waiting"},
                                                                                      {"upstream_mailbox", "relay@contoso.com"},
                                                                                      {"received_at", 1764935000}}}}},
                {"lanes", boost::json::array{}}};
        }
        if (verb == "oauth-status") {
            co_return boost::json::object{
                {"ok", true},
                {"status", boost::json::object{{"sources", boost::json::array{boost::json::object{
                                                    {"profile", "default"}, {"mailbox", "relay@contoso.com"},
                                                    {"grant", "client_credentials"}, {"expires_at", 0},
                                                    {"last_error", "invalid_client"}, {"hint", "check the secret"}}}}}}};
        }
        boost::json::array results;
        for (const auto& id : request.at("ids").as_array()) {
            const bool there = id.as_string() != "20261205-gone";
            results.emplace_back(boost::json::object{
                {"id", id}, {"ok", there}, {"text", there ? "done" : "no message 20261205-gone in the queue"}});
        }
        co_return boost::json::object{{"ok", true}, {"results", std::move(results)}};
    }

    conf::config cfg_;
    std::shared_ptr<const policy::engine> engine_;
    int reloads = 0;
    std::string locked;
    std::vector<std::string> failures, successes;
    std::vector<boost::json::object> requests;
};

class console_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test_support::make_temp_dir("console-test");
        cfg_.policy.file = dir_ / "policy.toml";
        cfg_.spool.dir = dir_ / "spool";
        cfg_.admin.users_file = dir_ / "admin-users.toml";
        cfg_.upstream.mailbox = "relay@contoso.com";
        fs::create_directories(cfg_.spool.dir);
        std::ofstream(cfg_.policy.file) << "[organization]\nsmtp_client_authentication_disabled = true\n\n"
                                           "[[mailbox]]\nidentity = \"scanner@contoso.com\"\npassword_hash = '"
                                        << auth::hash_password("device-pass", "$6$")
                                        << "'\nsmtp_client_authentication_disabled = false\n\n"
                                           "[[mailbox]]\nidentity = \"printer@contoso.com\"\npassword_hash = '"
                                        << auth::hash_password("printer-pass", "$6$") << "'\n";
        const auto made = edit_users(cfg_.admin.users_file, [](users_file& u) {
            u.users.push_back({"alice", auth::hash_password("alice-pass", "$6$"), role::admin});
            u.users.push_back({"rita", auth::hash_password("rita-pass", "$6$"), role::reader});
            return std::string();
        });
        ASSERT_TRUE(made.ok);
        backend_ = std::make_unique<fake_backend>(cfg_);
        console_ = std::make_unique<web_console>(*backend_, [this] { return now_; }, [] { return std::int64_t{1764936000}; });
    }
    void TearDown() override { fs::remove_all(dir_); }

    response call(request r) {
        if (r.client_ip.empty()) r.client_ip = "127.0.0.1";
        asio::io_context io;
        auto f = asio::co_spawn(io, console_->handle(std::move(r)), asio::use_future);
        io.run();
        return f.get();
    }
    response get(const std::string& target, const std::string& cookie = {}) {
        return call({"GET", target, cookie, "", "", "", false});
    }
    response post(const std::string& target, const std::string& body, const std::string& cookie) {
        return call({"POST", target, cookie, "application/x-www-form-urlencoded", body, "", false});
    }
    static std::string header(const response& r, std::string_view name, std::size_t nth = 0) {
        for (const auto& [k, v] : r.headers)
            if (k == name && nth-- == 0) return v;
        return {};
    }
    // Signs in; returns the Cookie header to send after, and the CSRF token of its forms.
    std::pair<std::string, std::string> sign_in(const std::string& user, const std::string& password, bool tls = false) {
        const auto form = get("/signin");
        const std::string signin_cookie = header(form, "Set-Cookie");
        const std::string token = signin_cookie.substr(signin_cookie.find('=') + 1, 32);
        request r{"POST", "/signin", "subrelay_signin=" + token, "application/x-www-form-urlencoded",
                  "csrf=" + token + "&user=" + user + "&password=" + password, "", tls};
        const auto done = call(r);
        EXPECT_EQ(done.status, 303U) << done.body;
        const std::string set = header(done, "Set-Cookie");
        const std::string session = set.substr(0, set.find(';'));
        const auto page = get("/users", session);
        const auto at = page.body.find("name=\"csrf\" value=\"");
        EXPECT_NE(at, std::string::npos);
        return {session, page.body.substr(at + 19, 64)};
    }

    fs::path dir_;
    conf::config cfg_;
    web_console::clock::time_point now_{};
    std::unique_ptr<fake_backend> backend_;
    std::unique_ptr<web_console> console_;
};

TEST_F(console_test, pages_need_a_session) {
    for (const char* target : {"/", "/users", "/org", "/mailflow", "/audit", "/users/scanner%40contoso.com"}) {
        const auto r = get(target);
        EXPECT_EQ(r.status, 303U) << target;
        EXPECT_EQ(header(r, "Location"), "/signin") << target;
    }
    EXPECT_EQ(post("/org/smtp-auth", "smtp_auth=on", "").status, 403U);
}

TEST_F(console_test, every_response_has_the_security_headers) {
    for (const auto& r : {get("/signin"), get("/users"), get("/console.css")}) {
        EXPECT_NE(header(r, "Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);
        EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
        EXPECT_EQ(header(r, "Cache-Control"), "no-store");
    }
}

TEST_F(console_test, sign_in_sets_a_strict_http_only_cookie) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    EXPECT_EQ(backend_->successes, std::vector<std::string>{"alice"});
    const auto page = get("/users", cookie);
    EXPECT_EQ(page.status, 200U);
    EXPECT_NE(page.body.find("scanner@contoso.com"), std::string::npos);
    EXPECT_NE(page.body.find("alice (admin)"), std::string::npos);

    const auto form = get("/signin");
    const std::string c = header(form, "Set-Cookie");
    const std::string token = c.substr(c.find('=') + 1, 32);
    const auto done = call({"POST", "/signin", "subrelay_signin=" + token, "application/x-www-form-urlencoded",
                            "csrf=" + token + "&user=alice&password=alice-pass", "127.0.0.1", true});
    const std::string set = header(done, "Set-Cookie");
    EXPECT_NE(set.find("HttpOnly"), std::string::npos);
    EXPECT_NE(set.find("SameSite=Strict"), std::string::npos);
    EXPECT_NE(set.find("Secure"), std::string::npos);
    const auto plain = sign_in("alice", "alice-pass");
    (void)plain;
}

TEST_F(console_test, a_wrong_password_or_user_fails_alike_and_is_counted) {
    for (const char* user : {"alice", "nobody"}) {
        const auto form = get("/signin");
        const std::string c = header(form, "Set-Cookie");
        const std::string token = c.substr(c.find('=') + 1, 32);
        const auto r = post("/signin", "csrf=" + token + "&user=" + user + "&password=wrong", "subrelay_signin=" + token);
        EXPECT_EQ(r.status, 403U);
        EXPECT_NE(r.body.find("Your account or password is incorrect."), std::string::npos);
        EXPECT_TRUE(header(r, "Set-Cookie").starts_with("subrelay_signin="));
    }
    EXPECT_EQ(backend_->failures, (std::vector<std::string>{"alice", "nobody"}));
}

TEST_F(console_test, a_locked_user_is_refused_even_with_the_right_password) {
    backend_->locked = "alice";
    const auto form = get("/signin");
    const std::string c = header(form, "Set-Cookie");
    const std::string token = c.substr(c.find('=') + 1, 32);
    const auto r = post("/signin", "csrf=" + token + "&user=alice&password=alice-pass", "subrelay_signin=" + token);
    EXPECT_EQ(r.status, 403U);
    EXPECT_TRUE(backend_->successes.empty());
}

TEST_F(console_test, sign_in_without_its_form_token_is_refused) {
    const auto r = post("/signin", "csrf=abc&user=alice&password=alice-pass", "");
    EXPECT_EQ(r.status, 403U);
    EXPECT_NE(r.body.find("expired"), std::string::npos);
    EXPECT_TRUE(backend_->successes.empty());
}

TEST_F(console_test, a_form_without_the_csrf_token_is_refused_and_changes_nothing) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const std::string before = read(cfg_.policy.file);
    EXPECT_EQ(post("/users/scanner%40contoso.com/email-apps", "smtp_auth=", cookie).status, 403U);
    EXPECT_EQ(post("/users/scanner%40contoso.com/email-apps", "csrf=" + std::string(64, 'a'), cookie).status, 403U);
    EXPECT_EQ(read(cfg_.policy.file), before);
    EXPECT_FALSE(fs::exists(policy::audit_log_path(cfg_.spool.dir)));
}

TEST_F(console_test, the_email_apps_flyout_sets_each_of_the_three_values_and_records_the_cmdlet) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const auto flyout = get("/users/scanner%40contoso.com/email-apps", cookie);
    EXPECT_EQ(flyout.status, 200U);
    EXPECT_NE(flyout.body.find("Enabled for this mailbox, which overrides the organization&#39;s Disabled."),
              std::string::npos);
    EXPECT_NE(flyout.body.find("id=\"smtp-auth\" name=\"smtp_auth\" value=\"on\" checked>"), std::string::npos);

    // Unchecked: $true.
    auto r = post("/users/scanner%40contoso.com/email-apps", "csrf=" + csrf, cookie);
    EXPECT_EQ(r.status, 303U) << r.body;
    EXPECT_EQ(backend_->policy()->find("scanner@contoso.com")->smtp_client_authentication_disabled, std::optional<bool>(true));
    // The organization's: $null.
    r = post("/users/scanner%40contoso.com/email-apps", "csrf=" + csrf + "&follow_org=on&smtp_auth=on", cookie);
    EXPECT_EQ(r.status, 303U);
    EXPECT_EQ(backend_->policy()->find("scanner@contoso.com")->smtp_client_authentication_disabled, std::nullopt);
    EXPECT_NE(get("/users/scanner%40contoso.com/email-apps", cookie).body.find("Follows the organization&#39;s setting: Disabled."),
              std::string::npos);
    // Checked: $false.
    r = post("/users/scanner%40contoso.com/email-apps", "csrf=" + csrf + "&smtp_auth=on", cookie);
    EXPECT_EQ(backend_->policy()->find("scanner@contoso.com")->smtp_client_authentication_disabled, std::optional<bool>(false));

    const auto log = policy::read_audit_log(policy::audit_log_path(cfg_.spool.dir));
    ASSERT_EQ(log.size(), 3U);
    EXPECT_EQ(log[0].who, "alice (console)");
    EXPECT_EQ(log[0].what, "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $true");
    EXPECT_EQ(log[1].what, "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $null");
    EXPECT_EQ(log[2].what, "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false");
    EXPECT_EQ(backend_->reloads, 4);  // the first load and one per change
}

TEST_F(console_test, a_reader_sees_everything_and_changes_nothing) {
    auto [cookie, csrf] = sign_in("rita", "rita-pass");
    for (const char* target : {"/users", "/users/scanner%40contoso.com/email-apps", "/org", "/mailflow", "/audit"})
        EXPECT_EQ(get(target, cookie).status, 200U) << target;
    const auto flyout = get("/users/scanner%40contoso.com/email-apps", cookie);
    EXPECT_NE(flyout.body.find("disabled title=\"Readers cannot make changes\">Save changes"), std::string::npos);
    const std::string before = read(cfg_.policy.file);
    EXPECT_EQ(post("/users/scanner%40contoso.com/email-apps", "csrf=" + csrf, cookie).status, 403U);
    EXPECT_EQ(post("/org/smtp-auth", "csrf=" + csrf + "&smtp_auth=on", cookie).status, 403U);
    EXPECT_EQ(post("/mailflow/queue", "csrf=" + csrf + "&action=delete&id=20261205-abc", cookie).status, 403U);
    EXPECT_EQ(read(cfg_.policy.file), before);
    EXPECT_EQ(backend_->requests.size(), 2U);  // only the Mail flow page's status and tokens: no queue change
}

TEST_F(console_test, a_session_ends_when_idle_or_when_its_user_changes) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    now_ += 29min;
    EXPECT_EQ(get("/users", cookie).status, 200U);
    now_ += 31min;
    EXPECT_EQ(get("/users", cookie).status, 303U);

    auto again = sign_in("alice", "alice-pass");
    ASSERT_TRUE(edit_users(cfg_.admin.users_file, [](users_file& u) {
                    u.find("alice")->access = role::reader;
                    return std::string();
                }).ok);
    EXPECT_EQ(get("/users", again.first).status, 303U);
}

TEST_F(console_test, sign_out_ends_the_session) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const auto r = post("/signout", "csrf=" + csrf, cookie);
    EXPECT_EQ(r.status, 303U);
    EXPECT_NE(header(r, "Set-Cookie").find("Max-Age=0"), std::string::npos);
    EXPECT_EQ(get("/users", cookie).status, 303U);
}

TEST_F(console_test, add_user_shows_a_generated_password_once_and_stores_its_hash) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const auto r = post("/users/new", "csrf=" + csrf + "&identity=mfp%40contoso.com&mode=generate&smtp_auth=on", cookie);
    ASSERT_EQ(r.status, 200U) << r.body;
    const auto at = r.body.find("id=\"new-password\">");
    ASSERT_NE(at, std::string::npos);
    const std::string password = r.body.substr(at + 18, 24);
    const auto* m = backend_->policy()->find("mfp@contoso.com");
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(auth::verify_password(password, m->password_hash));
    EXPECT_EQ(m->smtp_client_authentication_disabled, std::optional<bool>(false));
    const std::string log = read(policy::audit_log_path(cfg_.spool.dir));
    EXPECT_NE(log.find("New-RelayAccount -Identity mfp@contoso.com"), std::string::npos);
    EXPECT_EQ(log.find(password), std::string::npos);
    EXPECT_EQ(log.find(m->password_hash), std::string::npos);

    const auto twice = post("/users/new", "csrf=" + csrf + "&identity=mfp%40contoso.com&mode=generate", cookie);
    EXPECT_EQ(twice.status, 400U);
    EXPECT_NE(twice.body.find("already exists"), std::string::npos);
    const auto mismatch = post("/users/new", "csrf=" + csrf + "&identity=x%40contoso.com&mode=typed&password=a&password2=b", cookie);
    EXPECT_EQ(mismatch.status, 400U);
    EXPECT_NE(mismatch.body.find("The passwords don&#39;t match."), std::string::npos);
}

TEST_F(console_test, reset_password_and_delete_user) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    auto r = post("/users/printer%40contoso.com/password", "csrf=" + csrf + "&mode=typed&password=new-one&password2=new-one", cookie);
    EXPECT_EQ(r.status, 303U) << r.body;
    EXPECT_TRUE(auth::verify_password("new-one", backend_->policy()->find("printer@contoso.com")->password_hash));
    r = post("/users/printer%40contoso.com/delete", "csrf=" + csrf, cookie);
    EXPECT_EQ(r.status, 303U);
    EXPECT_EQ(backend_->policy()->find("printer@contoso.com"), nullptr);
    EXPECT_EQ(get("/users/printer%40contoso.com", cookie).status, 404U);
}

TEST_F(console_test, an_invalid_edit_is_refused_with_the_reason_and_nothing_changes) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const std::string before = read(cfg_.policy.file);
    const auto r = post("/users/scanner%40contoso.com/settings",
                        "csrf=" + csrf + "&allowed_senders=not+an+address&max_messages_per_minute=", cookie);
    EXPECT_EQ(r.status, 409U);
    EXPECT_NE(r.body.find("allowed_senders"), std::string::npos) << r.body;
    EXPECT_EQ(read(cfg_.policy.file), before);
    EXPECT_EQ(post("/users/scanner%40contoso.com/settings", "csrf=" + csrf + "&max_messages_per_minute=lots", cookie).status,
              400U);
}

TEST_F(console_test, org_settings_change_the_organization) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    EXPECT_EQ(post("/org/smtp-auth", "csrf=" + csrf + "&smtp_auth=on", cookie).status, 303U);
    EXPECT_FALSE(backend_->policy()->file().org.smtp_client_authentication_disabled);
    EXPECT_EQ(post("/org/policies", "csrf=" + csrf + "&action=new&name=BlockSmtp", cookie).status, 303U);
    EXPECT_EQ(post("/org/default-policy", "csrf=" + csrf + "&policy=BlockSmtp", cookie).status, 303U);
    EXPECT_EQ(backend_->policy()->file().org.default_authentication_policy, "BlockSmtp");
    const auto removed = post("/org/policies", "csrf=" + csrf + "&action=remove&name=BlockSmtp", cookie);
    EXPECT_EQ(removed.status, 409U);
    EXPECT_NE(removed.body.find("default"), std::string::npos);
    const std::string log = read(policy::audit_log_path(cfg_.spool.dir));
    EXPECT_NE(log.find("Set-TransportConfig -SmtpClientAuthenticationDisabled $false"), std::string::npos);
    EXPECT_NE(log.find("New-AuthenticationPolicy -Name BlockSmtp"), std::string::npos);
}

TEST_F(console_test, mail_flow_shows_the_queue_and_tokens_and_acts_on_messages) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const auto page = get("/mailflow", cookie);
    EXPECT_NE(page.body.find("20261205-abc"), std::string::npos);
    EXPECT_NE(page.body.find("invalid_client"), std::string::npos);
    EXPECT_NE(page.body.find("check the secret"), std::string::npos);
    const auto r = post("/mailflow/queue", "csrf=" + csrf + "&action=hold&id=20261205-abc", cookie);
    EXPECT_EQ(r.status, 303U);
    const auto& last = backend_->requests.back();
    EXPECT_EQ(last.at("verb").as_string(), "hold");
    EXPECT_EQ(last.at("ids").as_array().at(0).as_string(), "20261205-abc");
    // A message that is gone meanwhile: said, with the queue as it is now.
    const auto gone = post("/mailflow/queue", "csrf=" + csrf + "&action=retry&id=20261205-gone&id=20261205-abc", cookie);
    EXPECT_EQ(gone.status, 409U);
    EXPECT_NE(gone.body.find("no message 20261205-gone in the queue"), std::string::npos);
    EXPECT_NE(gone.body.find("20261205-abc"), std::string::npos);
}

TEST_F(console_test, network_bindings_are_added_and_removed_on_the_account) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const std::string path = "/users/printer%40contoso.com/bindings";
    EXPECT_EQ(post(path, "csrf=" + csrf + "&action=new&network=10.1.20.0%2F24&listeners=submission", cookie).status, 303U);
    ASSERT_EQ(backend_->policy()->file().bindings.size(), 1U);
    EXPECT_EQ(backend_->policy()->file().bindings[0].identity, "printer@contoso.com");
    EXPECT_EQ(backend_->policy()->file().bindings[0].listeners, std::vector<std::string>{"submission"});
    const auto twice = post("/users/scanner%40contoso.com/bindings", "csrf=" + csrf + "&action=new&network=10.1.20.0%2F24", cookie);
    EXPECT_EQ(twice.status, 409U);
    EXPECT_NE(twice.body.find("already exists (identity printer@contoso.com)"), std::string::npos);
    EXPECT_EQ(post(path, "csrf=" + csrf + "&action=new&network=10.1.20.300%2F24", cookie).status, 400U);
    EXPECT_EQ(post(path, "csrf=" + csrf + "&action=new&network=10.1.21.0%2F24&listeners=nowhere", cookie).status, 400U);
    // The account of a binding is deleted only once the binding is gone.
    const auto del = post("/users/printer%40contoso.com/delete", "csrf=" + csrf, cookie);
    EXPECT_EQ(del.status, 409U);
    EXPECT_NE(del.body.find("remove the binding first"), std::string::npos);
    EXPECT_EQ(post(path, "csrf=" + csrf + "&action=remove&network=10.1.20.0%2F24", cookie).status, 303U);
    EXPECT_TRUE(backend_->policy()->file().bindings.empty());
    const std::string log = read(policy::audit_log_path(cfg_.spool.dir));
    EXPECT_NE(log.find("New-RelayBinding -Network 10.1.20.0/24"), std::string::npos);
    EXPECT_NE(log.find("Remove-RelayBinding -Network 10.1.20.0/24"), std::string::npos);
}

TEST_F(console_test, a_queued_message_is_shown_like_queue_show) {
    relay::spool spool(cfg_.spool.dir);
    spool.open();
    relay::spool_envelope env;
    env.sender = "scanner@contoso.com";
    env.recipients = {"bob@example.org", "carol@example.org"};
    env.identity = "scanner@contoso.com";
    env.upstream_mailbox = "relay@contoso.com";
    env.client_address = "10.1.20.7";
    env.received_at = 1764935000;
    const std::string id = spool.store(env, "Subject: <scan>\r\nFrom: scanner@contoso.com\r\n\r\nsecret body\r\n");
    auto [cookie, csrf] = sign_in("rita", "rita-pass");
    const auto page = get("/mailflow/" + id, cookie);
    ASSERT_EQ(page.status, 200U) << page.body;
    EXPECT_NE(page.body.find("bob@example.org\ncarol@example.org"), std::string::npos);
    EXPECT_NE(page.body.find("Subject: &lt;scan&gt;"), std::string::npos);
    EXPECT_EQ(page.body.find("secret body"), std::string::npos);  // the header section only
    EXPECT_NE(page.body.find("10.1.20.7"), std::string::npos);
    EXPECT_EQ(get("/mailflow/20990101-nothere", cookie).status, 404U);
    EXPECT_EQ(get("/mailflow/..%2Fpolicy.toml", cookie).status, 404U);
}

TEST_F(console_test, the_audit_page_filters) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    post("/users/scanner%40contoso.com/email-apps", "csrf=" + csrf, cookie);
    post("/org/smtp-auth", "csrf=" + csrf, cookie);
    auto page = get("/audit?identity=scanner", cookie);
    EXPECT_NE(page.body.find("Set-CASMailbox -Identity scanner@contoso.com"), std::string::npos);
    EXPECT_EQ(page.body.find("Set-TransportConfig"), std::string::npos);
    EXPECT_EQ(get("/audit?since=yesterday", cookie).status, 400U);
    page = get("/audit?since=2099-01-01", cookie);
    EXPECT_EQ(page.body.find("Set-CASMailbox"), std::string::npos);
}

TEST_F(console_test, active_users_shows_state_source_and_activity) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    const auto page = get("/users?search=SCANNER", cookie);
    EXPECT_NE(page.body.find("scanner@contoso.com"), std::string::npos);
    EXPECT_EQ(page.body.find("printer@contoso.com"), std::string::npos);
    EXPECT_NE(page.body.find("<td class=\"state on\">Enabled</td><td>Mailbox</td>"), std::string::npos);
    EXPECT_NE(page.body.find("<td>7</td>"), std::string::npos);
    const auto all = get("/users", cookie);
    EXPECT_NE(all.body.find("<td class=\"state off\">Disabled</td><td>Organization</td>"), std::string::npos);
}

TEST_F(console_test, other_methods_and_bodies_are_refused) {
    auto [cookie, csrf] = sign_in("alice", "alice-pass");
    EXPECT_EQ(call({"DELETE", "/users", cookie, "", "", "", false}).status, 405U);
    EXPECT_EQ(call({"POST", "/org/smtp-auth", cookie, "application/json", "{}", "", false}).status, 415U);
}

TEST(console_http, codecs) {
    EXPECT_EQ(path_segments("/users/a%40b.c%2Bx/email-apps?tab=mail"),
              (std::vector<std::string>{"users", "a@b.c+x", "email-apps"}));
    EXPECT_EQ(path_segments("/users/a+b"), (std::vector<std::string>{"users", "a+b"}));
    const auto f = parse_form("a=1&b=x+y%21&a=2&c");
    EXPECT_EQ(f.get("a"), "2");
    EXPECT_EQ(f.every("a"), (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(f.get("b"), "x y!");
    EXPECT_TRUE(f.has("c"));
    EXPECT_EQ(url_decode("%zz%4"), "%zz%4");
    EXPECT_EQ(url_encode("a@b c"), "a%40b%20c");
    EXPECT_EQ(cookie_value("x=1; subrelay_session=abc; y=2", "subrelay_session"), "abc");
    EXPECT_EQ(cookie_value("subrelay_sessionx=1", "subrelay_session"), "");
    EXPECT_EQ(html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    EXPECT_FALSE(same_secret("", ""));
    EXPECT_TRUE(same_secret("ab", "ab"));
    EXPECT_EQ(random_token(16).size(), 32U);
}

TEST(console_explanation, in_plain_words) {
    policy::policy_file p;
    p.org.smtp_client_authentication_disabled = true;
    policy::mailbox m;
    m.identity = "a@b.c";
    auto says = [&](const policy::policy_file& file) {
        const policy::engine e(file);
        return plain_explanation(e, *e.find("a@b.c"));
    };
    m.smtp_client_authentication_disabled = false;
    p.mailboxes = {m};
    EXPECT_EQ(says(p), "Enabled for this mailbox, which overrides the organization's Disabled.");
    p.mailboxes[0].smtp_client_authentication_disabled = std::nullopt;
    EXPECT_EQ(says(p), "Follows the organization's setting: Disabled.");
    p.org.smtp_client_authentication_disabled = false;
    p.mailboxes[0].smtp_client_authentication_disabled = true;
    EXPECT_EQ(says(p), "Disabled for this mailbox, which overrides the organization's Enabled.");
    p.org.security_defaults = true;
    EXPECT_NE(says(p).find("security defaults"), std::string::npos);
}

}  // namespace
}  // namespace subrelay::console

namespace subrelay::console {
namespace {

TEST(console_users_audit, a_users_change_has_its_cmdlet) {
    users_file before;
    before.users.push_back({"alice", "$6$a$hash", role::admin});
    before.users.push_back({"rita", "$6$r$hash", role::reader});
    users_file after = before;
    after.users[1].access = role::admin;
    after.users[0].password_hash = "$6$a$new";
    after.users.push_back({"bob", "$6$b$hash", role::reader});
    after.users.erase(after.users.begin());  // alice removed after all
    std::vector<std::string> cmdlets;
    for (const auto& c : user_changes(before, after)) cmdlets.push_back(policy::cmdlet_for(c));
    EXPECT_EQ(cmdlets, (std::vector<std::string>{"Remove-AdminUser -Identity alice", "Set-AdminUser -Identity rita -Role admin",
                                                 "New-AdminUser -Identity bob -Role reader -PasswordStdin"}));
    after = before;
    after.users[0].password_hash = "$6$a$new";
    EXPECT_EQ(policy::cmdlet_for(user_changes(before, after).at(0)), "Set-AdminUser -Identity alice -PasswordStdin");
}

}  // namespace
}  // namespace subrelay::console
