// OAuth profiles: [oauth] as the default, [oauth.profiles.NAME], what
// provider/cloud/tenant/grant imply, and what each grant requires.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "conf/config.hpp"
#include "messages.hpp"

namespace subrelay::conf {
namespace {

using ::testing::ElementsAre;

constexpr std::string_view head = R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
mailbox = "relay@contoso.com"
)";

parse_result parse(std::string_view oauth_tables) {
    return parse_text(std::string(head) + std::string(oauth_tables), "relay.toml");
}

using test_support::messages;

TEST(oauth_defaults, microsoft_clouds) {
    const auto global = derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::global, "contoso.onmicrosoft.com",
                                              oauth_grant::client_credentials);
    EXPECT_EQ(global.token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    EXPECT_EQ(global.device_code_url,
              "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode");
    EXPECT_EQ(global.scope, "https://outlook.office365.com/.default");
    EXPECT_EQ(global.smtp_host, "smtp.office365.com");

    const auto gov = derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::usgov, "t", oauth_grant::client_credentials);
    EXPECT_EQ(gov.token_url, "https://login.microsoftonline.us/t/oauth2/v2.0/token");
    EXPECT_EQ(gov.scope, "https://outlook.office365.us/.default");
    EXPECT_EQ(gov.smtp_host, "smtp.office365.us");

    const auto china = derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::china, "t", oauth_grant::client_credentials);
    EXPECT_EQ(china.token_url, "https://login.partner.microsoftonline.cn/t/oauth2/v2.0/token");
    EXPECT_EQ(china.scope, "https://partner.outlook.cn/.default");
    EXPECT_EQ(china.smtp_host, "smtp.partner.outlook.cn");
}

TEST(oauth_defaults, delegated_scope_and_google) {
    EXPECT_EQ(derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::global, "t", oauth_grant::refresh_token).scope,
              "https://outlook.office.com/SMTP.Send offline_access");
    const auto g = derive_oauth_defaults(oauth_provider::google, oauth_cloud::global, "", oauth_grant::refresh_token);
    EXPECT_EQ(g.token_url, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(g.device_code_url, "https://oauth2.googleapis.com/device/code");
    EXPECT_EQ(g.scope, "https://mail.google.com/");
    EXPECT_EQ(g.smtp_host, "smtp.gmail.com");
    const auto generic = derive_oauth_defaults(oauth_provider::generic, oauth_cloud::global, "", oauth_grant::client_credentials);
    EXPECT_TRUE(generic.token_url.empty());
    EXPECT_TRUE(generic.scope.empty());
}

TEST(oauth_profiles, tenant_alone_derives_the_endpoint_and_the_upstream_host) {
    const auto r = parse(R"(
[oauth]
cloud = "usgov"
tenant = "contoso.onmicrosoft.us"
client_id = "app"
client_secret_env = "SECRET"
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.oauth.name, "default");
    EXPECT_EQ(r.cfg.oauth.token_url, "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token");
    EXPECT_EQ(r.cfg.oauth.scope, "https://outlook.office365.us/.default");
    EXPECT_EQ(r.cfg.upstream.host, "smtp.office365.us");
    EXPECT_EQ(r.cfg.oauth.smtp_host, "smtp.office365.us");
}

TEST(oauth_profiles, explicit_values_win_over_derived_ones) {
    const auto ok = parse_text(R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
mailbox = "relay@contoso.com"
host = "127.0.0.1"
port = 2525
[oauth]
tenant = "contoso.onmicrosoft.com"
token_url = "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token"
scope = "api://custom/.default"
client_id = "app"
client_secret_file = "secret"
)",
                               "relay.toml");
    ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(messages(ok));
    EXPECT_EQ(ok.cfg.oauth.token_url, "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token");
    EXPECT_EQ(ok.cfg.oauth.scope, "api://custom/.default");
    EXPECT_EQ(ok.cfg.upstream.host, "127.0.0.1");
    EXPECT_EQ(ok.cfg.oauth.smtp_host, "127.0.0.1");
    EXPECT_EQ(ok.cfg.oauth.smtp_port, 2525);
}

