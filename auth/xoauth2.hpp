#pragma once
#include <string>
#include <string_view>

namespace subrelay::auth {

// base64("user=" + mailbox + "\x01auth=Bearer " + token + "\x01\x01")
std::string xoauth2_initial_response(std::string_view mailbox, std::string_view token);

}  // namespace subrelay::auth
