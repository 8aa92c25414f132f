#include "smtp/client_session.hpp"

#include <utility>

#include "smtp/address.hpp"
#include "smtp/data.hpp"
#include "smtp/text/ascii.hpp"

namespace subrelay::smtp {

namespace {

using text::ascii_upper;
using text::iequals;

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
        if (s.empty()) break;
        const auto sp = s.find(' ');
        out.push_back(s.substr(0, sp));
        s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp);
    }
    return out;
}

int reply_class(const reply& r) { return r.code / 100; }
bool refusal(const reply& r) { return reply_class(r) == 4 || reply_class(r) == 5; }

}  // namespace

std::vector<std::string> message_result::delivered() const {
    std::vector<std::string> out;
    if (reply_class(final_reply) != 2) return out;
    for (const auto& r : recipients)
        if (reply_class(r.rcpt_reply) == 2) out.push_back(r.address);
    return out;
}

client_session::client_session(client_options options) : options_(std::move(options)) {
    tls_ = options_.tls == client_tls::implicit;
}

void client_session::feed(std::string_view bytes) {
    if (state_ == stage::closed || state_ == stage::failed) return;
    parser_.feed(bytes);
}

client_step client_session::advance() {
    // While idle nothing is expected: a reply then (a 421 on idle timeout) ends the session.
    while (pending_ == client_action::need_input || pending_ == client_action::idle) {
        auto r = parser_.next();
        if (!r) break;
        on_reply(*r);
    }
    client_step s{std::move(out_), pending_};
    out_.clear();
    if (pending_ == client_action::message_done) pending_ = client_action::idle;
    return s;
}

bool client_session::has_extension(std::string_view keyword) const {
    for (const auto& e : extensions_)
        if (iequals(e, keyword)) return true;
    return false;
}

void client_session::send_line(std::string line) {
    out_ += line;
    out_ += "\r\n";
}

void client_session::fail(std::string where, const reply& r, std::string text) {
    error_ = {std::move(where), r, std::move(text)};
    token_.clear();
    state_ = stage::failed;
    pending_ = client_action::failed;
}