TEST(oauth_profiles, named_profiles_serve_their_mailboxes) {
    const auto r = parse(R"(
[oauth]
tenant = "contoso.onmicrosoft.com"
client_id = "app"
certificate_file = "app.crt"
private_key_file = "app.key"
assertion_alg = "RS256"

[oauth.profiles.gmail]
provider = "google"
service_account_file = "sa.json"
mailboxes = ["reports@example.com"]
smtp_tls = "implicit"
smtp_port = 465

[oauth.profiles.delegated]
grant = "refresh_token"
tenant = "fabrikam.onmicrosoft.com"
client_id = "public-app"
refresh_token_file = "refresh-token"
mailboxes = ["scanner@fabrikam.com"]
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    ASSERT_EQ(r.cfg.oauth_profiles.size(), 2U);
    ASSERT_NE(r.cfg.find_profile("gmail"), nullptr);
    ASSERT_NE(r.cfg.find_profile("delegated"), nullptr);
    const auto& gmail = *r.cfg.find_profile("gmail");
    EXPECT_EQ(gmail.provider, oauth_provider::google);
    EXPECT_EQ(gmail.token_url, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(gmail.scope, "https://mail.google.com/");
    EXPECT_EQ(gmail.smtp_host, "smtp.gmail.com");
    EXPECT_EQ(gmail.smtp_port, 465);
    EXPECT_EQ(gmail.smtp_tls, upstream_tls::implicit);
    const auto& delegated = *r.cfg.find_profile("delegated");
    EXPECT_EQ(delegated.grant, oauth_grant::refresh_token);
    EXPECT_EQ(delegated.scope, "https://outlook.office.com/SMTP.Send offline_access");
    EXPECT_EQ(delegated.device_code_url,
              "https://login.microsoftonline.com/fabrikam.onmicrosoft.com/oauth2/v2.0/devicecode");
    EXPECT_TRUE(r.cfg.oauth.uses_certificate());
    EXPECT_EQ(r.cfg.oauth.assertion_alg, oauth_assertion_alg::rs256);

    EXPECT_EQ(&r.cfg.profile_for_mailbox("Reports@Example.com"), &gmail);
    EXPECT_EQ(&r.cfg.profile_for_mailbox("scanner@fabrikam.com"), &delegated);
    EXPECT_EQ(&r.cfg.profile_for_mailbox("relay@contoso.com"), &r.cfg.oauth);
    EXPECT_EQ(r.cfg.find_profile("default"), &r.cfg.oauth);
    EXPECT_EQ(r.cfg.find_profile("nope"), nullptr);
}

constexpr std::string_view default_profile = R"(
[oauth]
tenant = "contoso.onmicrosoft.com"
client_id = "app"
client_secret_file = "secret"
)";

std::vector<std::string> profile_errors(std::string_view profile_body) {
    return messages(parse(std::string(default_profile) + "[oauth.profiles.p]\n" + std::string(profile_body)));
}

TEST(oauth_profiles, each_grant_says_what_it_needs) {
    EXPECT_THAT(profile_errors("tenant = \"t\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.client_id: is required for grant = "client_credentials")",
                            "relay.toml: oauth.profiles.p: one of client_secret_file, client_secret_env, "
                            R"(client_secret_credential and certificate_file is required for grant = "client_credentials")"));
    EXPECT_THAT(profile_errors("grant = \"refresh_token\"\ntenant = \"t\"\nclient_id = \"a\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.refresh_token_file: is required for grant = "refresh_token")"));
    EXPECT_THAT(profile_errors("provider = \"google\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.service_account_file: is required for provider = \"google\" "
                            "with grant = \"client_credentials\" (a service account key)"));
    EXPECT_THAT(profile_errors("provider = \"google\"\ngrant = \"refresh_token\"\nclient_id = \"a\"\n"
                               "refresh_token_file = \"rt\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p: a client secret is required for Google's refresh-token grant"));
    EXPECT_THAT(profile_errors("provider = \"generic\"\nclient_id = \"a\"\nclient_secret_env = \"S\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.token_url: is required for provider = "generic")",
                            R"(relay.toml: oauth.profiles.p.scope: is required for provider = "generic")"));
    EXPECT_THAT(profile_errors("client_id = \"a\"\nclient_secret_env = \"S\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.tenant: is required to find the token endpoint (or set token_url)"));
}

TEST(oauth_profiles, conflicting_and_misplaced_keys) {
    const std::string ok = "tenant = \"t\"\nclient_id = \"a\"\n";
    EXPECT_THAT(profile_errors(ok + "client_secret_env = \"S\"\ncertificate_file = \"c\"\nprivate_key_file = \"k\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p: set either a client secret or certificate_file, not both"));
    EXPECT_THAT(profile_errors(ok + "certificate_file = \"c\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.private_key_file: certificate_file and private_key_file go together"));
    EXPECT_THAT(profile_errors(ok + "client_secret_env = \"S\"\nassertion_alg = \"RS256\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.assertion_alg: needs certificate_file"));
    EXPECT_THAT(profile_errors(ok + "certificate_file = \"c\"\nprivate_key_file = \"k\"\nassertion_alg = \"HS256\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.assertion_alg: expected one of "PS256", "RS256", got "HS256")"));
    EXPECT_THAT(profile_errors("provider = \"google\"\ncloud = \"usgov\"\nservice_account_file = \"sa.json\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.cloud: applies only to provider = "microsoft")"));
    EXPECT_THAT(profile_errors(ok + "client_secret_env = \"S\"\nservice_account_file = \"sa.json\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.service_account_file: applies only to provider = "google")"));
    EXPECT_THAT(profile_errors(ok + "client_secret_credential = \"../x\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.client_secret_credential: must be a credential name "
                            "(a file name under $CREDENTIALS_DIRECTORY)"));
    EXPECT_THAT(profile_errors(ok + "client_secret_env = \"S\"\nclient_secret_credential = \"c\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p: set only one of client_secret_file, client_secret_env and "
                            "client_secret_credential"));
    EXPECT_THAT(profile_errors(ok + "client_secret_env = \"S\"\nmailboxes = [\"not an address\"]\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.mailboxes: "not an address" is not a valid address)"));
}

TEST(oauth_profiles, default_profile_has_no_mailboxes_and_names_are_unique_per_mailbox) {
    EXPECT_THAT(messages(parse(std::string(default_profile) + "mailboxes = [\"a@b.example\"]\n")),
                ElementsAre("relay.toml: oauth.mailboxes: unknown key"));
    EXPECT_THAT(messages(parse(std::string(default_profile) + "[oauth.profiles.default]\nclient_id = \"x\"\n")),
                ElementsAre("relay.toml: oauth.profiles.default: \"default\" is the plain [oauth] table; give this "
                            "profile another name"));
    const std::string one = "tenant = \"t\"\nclient_id = \"a\"\nclient_secret_env = \"S\"\nmailboxes = [\"x@y.example\"]\n";
    EXPECT_THAT(messages(parse(std::string(default_profile) + "[oauth.profiles.p]\n" + one + "[oauth.profiles.q]\n" + one)),
                ElementsAre(R"(relay.toml: oauth.profiles.q.mailboxes: "x@y.example" is already served by profile "p")"));
}

TEST(oauth_profiles, incomplete_profiles_pass_when_no_upstream_needs_a_token) {
    const auto r = parse_text(R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "directory"
directory = "out"
[oauth.profiles.p]
provider = "google"
)",
                              "relay.toml");
    // The directory upstream needs no token: an incomplete profile is not an error then,
    // but a malformed key still is.
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    const auto bad = parse_text(R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "directory"
directory = "out"
[oauth.profiles.p]
provider = "yahoo"
)",
                                "relay.toml");
    EXPECT_THAT(messages(bad), ElementsAre(R"(relay.toml: oauth.profiles.p.provider: expected one of "microsoft", "google", "generic", got "yahoo")"));
}

