#pragma once
// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
// 2) that a TCP load balancer sends before the client's bytes, naming the
// client's address. Pure: bytes in, a value out; the listener reads the
// socket (relay/server/listener.cpp).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace subrelay::relay {

// Version 1: one text line, CRLF included.
inline constexpr std::size_t proxy_v1_max_length = 107;
// Version 2: the fixed part (signature, command, family, length), then the
// addresses and TLVs. A longer header (TLVs beyond this) is refused.
inline constexpr std::size_t proxy_v2_fixed_length = 16;
inline constexpr std::size_t proxy_v2_max_length = 4096;

struct proxy_header {
    int version = 0;        // 1 or 2
    bool local = false;     // v2 LOCAL: the proxy's own connection (a health check)
    // The client's address in text form ("192.0.2.7", "2001:db8::7") and
    // port. Empty for LOCAL, v1 UNKNOWN and v2 families other than TCP over
    // IPv4 or IPv6: then the proxy's own address stands for the client.
    std::string source;
    std::uint16_t source_port = 0;
    std::string destination;
    std::uint16_t destination_port = 0;
};

struct proxy_parse {
    enum class status { incomplete, done, invalid };
    status state = status::incomplete;
    // done: how many of the bytes the header takes; what follows belongs to
    // the client (SMTP, or a TLS ClientHello).
    std::size_t length = 0;
    // incomplete: every byte given is part of the header, which takes at
    // most this many more (a reader peeks no further than that).
    std::size_t wanted = 0;
    std::string error;      // invalid: why, for the log
    proxy_header header;
};

// Parses the header at the start of `bytes`, which may hold more than the
// header. Never reads past `bytes`; never throws.
proxy_parse parse_proxy_header(std::string_view bytes);

}  // namespace subrelay::relay
