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
};

// Microsoft's national clouds: login host, SMTP host and Exchange Online resource each.
microsoft_cloud cloud_of(oauth_cloud c) {
    switch (c) {
    case oauth_cloud::usgov:
        return {"login.microsoftonline.us", "smtp.office365.us", "https://outlook.office365.us",
                "https://outlook.office365.us"};
    case oauth_cloud::china:
        return {"login.partner.microsoftonline.cn", "smtp.partner.outlook.cn", "https://partner.outlook.cn",
                "https://partner.outlook.cn"};
    case oauth_cloud::global:
        break;
    }
    return {"login.microsoftonline.com", "smtp.office365.com", "https://outlook.office365.com",
            "https://outlook.office.com"};
}

}  // namespace

oauth_defaults derive_oauth_defaults(oauth_provider provider, oauth_cloud cloud, std::string_view tenant,
                                     oauth_grant grant) {
    oauth_defaults d;
    switch (provider) {
    case oauth_provider::microsoft: {
        const microsoft_cloud m = cloud_of(cloud);
        if (!tenant.empty()) {
            const std::string base = "https://" + std::string(m.login_host) + "/" + std::string(tenant) + "/oauth2/v2.0/";
            d.token_url = base + "token";
            d.device_code_url = base + "devicecode";
        }
        d.scope = grant == oauth_grant::client_credentials ? std::string(m.resource) + "/.default"
                                                           : std::string(m.delegated) + "/SMTP.Send offline_access";
        d.smtp_host = m.smtp_host;
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

const oauth_config* config::find_profile(std::string_view name) const {
    if (name == oauth.name) return &oauth;
    for (const auto& p : oauth_profiles)
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace subrelay::conf