// Microsoft Graph: upstream.kind = "graph" for every mailbox, or a profile's
// delivery = "graph" for its own.
TEST(oauth_defaults, graph_scope_and_url_per_cloud) {
    const auto global = derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::global, "t",
                                              oauth_grant::client_credentials, upstream_kind::graph);
    EXPECT_EQ(global.scope, "https://graph.microsoft.com/.default");
    EXPECT_EQ(global.graph_url, "https://graph.microsoft.com");
    const auto gov = derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::usgov, "t",
                                           oauth_grant::client_credentials, upstream_kind::graph);
    EXPECT_EQ(gov.scope, "https://graph.microsoft.us/.default");
    EXPECT_EQ(gov.graph_url, "https://graph.microsoft.us");
    const auto china = derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::china, "t",
                                             oauth_grant::client_credentials, upstream_kind::graph);
    EXPECT_EQ(china.scope, "https://microsoftgraph.chinacloudapi.cn/.default");
    EXPECT_EQ(china.graph_url, "https://microsoftgraph.chinacloudapi.cn");
    EXPECT_EQ(derive_oauth_defaults(oauth_provider::microsoft, oauth_cloud::global, "t", oauth_grant::refresh_token,
                                    upstream_kind::graph)
                  .scope,
              "https://graph.microsoft.com/Mail.Send offline_access");
}

