// What an OAuth2 profile's provider, cloud, tenant and grant imply, and
// which profile serves an upstream mailbox.
#include <algorithm>

#include "conf/config.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::conf {

namespace {

struct microsoft_cloud {
    std::string_view login_host;
    std::string_view smtp_host;
    std::string_view resource;   // the Exchange Online resource of client credentials ("/.default")
    std::string_view delegated;  // the resource that SMTP.Send belongs to
    std::string_view graph;      // Microsoft Graph in that cloud (its resource and base URL)
};

// Microsoft's national clouds: login host, SMTP host and Exchange Online resource each.
microsoft_cloud cloud_of(oauth_cloud c) {
    switch (c) {
    case oauth_cloud::usgov:
        return {"login.microsoftonline.us", "smtp.office365.us", "https://outlook.office365.us",
                "https://outlook.office365.us", "https://graph.microsoft.us"};
    case oauth_cloud::china:
        return {"login.partner.microsoftonline.cn", "smtp.partner.outlook.cn", "https://partner.outlook.cn",
                "https://partner.outlook.cn", "https://microsoftgraph.chinacloudapi.cn"};
    case oauth_cloud::global:
        break;
    }
    return {"login.microsoftonline.com", "smtp.office365.com", "https://outlook.office365.com",
            "https://outlook.office.com", "https://graph.microsoft.com"};
}

}  // namespace

oauth_defaults derive_oauth_defaults(oauth_provider provider, oauth_cloud cloud, std::string_view tenant,
                                     oauth_grant grant, upstream_kind delivery) {
    oauth_defaults d;
    switch (provider) {
    case oauth_provider::microsoft: {
        const microsoft_cloud m = cloud_of(cloud);
        if (!tenant.empty()) {
            const std::string base = "https://" + std::string(m.login_host) + "/" + std::string(tenant) + "/oauth2/v2.0/";
            d.token_url = base + "token";
            d.device_code_url = base + "devicecode";
        }
        if (delivery == upstream_kind::graph) {
            // Graph's Mail.Send: the application permission, or the delegated one.
            d.scope = grant == oauth_grant::client_credentials ? std::string(m.graph) + "/.default"
                                                               : std::string(m.graph) + "/Mail.Send offline_access";
        } else {
            d.scope = grant == oauth_grant::client_credentials ? std::string(m.resource) + "/.default"
                                                               : std::string(m.delegated) + "/SMTP.Send offline_access";
        }
        d.smtp_host = m.smtp_host;
        d.graph_url = m.graph;
        break;
    }
    case oauth_provider::google:
        d.token_url = "https://oauth2.googleapis.com/token";
        d.device_code_url = "https://oauth2.googleapis.com/device/code";
        d.scope = "https://mail.google.com/";
        d.smtp_host = "smtp.gmail.com";
        break;
    case oauth_provider::generic:
        break;
    }
    return d;
}

const oauth_config& config::profile_for_mailbox(std::string_view mailbox) const {
    for (const auto& p : oauth_profiles) {
        const bool listed = std::any_of(p.mailboxes.begin(), p.mailboxes.end(),
                                        [&](const std::string& m) { return text::iequals(m, mailbox); });
        if (listed) return p;
    }
    return oauth;
}

upstream_kind config::delivery_for_mailbox(std::string_view mailbox) const {
    if (upstream.kind == upstream_kind::directory) return upstream_kind::directory;
    return profile_for_mailbox(mailbox).delivery;
}

bool config::all_through_graph() const {
    if (upstream.kind != upstream_kind::graph) return false;
    return std::all_of(oauth_profiles.begin(), oauth_profiles.end(),
                       [](const oauth_config& p) { return p.delivery == upstream_kind::graph; });
}

const oauth_config* config::find_profile(std::string_view name) const {
    if (name == oauth.name) return &oauth;
    for (const auto& p : oauth_profiles)
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace subrelay::conf
