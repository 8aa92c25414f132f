// cluster.redis: where the nodes of a cluster share their limits. The URL
// may carry a password, so nothing here ever puts it in a message.
#include <arpa/inet.h>
#include <sys/un.h>

#include <charconv>
#include <limits>

#include "conf/config.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::conf {

namespace {

constexpr std::string_view shapes =
    "expected redis://HOST:PORT[/DB], redis://:PASSWORD@HOST:PORT[/DB] or unix:///path/to/redis.sock[?db=N]";

// "scheme://" (any case) at the start of text; the rest after it.
bool strip_scheme(std::string_view& text, std::string_view scheme) {
    const std::string prefix = std::string(scheme) + "://";
    if (text.size() < prefix.size() || !text::iequals(text.substr(0, prefix.size()), prefix)) return false;
    text.remove_prefix(prefix.size());
    return true;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

// A decimal number without sign or blanks, at most max.
template <typename Int>
bool parse_number(std::string_view s, Int& out, Int max) {
    if (!all_digits(s) || s.size() > 10) return false;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || value > max) return false;
    out = static_cast<Int>(value);
    return true;
}

bool parse_database(std::string_view s, std::uint32_t& out, std::string& why) {
    // Redis numbers its databases from 0 (the server's `databases` setting,
    // 16 by default, says how many there are).
    if (parse_number<std::uint32_t>(s, out, std::numeric_limits<std::int32_t>::max())) return true;
    why = "the database must be a number (0, 1, ...)";
    return false;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX escapes; false on a broken escape.
bool percent_decode(std::string_view s, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return false;
        const int hi = hex_value(s[i + 1]);
        const int lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

// A DNS name: labels of letters, digits and hyphens (not at either end of
// a label), at most 63 characters each and 253 in all.
bool valid_dns_name(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i < h.size(); ++i) {
        const char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0)) return false;
        if (++label > 63) return false;
    }
    return label > 0 && h.back() != '-';
}

bool has_control_or_blank(std::string_view s) {
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) return true;
    }
    return false;
}

// "HOST:PORT[/DB]" with HOST a name, an IPv4 address or "[IPv6]".
bool parse_tcp(std::string_view rest, redis_endpoint& out, std::string& why) {
    if (rest.find_first_of("?#") != std::string_view::npos) {
        why = "a redis:// URL takes no query or fragment (the database goes after the port: /DB)";
        return false;
    }
    std::string_view authority = rest;
    std::string_view db;
    bool has_db = false;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        authority = rest.substr(0, slash);
        db = rest.substr(slash + 1);
        has_db = true;
    }
    std::string_view host;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            why = "an IPv6 address needs its closing ']'";
            return false;
        }
        host = authority.substr(1, close - 1);
        in6_addr a6{};
        const std::string h(host);
        if (::inet_pton(AF_INET6, h.c_str(), &a6) != 1) {
            why = "\"" + h + "\" is not an IPv6 address";
            return false;
        }
        const auto after = authority.substr(close + 1);
        if (after.empty() || after.front() != ':') {
            why = "the port is missing (HOST:PORT; Redis's own is 6379)";
            return false;
        }
        port = after.substr(1);
    } else {
        const auto colon = authority.rfind(':');
        if (colon == std::string_view::npos) {
            why = "the port is missing (HOST:PORT; Redis's own is 6379)";
            return false;
        }
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            why = "an IPv6 address goes in brackets: redis://[::1]:6379";
            return false;
        }
        if (host.empty()) {
            why = "the host is missing";
            return false;
        }
        if (!valid_dns_name(host)) {
            why = "\"" + std::string(host) + "\" is not a host name or an IP address";
            return false;
        }
    }
    if (!parse_number<std::uint16_t>(port, out.port, 65535) || out.port == 0) {
        why = "the port must be a number from 1 to 65535";
        return false;
    }
    out.host = std::string(host);
    if (has_db && !parse_database(db, out.database, why)) return false;
    return true;
}

