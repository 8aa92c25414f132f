#include "auth/xoauth2.hpp"

#include <gtest/gtest.h>

namespace {

using subrelay::auth::xoauth2_initial_response;

TEST(xoauth2, matches_the_documented_example) {
    // The example from the XOAUTH2 protocol description.
    EXPECT_EQ(xoauth2_initial_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
              "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRX"
              "VZMjl0Q2cBAQ==");
}

TEST(xoauth2, short_values) {
    EXPECT_EQ(xoauth2_initial_response("scanner@contoso.com", "abc"),
              "dXNlcj1zY2FubmVyQGNvbnRvc28uY29tAWF1dGg9QmVhcmVyIGFiYwEB");
}

TEST(xoauth2, long_token_has_no_line_breaks) {
    const std::string token(3000, 'x');
    const std::string out = xoauth2_initial_response("a@b.c", token);
    EXPECT_EQ(out.find('\n'), std::string::npos);
    EXPECT_EQ(out.size() % 4, 0U);
    EXPECT_GT(out.size(), 4000U);
}

}  // namespace