// The head of a configuration whose upstream is Graph.
constexpr std::string_view graph_head = R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "graph"
mailbox = "relay@contoso.com"
)";

parse_result parse_graph(std::string_view rest) {
    return parse_text(std::string(graph_head) + std::string(rest), "relay.toml");
}

TEST(oauth_profiles, graph_upstream_uses_graph_for_every_mailbox) {
    const auto r = parse_graph(R"(
[oauth]
cloud = "usgov"
tenant = "contoso.onmicrosoft.us"
client_id = "app"
client_secret_env = "SECRET"
[oauth.profiles.smtp]
delivery = "smtp"
cloud = "usgov"
tenant = "contoso.onmicrosoft.us"
client_id = "app"
client_secret_env = "SECRET"
mailboxes = ["scanner-relay@contoso.com"]
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.upstream.kind, upstream_kind::graph);
    EXPECT_EQ(r.cfg.oauth.delivery, upstream_kind::graph);
    EXPECT_EQ(r.cfg.oauth.scope, "https://graph.microsoft.us/.default");
    EXPECT_EQ(r.cfg.oauth.graph_url, "https://graph.microsoft.us");
    ASSERT_EQ(r.cfg.oauth_profiles.size(), 1U);
    EXPECT_EQ(r.cfg.oauth_profiles[0].delivery, upstream_kind::smtp);
    EXPECT_EQ(r.cfg.oauth_profiles[0].scope, "https://outlook.office365.us/.default");
    EXPECT_EQ(r.cfg.delivery_for_mailbox("relay@contoso.com"), upstream_kind::graph);
    EXPECT_EQ(r.cfg.delivery_for_mailbox("other@contoso.com"), upstream_kind::graph);
    EXPECT_EQ(r.cfg.delivery_for_mailbox("Scanner-Relay@contoso.com"), upstream_kind::smtp);
    EXPECT_FALSE(r.cfg.all_through_graph());
    EXPECT_TRUE(r.cfg.uses_oauth());
}