void client_session::on_reply(const reply& r) {
    if (r.code == 0) {
        fail("protocol", r, "malformed reply from server");
        return;
    }
    if (state_ == stage::quit) {
        // QUIT answered: 221 or anything else, the conversation is over.
        state_ = stage::closed;
        pending_ = client_action::closed;
        return;
    }
    auto stage_name = [this]() -> std::string {
        switch (state_) {
        case stage::greeting: return "greeting";
        case stage::ehlo: return "ehlo";
        case stage::starttls: return "starttls";
        case stage::auth_start:
        case stage::auth_response:
        case stage::auth_error_ack: return "auth";
        case stage::mail: return "mail";
        case stage::rcpt: return "rcpt";
        case stage::data:
        case stage::content:
        case stage::data_end:
        case stage::empty_data_end: return "data";
        case stage::rset: return "rset";
        default: return "protocol";
        }
    };
    if (r.code == 421) {
        fail(stage_name(), r, "server closing the connection");
        return;
    }
    switch (state_) {
    case stage::greeting:
        if (r.code != 220) return fail("greeting", r, "server refused the connection");
        send_line("EHLO " + options_.ehlo_name);
        state_ = stage::ehlo;
        return;
    case stage::ehlo:
        if (r.code != 250) return fail("ehlo", r, "EHLO refused");
        on_ehlo(r);
        return after_ehlo();
    case stage::starttls:
        if (r.code != 220) return fail("starttls", r, "STARTTLS refused");
        // Nothing received in plaintext may be taken as a reply after the handshake.
        parser_.clear();
        state_ = stage::tls_handshake;
        pending_ = client_action::start_tls;
        return;
    case stage::auth_start:
        if (r.code == 334) {
            send_line(std::move(token_));
            token_.clear();
            state_ = stage::auth_response;
            return;
        }
        auth_rejected_ = r.permanent();
        return fail("auth", r, "AUTH XOAUTH2 refused");
    case stage::auth_response:
        if (r.code == 235) {
            auth_rejected_ = false;
            state_ = stage::idle;
            pending_ = client_action::idle;
            return;
        }
        if (r.code == 334) {
            // An error challenge (JSON status): answer with an empty line, then the final reply.
            send_line("");
            state_ = stage::auth_error_ack;
            return;
        }
        auth_rejected_ = r.permanent();
        return fail("auth", r, "authentication failed");
    case stage::auth_error_ack:
        if (r.code == 235) {
            auth_rejected_ = false;
            state_ = stage::idle;
            pending_ = client_action::idle;
            return;
        }
        auth_rejected_ = r.permanent();
        return fail("auth", r, "authentication failed");
    case stage::mail:
        if (reply_class(r) != 2 && !refusal(r)) return fail("protocol", r, "unexpected reply to MAIL");
        if (pipelined_) {
            // The RCPTs and DATA are already sent: their replies follow whatever this one says.
            if (refusal(r)) mail_refusal_ = r;
            state_ = stage::rcpt;
            return;
        }
        if (refusal(r)) return finish_with_rset(r);
        rcpt_index_ = 0;
        state_ = stage::rcpt;
        return send_rcpt(message_.recipients[rcpt_index_]);
    case stage::rcpt: {
        if (reply_class(r) != 2 && !refusal(r)) return fail("protocol", r, "unexpected reply to RCPT");
        // After a refused MAIL the RCPT replies (typically 503) say nothing about the recipients.
        if (!mail_refusal_) result_.recipients.push_back({message_.recipients[rcpt_index_], r});
        ++rcpt_index_;
        if (pipelined_) {
            if (rcpt_index_ == message_.recipients.size()) state_ = stage::data;
            return;
        }
        if (rcpt_index_ < message_.recipients.size()) return send_rcpt(message_.recipients[rcpt_index_]);
        if (!any_recipient_accepted()) return finish_with_rset(r);
        send_line("DATA");
        state_ = stage::data;
        return;
    }
    case stage::data:
        if (pipelined_) return on_pipelined_data(r);
        if (r.code == 354) return start_content();
        if (refusal(r)) return finish_with_rset(r);
        return fail("protocol", r, "unexpected reply to DATA");
    case stage::data_end:
        if (reply_class(r) != 2 && !refusal(r)) return fail("protocol", r, "unexpected reply to end of data");
        result_.final_reply = r;
        state_ = stage::idle;
        pending_ = client_action::message_done;
        return;
    case stage::empty_data_end:
        if (reply_class(r) != 2 && !refusal(r)) return fail("protocol", r, "unexpected reply to end of data");
        // final_reply already holds the failure that left the message without recipients.
        state_ = stage::idle;
        pending_ = client_action::message_done;
        return;
    case stage::rset:
        if (reply_class(r) != 2) return fail("rset", r, "RSET refused");
        state_ = stage::idle;
        pending_ = client_action::message_done;
        return;
    case stage::idle:
    case stage::tls_handshake:
    case stage::auth_token:
    case stage::content:  // replies wait until the content is out
    case stage::quit:
    case stage::closed:
    case stage::failed:
        return fail("protocol", r, "unexpected reply");
    }
}

void client_session::on_ehlo(const reply& r) {
    extensions_.clear();
    auth_mechanisms_.clear();
    max_size_.reset();
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
        const auto w = words(r.lines[i]);
        if (w.empty()) continue;
        std::string keyword = ascii_upper(w[0]);
        std::vector<std::string_view> params(w.begin() + 1, w.end());
        if (keyword.starts_with("AUTH=")) {  // old "AUTH=LOGIN PLAIN" form
            params.insert(params.begin(), std::string_view(w[0]).substr(5));
            keyword = "AUTH";
        }
        if (keyword == "AUTH")
            for (const auto p : params) auth_mechanisms_.push_back(ascii_upper(p));
        if (keyword == "SIZE" && !params.empty()) {
            std::size_t n = 0;
            bool ok = !params[0].empty() && params[0].size() <= 19;
            for (const char c : params[0]) {
                if (c < '0' || c > '9') { ok = false; break; }
                n = n * 10 + static_cast<std::size_t>(c - '0');
            }
            if (ok && n > 0) max_size_ = n;  // SIZE 0: no fixed maximum (RFC 1870)
        }
        if (!has_extension(keyword)) extensions_.push_back(std::move(keyword));
    }
}

void client_session::after_ehlo() {
    if (options_.tls == client_tls::starttls && !tls_) {
        if (!has_extension("STARTTLS")) return fail("starttls", reply{}, "server does not offer STARTTLS");
        send_line("STARTTLS");
        state_ = stage::starttls;
        return;
    }
    if (options_.auth == client_auth::xoauth2) {
        bool offered = false;
        for (const auto& m : auth_mechanisms_) offered = offered || m == "XOAUTH2";
        if (!offered) return fail("auth", reply{}, "server does not offer AUTH XOAUTH2");
        state_ = stage::auth_token;
        pending_ = client_action::need_auth_token;
        return;
    }
    state_ = stage::idle;
    pending_ = client_action::idle;
}

