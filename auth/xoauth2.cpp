#include "auth/xoauth2.hpp"

#include "smtp/text/base64.hpp"

namespace subrelay::auth {

std::string xoauth2_initial_response(std::string_view mailbox, std::string_view token) {
    std::string raw;
    raw.reserve(mailbox.size() + token.size() + 20);
    raw.append("user=").append(mailbox).append("\x01" "auth=Bearer ").append(token).append("\x01\x01");
    return text::base64_encode(raw);
}

}  // namespace subrelay::auth