TEST(oauth_profiles, a_profile_may_deliver_through_graph_beside_smtp) {
    const auto r = parse(std::string(default_profile) + R"([oauth.profiles.graph]
delivery = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "app"
client_secret_env = "SECRET"
graph_url = "https://127.0.0.1:8443/"
mailboxes = ["graph-relay@contoso.com"]
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.cfg.oauth.delivery, upstream_kind::smtp);
    EXPECT_EQ(r.cfg.oauth.scope, "https://outlook.office365.com/.default");
    ASSERT_EQ(r.cfg.oauth_profiles.size(), 1U);
    EXPECT_EQ(r.cfg.oauth_profiles[0].graph_url, "https://127.0.0.1:8443");  // without its trailing slash
    EXPECT_FALSE(r.cfg.oauth_profiles[0].save_to_sent_items);  // by default: no copy in Sent Items
    EXPECT_EQ(r.cfg.oauth_profiles[0].scope, "https://graph.microsoft.com/.default");
    EXPECT_EQ(r.cfg.delivery_for_mailbox("graph-relay@contoso.com"), upstream_kind::graph);
    EXPECT_EQ(r.cfg.delivery_for_mailbox("relay@contoso.com"), upstream_kind::smtp);
    EXPECT_FALSE(r.cfg.all_through_graph());
}

TEST(oauth_profiles, graph_mistakes_are_named) {
    const std::string ok = "tenant = \"t\"\nclient_id = \"a\"\nclient_secret_env = \"S\"\n";
    EXPECT_THAT(profile_errors(ok + "graph_url = \"https://graph.example\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.graph_url: is used only with delivery = "graph")"));
    EXPECT_THAT(profile_errors(ok + "save_to_sent_items = true\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.save_to_sent_items: is used only with delivery = "graph")"));
    EXPECT_THAT(profile_errors(ok + "delivery = \"graph\"\nsave_to_sent_items = \"yes\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.save_to_sent_items: expected a boolean, got a string"));
    EXPECT_THAT(profile_errors(ok + "delivery = \"graph\"\ngraph_url = \"http://graph.example\"\n"),
                ElementsAre("relay.toml: oauth.profiles.p.graph_url: must be an https:// URL"));
    EXPECT_THAT(profile_errors(ok + "delivery = \"imap\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.delivery: expected one of "smtp", "graph", got "imap")"));
    EXPECT_THAT(profile_errors("provider = \"google\"\ndelivery = \"graph\"\nservice_account_file = \"sa.json\"\n"),
                ElementsAre(R"(relay.toml: oauth.profiles.p.delivery: delivery = "graph" needs provider = "microsoft")"));
    EXPECT_THAT(messages(parse_text(R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
kind = "graph"
)",
                                    "relay.toml")),
                ElementsAre(R"(relay.toml: upstream.mailbox: is required for upstream.kind = "graph")",
                            "relay.toml: oauth.tenant: is required to find the token endpoint (or set token_url)",
                            R"(relay.toml: oauth.client_id: is required for grant = "client_credentials")",
                            "relay.toml: oauth: one of client_secret_file, client_secret_env, client_secret_credential "
                            R"(and certificate_file is required for grant = "client_credentials")"));
    EXPECT_THAT(messages(parse_text(R"(
[tls]
cert_file = "cert.pem"
key_file = "key.pem"
[upstream]
mailbox = "relay@contoso.com"
auth = "none"
[oauth.profiles.p]
delivery = "graph"
)",
                                    "relay.toml")),
                ElementsAre(R"(relay.toml: oauth.profiles.p.delivery: needs OAuth tokens, which upstream.auth = "none" turns off)"));
}

TEST(oauth_profiles, only_graph_everywhere_is_all_through_graph) {
    const auto r = parse_graph(R"(
[oauth]
tenant = "t"
client_id = "app"
client_secret_env = "SECRET"
)");
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(messages(r));
    EXPECT_TRUE(r.cfg.all_through_graph());
    EXPECT_EQ(r.cfg.oauth.graph_url, "https://graph.microsoft.com");
}

}  // namespace
}  // namespace subrelay::conf