void client_session::tls_started() {
    if (state_ != stage::tls_handshake) return;
    tls_ = true;
    parser_.clear();
    extensions_.clear();
    auth_mechanisms_.clear();
    max_size_.reset();
    send_line("EHLO " + options_.ehlo_name);
    state_ = stage::ehlo;
    pending_ = client_action::need_input;
}

void client_session::auth_token(std::string xoauth2_base64) {
    if (state_ != stage::auth_token) return;
    token_ = std::move(xoauth2_base64);
    // The token is long: send it only after the 334 to a bare "AUTH XOAUTH2".
    send_line("AUTH XOAUTH2");
    state_ = stage::auth_start;
    pending_ = client_action::need_input;
}

void client_session::send_rcpt(const std::string& address) { send_line("RCPT TO:<" + address + ">"); }

bool client_session::any_recipient_accepted() const {
    for (const auto& rr : result_.recipients)
        if (reply_class(rr.rcpt_reply) == 2) return true;
    return false;
}

// Pipelined: the reply that already decided the transaction before DATA's
// reply arrived (MAIL's refusal, or the last RCPT refusal when none was accepted).
std::optional<reply> client_session::early_failure() const {
    if (mail_refusal_) return mail_refusal_;
    if (!any_recipient_accepted()) return result_.recipients.back().rcpt_reply;
    return std::nullopt;
}

void client_session::on_pipelined_data(const reply& r) {
    const auto failure = early_failure();
    if (r.code == 354) {
        if (!failure) return start_content();
        // A non-conforming server opened DATA with no transaction to speak of (RFC 2920
        // section 3.1): send an empty message. That ends the transaction, so no RSET.
        result_.final_reply = *failure;
        send_line(".");
        state_ = stage::empty_data_end;
        return;
    }
    if (refusal(r)) return finish_with_rset(failure ? *failure : r);
    fail("protocol", r, "unexpected reply to DATA");
}

// DATA got 354: the content goes out, from `data` at once or, streamed, in
// the pieces the driver passes.
void client_session::start_content() {
    content_sent_ = true;
    if (!message_.streamed) {
        stuffer_.add(out_, message_.data);
        stuffer_.finish(out_);
        state_ = stage::data_end;
        return;
    }
    state_ = stage::content;
    pending_ = client_action::send_content;
}

void client_session::add_content(std::string_view piece) {
    if (state_ != stage::content) return fail("protocol", reply{}, "add_content outside DATA");
    stuffer_.add(out_, piece);
}

void client_session::end_content() {
    if (state_ != stage::content) return fail("protocol", reply{}, "end_content outside DATA");
    stuffer_.finish(out_);
    state_ = stage::data_end;
    pending_ = client_action::need_input;
}

void client_session::finish_with_rset(reply final_reply) {
    result_.final_reply = std::move(final_reply);
    send_line("RSET");
    state_ = stage::rset;
}

void client_session::send_message(const outgoing_message& m) {
    if (state_ != stage::idle) return fail("protocol", reply{}, "send_message while not idle");
    message_ = m;
    result_ = {};
    content_sent_ = false;
    rcpt_index_ = 0;
    mail_refusal_.reset();
    pipelined_ = has_extension("PIPELINING");
    if (m.recipients.empty()) {
        result_.final_reply = reply(554, "5.5.1", "No recipients");
        pending_ = client_action::message_done;
        return;
    }
    std::string cmd = "MAIL FROM:<" + m.sender + ">";
    if (has_extension("SIZE")) cmd += " SIZE=" + std::to_string(m.size != 0 ? m.size : m.data.size());
    if (m.eight_bit && has_extension("8BITMIME")) cmd += " BODY=8BITMIME";
    if (m.smtputf8 && has_extension("SMTPUTF8")) cmd += " SMTPUTF8";
    send_line(std::move(cmd));
    if (pipelined_) {
        // RFC 2920: MAIL, RCPT and DATA may go out together; DATA ends the batch
        // because what follows it depends on its reply.
        for (const auto& rcpt : m.recipients) send_rcpt(rcpt);
        send_line("DATA");
    }
    state_ = stage::mail;
    pending_ = client_action::need_input;
}

void client_session::quit() {
    if (state_ == stage::closed || state_ == stage::failed) return;
    send_line("QUIT");
    state_ = stage::quit;
    pending_ = client_action::need_input;
}

}  // namespace subrelay::smtp
