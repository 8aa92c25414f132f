#pragma once
// Base64 lives in subrelay::text (smtp/text/base64.hpp). These names remain
// for server_session.cpp, which still calls them unqualified; new code
// includes smtp/text/base64.hpp.
#include "smtp/text/base64.hpp"

namespace subrelay::smtp {

using text::base64_decode;
using text::base64_encode;

}  // namespace subrelay::smtp
