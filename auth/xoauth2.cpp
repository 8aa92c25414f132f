#include "auth/xoauth2.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace subrelay::auth {

std::string xoauth2_initial_response(std::string_view mailbox, std::string_view token) {
    std::string raw;
    raw.reserve(mailbox.size() + token.size() + 20);
    raw.append("user=").append(mailbox).append("\x01" "auth=Bearer ").append(token).append("\x01\x01");

    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(raw.data()),
                                  static_cast<int>(raw.size()));
    if (n < 0) {
        throw std::runtime_error("XOAUTH2: base64 encoding failed");
    }
    out.resize(static_cast<std::size_t>(n));
    return out;
}

}  // namespace subrelay::auth
