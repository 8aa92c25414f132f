// The PROXY protocol header parser (v1 text, v2 binary) that the listeners
// run on the first bytes from a trusted load balancer.
// Input: the first bytes of a connection.
// Checked: the parser never claims more than it was given or more than the
// limits (107 bytes for v1, proxy_v2_max_length for v2); bytes after the
// header do not change it; a header is not complete on any shorter prefix,
// and while incomplete a v2 header never asks for bytes past its end; a
// client address it names is an IPv4 or IPv6 address in canonical form.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/server/proxy_header.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using subrelay::relay::parse_proxy_header;
using subrelay::relay::proxy_parse;

bool canonical_address(const std::string& text) {
    std::array<unsigned char, 16> raw{};
    std::array<char, INET6_ADDRSTRLEN> back{};
    for (const int family : {AF_INET, AF_INET6}) {
        if (inet_pton(family, text.c_str(), raw.data()) == 1)
            return inet_ntop(family, raw.data(), back.data(), back.size()) != nullptr && text == back.data();
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const proxy_parse p = parse_proxy_header(in);
    switch (p.state) {
    case proxy_parse::status::invalid:
        FUZZ_CHECK(!p.error.empty());
        break;
    case proxy_parse::status::incomplete:
        FUZZ_CHECK(p.wanted > 0);
        FUZZ_CHECK(size + p.wanted <= subrelay::relay::proxy_v2_max_length);
        break;
    case proxy_parse::status::done: {
        FUZZ_CHECK(p.length > 0 && p.length <= size);
        FUZZ_CHECK(p.header.version == 1 || p.header.version == 2);
        if (p.header.version == 1) FUZZ_CHECK(p.length <= subrelay::relay::proxy_v1_max_length);
        if (p.header.version == 2) FUZZ_CHECK(p.length <= subrelay::relay::proxy_v2_max_length);
        FUZZ_CHECK(!p.header.local || p.header.source.empty());
        if (!p.header.source.empty()) {
            FUZZ_CHECK(canonical_address(p.header.source));
            FUZZ_CHECK(canonical_address(p.header.destination));
        }
        // The header alone parses the same.
        const proxy_parse alone = parse_proxy_header(in.substr(0, p.length));
        FUZZ_CHECK(alone.state == proxy_parse::status::done && alone.length == p.length);
        FUZZ_CHECK(alone.header.source == p.header.source && alone.header.source_port == p.header.source_port);
        // Shorter, it is not complete; a v2 reader asking for `wanted` stops at its end.
        for (const std::size_t k : {std::size_t{0}, p.length / 2, p.length - 1}) {
            const proxy_parse prefix = parse_proxy_header(in.substr(0, k));
            FUZZ_CHECK(prefix.state == proxy_parse::status::incomplete);
            if (p.header.version == 2) FUZZ_CHECK(k + prefix.wanted <= p.length);
        }
        break;
    }
    }
    return 0;
}
