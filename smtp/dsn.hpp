#pragma once
// Delivery status notifications (RFC 3464, multipart/report; RFC 3462
// report type "delivery-status"): the bounce for recipients that failed
// for good, and the delay notice for a message still being tried.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/clock.hpp"

namespace subrelay::smtp {

struct dsn_recipient {
    std::string address;          // the original recipient
    std::string status;           // "5.1.1", "4.4.7", ... (RFC 3463)
    std::string diagnostic;       // the remote reply, "550 5.1.1 User unknown" ("" if none)
    std::string remote_mta;       // "smtp.office365.com" ("" if none)
};

struct dsn_request {
    enum class kind { failure, delay } type = kind::failure;
    std::string reporting_mta;    // our hostname (Reporting-MTA: dns; ...)
    std::string postmaster;       // From: of the notice ("MAILER-DAEMON@host")
    std::string recipient;        // To: the envelope sender of the original
    std::string original_id;      // our queue id (X-Postfix-style Original-Envelope-Id is not used)
    std::int64_t arrival_date = 0;// unix seconds, for Arrival-Date
    std::vector<dsn_recipient> recipients;
    std::string original_message; // the original (only its header section is returned)
    std::string date;             // RFC 5322 date for Date: ("" => the clock's now)
    std::string message_id;       // "<...>" ("" => generated from the clock, original_id, random
                                  // digits and reporting_mta)
    std::int64_t retry_until = 0; // unix seconds the delay notice promises retries until (Will-Retry-Until,
                                  // "until the message is N days old"); 0 => not stated
};

// The whole notice as a message (headers + body, CRLF line ends), to be
// sent with the null envelope sender <>, so that it can never bounce back.
// The clock dates it and names its Message-ID unless the request does;
// random digits go into a generated Message-ID and into the MIME boundary
// when the predictable one occurs in the original. The same request, time
// and random numbers build the same bytes.
std::string build_dsn(const dsn_request& r, const clock& wall_clock, random_source& random);

// True if a message is itself a bounce or an automatic reply that must not
// be answered with a notice (null sender, or Auto-Submitted other than "no",
// or a multipart/report delivery-status). Used to avoid bounce loops.
bool is_automatic(std::string_view envelope_sender, std::string_view message);

}  // namespace subrelay::smtp
