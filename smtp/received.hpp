#pragma once
// The Received: trace header that the relay prepends to each message.
#include <cstddef>
#include <string>

#include "smtp/clock.hpp"

namespace subrelay::smtp {

// Builds a Received: header line (with CRLF), RFC 5321 4.4 form:
// "Received: from HELO ([IP])\r\n\tby BY with PROTOCOL id ID\r\n\t(TLS ...)\r\n\tfor <rcpt>; DATE\r\n"
struct received_info {
    std::string helo;
    std::string client_ip;
    std::string by;              // our hostname
    std::string protocol;        // "ESMTPSA", "ESMTPS", "ESMTP", "SMTP" (RFC 3848)
    std::string id;              // queue id
    std::string tls;             // e.g. "TLSv1.3 cipher TLS_AES_256_GCM_SHA384"; empty if none
    std::string single_recipient;// "for <x>" when exactly one recipient
    std::string date;            // RFC 5322 date-time
};
// No line of it is longer than 998 octets (RFC 5322 2.1.1) and the whole is
// at most max_received_header octets: the "for" clause is left out when the
// recipient would break either limit, and a HELO name over 255 octets is cut.
// A HELO name that is not a domain or an address literal is noted.
std::string received_header(const received_info& info);
inline constexpr std::size_t max_received_header = 2048;

// RFC 5322 date-time of the clock's now in its local time, e.g.
// "Sat, 28 Nov 2026 13:00:00 +0100", for received_info::date.
std::string rfc5322_date_now(const clock& wall_clock);

}  // namespace subrelay::smtp