// "/path/to/redis.sock[?db=N]" (after "unix://").
bool parse_unix(std::string_view rest, redis_endpoint& out, std::string& why) {
    std::string_view path = rest;
    std::string_view query;
    bool has_query = false;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        path = rest.substr(0, q);
        query = rest.substr(q + 1);
        has_query = true;
    }
    if (path.empty() || path.front() != '/') {
        why = "a Unix socket needs an absolute path: unix:///path/to/redis.sock";
        return false;
    }
    if (path.find('#') != std::string_view::npos || has_control_or_blank(path)) {
        why = "the socket path must not contain blanks, control characters or '#'";
        return false;
    }
    if (path.back() == '/') {
        why = "the socket path names a directory";
        return false;
    }
    // sun_path holds the path and its terminating NUL.
    constexpr std::size_t max_path = sizeof(sockaddr_un{}.sun_path) - 1;
    if (path.size() > max_path) {
        why = "the socket path is longer than " + std::to_string(max_path) + " bytes";
        return false;
    }
    out.socket = std::string(path);
    if (!has_query) return true;
    if (!query.starts_with("db=")) {
        const auto name = query.substr(0, query.find('='));
        why = "the only parameter is db=N, not \"" + std::string(name.substr(0, 32)) + "\"";
        return false;
    }
    const auto value = query.substr(3);
    if (value.find('&') != std::string_view::npos) {
        why = "the only parameter is db=N";
        return false;
    }
    return parse_database(value, out.database, why);
}

}  // namespace

std::string redis_endpoint::location() const {
    if (is_unix()) return socket.string();
    const std::string p = std::to_string(port);
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
    return host + ":" + p;
}

std::string mask_redis_url(std::string_view text) {
    const auto scheme_end = text.find("://");
    const auto at = text.rfind('@');
    if (scheme_end == std::string_view::npos || at == std::string_view::npos || at < scheme_end + 3) {
        return std::string(text);
    }
    const auto userinfo = text.substr(scheme_end + 3, at - scheme_end - 3);
    std::string out(text.substr(0, scheme_end + 3));
    out += userinfo.starts_with(":") ? ":***" : "***";
    out += text.substr(at);
    return out;
}

bool parse_redis_url(std::string_view text, redis_endpoint& out, std::string& why) {
    redis_endpoint e;
    std::string_view rest = text;
    // The password, if any, is only ever read out of `text`: every message
    // below names the part that is wrong, never the URL as written.
    if (strip_scheme(rest, "redis")) {
        if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
            const auto userinfo = rest.substr(0, at);
            rest = rest.substr(at + 1);
            if (userinfo.empty() || userinfo.front() != ':') {
                why = "a user name is not supported; the password goes after a colon: redis://:PASSWORD@HOST:PORT";
                return false;
            }
            if (userinfo.size() == 1) {
                why = "the password is empty (leave out \":@\" for none)";
                return false;
            }
            if (!percent_decode(userinfo.substr(1), e.password)) {
                why = "the password has a '%' that is not a %XX escape (write '%' as %25)";
                return false;
            }
            if (e.password.find('\0') != std::string::npos) {
                why = "the password must not contain %00";
                return false;
            }
        }
        if (!parse_tcp(rest, e, why)) return false;
    } else if (strip_scheme(rest, "unix")) {
        if (rest.find('@') != std::string_view::npos) {
            why = "a unix:// URL takes no password";
            return false;
        }
        if (!parse_unix(rest, e, why)) return false;
    } else if (strip_scheme(rest, "rediss")) {
        why = "TLS (rediss://) is not supported: use redis:// on a trusted network or a Unix socket";
        return false;
    } else {
        // Not even the rest of an unknown URL is shown: a value written
        // without its scheme could be the password itself.
        why = std::string(shapes);
        const auto scheme_end = text.find("://");
        const auto scheme = text.substr(0, scheme_end);
        if (scheme_end != std::string_view::npos && scheme.size() <= 16 && !scheme.empty() &&
            scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
                std::string_view::npos) {
            why += ", got a " + std::string(scheme) + ":// URL";
        }
        return false;
    }
    out = std::move(e);
    why.clear();
    return true;
}

}  // namespace subrelay::conf
