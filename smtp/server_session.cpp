#include "smtp/server_session.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "smtp/address.hpp"
#include "smtp/text/ascii.hpp"
#include "smtp/text/base64.hpp"

namespace subrelay::smtp {

namespace {

using state = server_session::state;

const char* state_name(state s) {
    switch (s) {
    case state::initial: return "initial";
    case state::ready: return "ready";
    case state::mail: return "mail";
    case state::rcpt: return "rcpt";
    case state::data: return "data";
    case state::auth: return "auth";
    case state::closed: return "closed";
    }
    return "?";
}

bool non_ascii(std::string_view s) {
    for (const char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return true;
    return false;
}

bool in_transaction(state s) { return s == state::mail || s == state::rcpt; }

// Replies that only the session gives.
reply bad_sequence(std::string text) { return {503, "5.5.1", std::move(text)}; }
reply line_too_long() { return {500, "5.5.2", "Line too long"}; }
reply unrecognized() { return {500, "5.5.2", "Error: command not recognized"}; }
reply not_implemented() { return {502, "5.5.1", "Error: command not implemented"}; }
reply message_too_big() { return {552, "5.3.4", "Message size exceeds fixed maximum message size"}; }
reply utf8_required() { return {553, "5.6.7", "Non-ASCII address requires SMTPUTF8"}; }

// Protocol errors count towards max_unknown_commands; refusals by limits or policy do not.
bool counts_as_error(const reply& r) {
    return r.code == 500 || r.code == 501 || r.code == 502 || r.code == 503 || r.code == 504 || r.code == 555;
}

}  // namespace

// One command table, OpenSMTPD style: for each verb, checks in a fixed order
// (state -> TLS required -> AUTH required -> limits -> syntax -> policy), each
// only validating, then one proceed step that acts.
struct server_session::commands {
    using check_fn = std::optional<reply> (*)(const server_session&);
    using syntax_fn = std::optional<reply> (*)(const server_session&, const command&);
    using proceed_fn = void (*)(server_session&, const command&);

    struct rule {
        verb kind;
        check_fn state;      // is the command allowed in the current state?
        check_fn tls;        // is TLS required (or missing)?
        bool needs_auth;     // is an authenticated identity required?
        check_fn limits;
        syntax_fn syntax;    // command-specific checks after parse_command()
        syntax_fn policy;
        proceed_fn proceed;
    };

    // ---- state checks ----
    static std::optional<reply> mail_state(const server_session& s) {
        if (s.state_ == state::initial) return bad_sequence("Error: send HELO/EHLO first");
        if (in_transaction(s.state_)) return bad_sequence("Error: nested MAIL command");
        return std::nullopt;
    }
    static std::optional<reply> rcpt_state(const server_session& s) {
        if (!in_transaction(s.state_)) return bad_sequence("Error: need MAIL command");
        return std::nullopt;
    }
    static std::optional<reply> data_state(const server_session& s) {
        if (s.state_ == state::mail) return reply(554, "5.5.1", "Error: no valid recipients");
        if (s.state_ != state::rcpt) return bad_sequence("Error: need RCPT command");
        return std::nullopt;
    }
    static std::optional<reply> starttls_state(const server_session& s) {
        if (s.tls_) return bad_sequence("Error: TLS already active");
        if (in_transaction(s.state_)) return bad_sequence("Error: MAIL transaction in progress");
        return std::nullopt;
    }
    // Like Postfix: AUTH needs no EHLO before it (a device may send HELO, an
    // EHLO without a name, or nothing after STARTTLS).
    static std::optional<reply> auth_state(const server_session& s) {
        if (s.authenticated()) return bad_sequence("Error: already authenticated");
        if (in_transaction(s.state_)) return bad_sequence("Error: MAIL transaction in progress");
        if (s.options_.auth_mechanisms.empty()) return bad_sequence("Error: authentication not enabled");
        return std::nullopt;
    }
    static std::optional<reply> never(const server_session&) { return not_implemented(); }

    // ---- TLS checks ----
    static std::optional<reply> starttls_available(const server_session& s) {
        if (!s.options_.tls_available) return reply(454, "4.7.0", "TLS not available");
        return std::nullopt;
    }
    static std::optional<reply> auth_tls(const server_session& s) {
        if (s.options_.require_tls_for_auth && !s.tls_)
            return reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
        return std::nullopt;
    }

    // ---- limits ----
    static std::optional<reply> rcpt_limits(const server_session& s) {
        if (s.envelope_.recipients.size() >= s.options_.max_recipients)
            return reply(452, "4.5.3", "Too many recipients");
        return std::nullopt;
    }

    // ---- syntax ----
    static std::optional<reply> helo_syntax(const server_session&, const command& c) {
        switch (classify_helo_name(text::trim(c.argument))) {
        case helo_name::too_long:
            return reply(501, "5.5.2", "Error: HELO/EHLO name too long (at most 255 characters)");
        case helo_name::invalid:
            return reply(501, "5.5.2", "Error: invalid HELO/EHLO name: send a domain name or an address literal");
        default: return std::nullopt;
        }
    }
    static std::optional<reply> mail_syntax(const server_session& s, const command& c) {
        if (const auto it = c.params.find("SIZE"); it != c.params.end()) {
            // Up to 20 digits: compare as text when it would overflow.
            std::string_view v = it->second;
            while (v.size() > 1 && v.front() == '0') v.remove_prefix(1);
            const auto max = std::to_string(s.options_.max_message_size);
            if (v.size() > max.size() || (v.size() == max.size() && v > max)) return message_too_big();
        }
        if (non_ascii(c.path) && !c.params.contains("SMTPUTF8")) return utf8_required();
        return std::nullopt;
    }
    static std::optional<reply> rcpt_syntax(const server_session& s, const command& c) {
        if (non_ascii(c.path) && !s.envelope_.smtputf8) return utf8_required();
        return std::nullopt;
    }
    static std::optional<reply> auth_syntax(const server_session& s, const command& c) {
        const auto arg = text::trim(c.argument);
        const auto sp = arg.find(' ');
        const auto mechanism = arg.substr(0, sp);
        bool known = false;
        for (const auto& m : s.options_.auth_mechanisms) known = known || text::iequals(m, mechanism);
        if (!known) return reply(504, "5.5.4", "Unrecognized authentication type");
        if (sp != std::string_view::npos) {
            const auto initial = text::trim(arg.substr(sp));
            if (initial != "=" && !text::base64_decode(initial)) return reply(501, "5.5.2", "Error: invalid base64 data");
        }
        return std::nullopt;
    }

    // ---- policy ----
    static std::optional<reply> mail_policy(const server_session& s, const command& c) {
        if (s.policy_ == nullptr) return std::nullopt;
        return s.policy_->check_sender(s.sender_identity(), c.path);
    }
    static std::optional<reply> rcpt_policy(const server_session& s, const command& c) {
        if (s.policy_ == nullptr) return std::nullopt;
        return s.policy_->check_recipient(s.sender_identity(), s.envelope_.sender, c.path);
    }

    // ---- proceed ----
    static void helo(server_session& s, const command& c) {
        s.reset_transaction();
        s.envelope_.helo = std::string(text::trim(c.argument));
        s.esmtp_ = c.kind == verb::ehlo;
        s.greeted_ = true;
        s.set_state(state::ready);
        s.reply_with(s.esmtp_ ? s.ehlo_reply() : reply(250, "", s.options_.hostname));
    }
    static void mail(server_session& s, const command& c) {
        s.envelope_.sender = c.path;
        s.envelope_.identity = s.sender_identity();
        s.envelope_.smtputf8 = c.params.contains("SMTPUTF8");
        const auto body = c.params.find("BODY");
        s.envelope_.body_type = body == c.params.end() ? std::string() : body->second;
        const auto size = c.params.find("SIZE");
        s.declared_size_ = size == c.params.end() ? 0 : static_cast<std::size_t>(std::stoull(size->second));
        s.set_state(state::mail);
        s.reply_with({250, "2.1.0", "Sender ok"});
    }
    static void rcpt(server_session& s, const command& c) {
        s.envelope_.recipients.push_back(c.path);
        s.set_state(state::rcpt);
        s.reply_with({250, "2.1.5", "Recipient ok"});
    }
    static void data(server_session& s, const command&) {
        s.data_.emplace(s.options_.max_message_size, s.options_.bare_lf_mode);
        s.data_dropped_ = false;
        s.data_failure_.reset();
        // The envelope is fixed from here on: the driver writes it before the message.
        s.envelope_.identity = s.sender_identity();
        s.set_state(state::data);
        // RFC 2034 status codes have class 2, 4 or 5: an intermediate 354 has none.
        s.reply_with({354, "", "End data with <CR><LF>.<CR><LF>"});
    }
    static void rset(server_session& s, const command&) {
        s.reset_transaction();
        if (in_transaction(s.state_)) s.set_state(state::ready);
        s.reply_with(replies::ok());
    }
    static void noop(server_session& s, const command&) { s.reply_with(replies::ok()); }
    static void quit(server_session& s, const command&) {
        s.reply_with(replies::closing(s.options_.hostname));
        s.close_session();
    }
    static void vrfy(server_session& s, const command&) {
        s.reply_with({252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"});
    }
    static void help(server_session& s, const command&) {
        s.reply_with({214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH"});
    }
    static void unsupported(server_session&, const command&) {}
    static void starttls(server_session& s, const command&) {
        s.reply_with({220, "2.0.0", "Ready to start TLS"});
        // RFC 3207 5: nothing sent before the handshake may be acted upon after it.
        s.in_.clear();
        s.pos_ = 0;
        s.discard_line_ = false;
        s.after_bare_lf_ = false;
        s.pending_ = action::start_tls;
    }
    static void auth(server_session& s, const command& c) {
        const auto arg = text::trim(c.argument);
        const auto sp = arg.find(' ');
        auth_request request;
        request.mechanism = std::string(arg.substr(0, sp));
        for (auto& ch : request.mechanism)
            if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
        if (sp != std::string_view::npos) {
            const auto initial = text::trim(arg.substr(sp));
            request.has_initial_response = true;
            if (initial != "=") request.data = text::base64_decode(initial).value_or(std::string());
        }
        s.auth_ = std::move(request);
        s.set_state(state::auth);
        s.pending_ = action::authenticate;
    }

    static constexpr std::array<rule, 14> table{{
        // verb           state           tls                 auth   limits       syntax       policy       proceed
        {verb::helo,      nullptr,        nullptr,            false, nullptr,     helo_syntax, nullptr,     helo},
        {verb::ehlo,      nullptr,        nullptr,            false, nullptr,     helo_syntax, nullptr,     helo},
        {verb::mail,      mail_state,     nullptr,            true,  nullptr,     mail_syntax, mail_policy, mail},
        {verb::rcpt,      rcpt_state,     nullptr,            true,  rcpt_limits, rcpt_syntax, rcpt_policy, rcpt},
        {verb::data,      data_state,     nullptr,            true,  nullptr,     nullptr,     nullptr,     data},
        {verb::rset,      nullptr,        nullptr,            false, nullptr,     nullptr,     nullptr,     rset},
        {verb::noop,      nullptr,        nullptr,            false, nullptr,     nullptr,     nullptr,     noop},
        {verb::quit,      nullptr,        nullptr,            false, nullptr,     nullptr,     nullptr,     quit},
        {verb::vrfy,      nullptr,        nullptr,            false, nullptr,     nullptr,     nullptr,     vrfy},
        {verb::help,      nullptr,        nullptr,            false, nullptr,     nullptr,     nullptr,     help},
        {verb::starttls,  starttls_state, starttls_available, false, nullptr,     nullptr,     nullptr,     starttls},
        {verb::auth,      auth_state,     auth_tls,           false, nullptr,     auth_syntax, nullptr,     auth},
        {verb::expn,      never,          nullptr,            false, nullptr,     nullptr,     nullptr,     unsupported},
        {verb::bdat,      never,          nullptr,            false, nullptr,     nullptr,     nullptr,     unsupported},
    }};

    static const rule* find(verb v) {
        for (const auto& r : table)
            if (r.kind == v) return &r;
        return nullptr;
    }

    // The checks, in order; the first refusal is the reply.
    static std::variant<command, reply> check(const server_session& s, const rule& r, std::string_view line) {
        if (r.state != nullptr)
            if (auto e = r.state(s)) return *e;
        if (r.tls != nullptr)
            if (auto e = r.tls(s)) return *e;
        if (r.needs_auth && s.sender_identity().empty()) return replies::not_authenticated();
        if (r.limits != nullptr)
            if (auto e = r.limits(s)) return *e;
        auto parsed = parse_command(line);
        if (auto* err = std::get_if<parse_error>(&parsed)) return reply(err->code, err->enhanced, err->text);
        auto& cmd = std::get<command>(parsed);
        if (r.syntax != nullptr)
            if (auto e = r.syntax(s, cmd)) return *e;
        if (r.policy != nullptr && !s.options_.deferred_policy)
            if (auto e = r.policy(s, cmd)) return *e;
        return std::move(cmd);
    }
};

server_session::server_session(server_options options, server_policy* policy)
    : options_(std::move(options)), policy_(policy) {
    tls_ = options_.implicit_tls;
}

std::string server_session::greeting() const { return replies::greeting(options_.hostname).wire(); }

void server_session::feed(std::string_view bytes) {
    if (state_ == state::closed) return;
    in_.append(bytes);
}

step server_session::advance() {
    // A piece of DATA handed out, or a discard, is done with once the driver asks for more.
    if (pending_ == action::data_chunk || pending_ == action::discard) pending_ = action::need_input;
    while (pending_ == action::need_input && state_ != state::closed) {
        const bool progressed = (state_ == state::data && data_) ? handle_data_bytes() : next_line();
        if (!progressed) break;
    }
    in_.erase(0, pos_);
    pos_ = 0;
    step s{std::move(out_), pending_};
    out_.clear();
    return s;
}

bool server_session::next_line() {
    const bool lf_ends_lines = options_.bare_lf_mode == bare_lf::accept;
    const std::string_view buf = std::string_view(in_).substr(pos_);
    // RFC 4954 4: a SASL response line, and the AUTH command with its
    // initial response, may be up to 12288 octets.
    const bool auth_line = state_ == state::auth || (buf.size() >= 5 && text::iequals(buf.substr(0, 5), "AUTH "));
    const std::size_t limit = auth_line ? std::max<std::size_t>(options_.max_command_line, 12288)
                                        : options_.max_command_line;
    const auto lf = buf.find('\n');
    if (lf == std::string_view::npos) {
        // max_command_line bytes plus a CR may still become a valid line.
        if (!discard_line_ && buf.size() > limit + 1) {
            refuse_line(line_too_long());
            discard_line_ = true;
        }
        // Drop everything but a CR that may begin the line's CRLF (a closed
        // session has dropped its input already).
        if (discard_line_ && state_ != state::closed) pos_ = in_.size() - (buf.ends_with('\r') ? 1 : 0);
        return false;
    }
    const bool crlf = lf > 0 && buf[lf - 1] == '\r';
    pos_ += lf + 1;
    // Only CRLF ends a line, unless bare LF is accepted. Every piece of a line
    // with a bare LF gets its refusal at once, and nothing in it is ever
    // taken for a command.
    const bool bare = !crlf && !lf_ends_lines;
    const bool tainted = bare || after_bare_lf_;
    after_bare_lf_ = bare;
    if (discard_line_) {
        discard_line_ = false;
        return true;
    }
    const std::string line(buf.substr(0, crlf ? lf - 1 : lf));
    if (tainted) {
        refused_bare_lf_ = true;
        refuse_line({500, "5.5.2", "Bare LF received, use CRLF"});
    } else if (line.size() > limit) {
        refuse_line(line_too_long());
    } else {
        handle_line(line);
    }
    return true;
}

void server_session::refuse_line(const reply& r) {
    if (state_ == state::auth) end_auth_exchange();  // a refused response ends the exchange
    bad_command(r);
}

void server_session::end_auth_exchange() {
    auth_ = {};
    set_state(authenticated() || greeted_ ? state::ready : state::initial);
}

void server_session::handle_line(const std::string& line) {
    if (state_ == state::auth) {
        handle_auth_response(line);
        return;
    }
    // A bare CR inside a command is refused whole (a bare LF ended the line in next_line).
    if (line.find('\r') != std::string::npos || line.find('\0') != std::string::npos) {
        bad_command({500, "5.5.2", "Error: invalid character in command"});
        return;
    }
    const auto* rule = commands::find(parse_verb(std::string_view(line).substr(0, line.find(' '))));
    if (rule == nullptr) {
        bad_command(unrecognized());
        return;
    }
    if (is_junk(rule->kind) && ++junk_commands_ > options_.max_junk_commands) {
        reply_with({421, "4.7.0", options_.hostname + " Error: too many commands that send no mail"});
        close_session();
        return;
    }
    auto checked = commands::check(*this, *rule, line);
    if (auto* refusal = std::get_if<reply>(&checked)) {
        note_refusal(rule->kind, *refusal);
        refuse_command(*refusal);
        return;
    }
    auto& cmd = std::get<command>(checked);
    if (rule->policy != nullptr && options_.deferred_policy) {
        // The driver decides, maybe after a wait; pipelined commands after
        // this one stay buffered until it has.
        check_ = policy_check{rule->kind, sender_identity(), envelope_.sender, cmd.path, 0};
        if (const auto size = cmd.params.find("SIZE"); rule->kind == verb::mail && size != cmd.params.end())
            check_.declared_size = static_cast<std::size_t>(std::stoull(size->second));
        checked_ = std::move(cmd);
        pending_ = action::check_policy;
        return;
    }
    rule->proceed(*this, cmd);
}

void server_session::refuse_command(const reply& r) {
    if (counts_as_error(r))
        bad_command(r);
    else
        reply_with(r);
    // A 421 (from a policy: a rate limit, say) ends the session, as RFC 5321 3.8 says.
    if (r.code == 421) close_session();
}

void server_session::note_refusal(verb kind, const reply& r) const {
    if (!refused_) return;
    if (kind == verb::mail) refused_("mail", r);
    else if (kind == verb::rcpt) refused_("rcpt", r);
    else if (kind == verb::data) refused_("data", r);
}

void server_session::policy_checked(const std::optional<reply>& refusal) {
    if (pending_ != action::check_policy || !checked_) return;
    pending_ = action::need_input;
    command cmd = std::move(*checked_);
    checked_.reset();
    if (refusal) {
        refuse_command(*refusal);
        return;
    }
    commands::find(check_.kind)->proceed(*this, cmd);
}

void server_session::handle_auth_response(const std::string& line) {
    if (line == "*") {
        end_auth_exchange();
        reply_with({501, "5.0.0", "Authentication cancelled"});
        return;
    }
    auto decoded = text::base64_decode(line);
    if (!decoded) {
        end_auth_exchange();
        bad_command({501, "5.5.2", "Error: invalid base64 data"});
        return;
    }
    auth_.first = false;
    auth_.has_initial_response = false;
    auth_.data = std::move(*decoded);
    pending_ = action::authenticate;
}

bool server_session::handle_data_bytes() {
    // A slice at a time: what waits for the driver stays near one chunk
    // however much input was fed at once.
    const std::size_t kept = data_->message().size();
    const std::size_t slice = kept < options_.data_chunk_size ? options_.data_chunk_size - kept : 1;
    pos_ += data_->consume(std::string_view(in_).substr(pos_, slice));
    if (!data_dropped_ && (data_->too_big() || data_->saw_bare_lf())) {
        // Refused whatever follows: keep nothing more, and let the driver
        // drop what it wrote. The reply waits for the end of the message.
        data_->drop_content();
        data_dropped_ = true;
        pending_ = action::discard;
        return true;
    }
    if (data_->done()) {
        end_of_data();
        return true;
    }
    if (data_->message().size() >= options_.data_chunk_size) {
        pending_ = action::data_chunk;
        return true;
    }
    return pos_ < in_.size();
}

void server_session::end_of_data() {
    const bool too_big = data_->too_big();
    const bool bare_lf_seen = data_->saw_bare_lf();
    if (!too_big && !bare_lf_seen && !data_failure_) {
        pending_ = action::store;  // data_ keeps the rest of the message for take_data()
        return;
    }
    const std::optional<reply> failure = data_failure_;
    reset_transaction();
    set_state(state::ready);
    if (too_big) {
        note_refusal(verb::data, message_too_big());
        reply_with(message_too_big());
    } else if (bare_lf_seen) {
        // Sent on, the message would differ from what the client meant
        // (its line ends and dot-stuffing disagree with ours): refuse it whole.
        refused_bare_lf_ = true;
        const reply bare({550, "5.6.0", "Bare LF received, use CRLF"});
        note_refusal(verb::data, bare);
        reply_with(bare);
    } else {
        reply_with(*failure);
    }
}

const std::string& server_session::data() const {
    static const std::string none;
    return data_ ? data_->message() : none;
}

void server_session::take_data(std::string& out) {
    if (data_)
        data_->take_message_into(out);
    else
        out.clear();
}

void server_session::data_failed(const reply& r) {
    if (state_ != state::data || !data_ || pending_ == action::store) return;
    data_failure_ = r;
    data_->drop_content();
    data_dropped_ = true;
}

void server_session::tls_started() {
    tls_ = true;
    in_.clear();
    pos_ = 0;
    discard_line_ = false;
    after_bare_lf_ = false;
    identity_.clear();
    envelope_ = {};
    esmtp_ = false;
    greeted_ = false;
    reset_transaction();
    auth_ = {};
    set_state(state::initial);
    pending_ = action::need_input;
}

void server_session::auth_challenge(std::string_view challenge) {
    if (state_ != state::auth) return;
    reply_with({334, "", text::base64_encode(challenge)});
    pending_ = action::need_input;
}

void server_session::auth_success(std::string identity) {
    if (state_ != state::auth) return;
    identity_ = std::move(identity);
    auth_ = {};
    set_state(state::ready);
    reply_with({235, "2.7.0", "Authentication successful"});
    pending_ = action::need_input;
}

void server_session::auth_failure(const reply& r) {
    if (state_ != state::auth) return;
    ++auth_failures_;
    end_auth_exchange();
    reply_with(r);
    pending_ = action::need_input;
    if (auth_failures_ >= options_.max_auth_failures) {
        reply_with({421, "4.7.0", "Too many authentication failures"});
        close_session();
    }
}

bool server_session::is_junk(verb kind) const {
    switch (kind) {
    case verb::noop:
    case verb::rset:
    case verb::help:
    case verb::vrfy: return true;
    case verb::helo:
    case verb::ehlo: return greeted_;
    default: return false;
    }
}

void server_session::stored(const reply& r) {
    if (pending_ != action::store) return;
    if (r.code / 100 == 2) junk_commands_ = 0;
    reply_with(r);
    reset_transaction();
    set_state(state::ready);
    pending_ = action::need_input;
}

std::string server_session::on_timeout() const { return replies::timeout(options_.hostname).wire(); }

std::string server_session::on_shutdown() const { return replies::shutting_down(options_.hostname).wire(); }

void server_session::reply_with(const reply& r) {
    out_ += r.wire();
    if (trace_) trace_("reply " + r.summary());
}

void server_session::bad_command(const reply& r) {
    if (++unknown_commands_ > options_.max_unknown_commands) {
        reply_with({421, "4.7.0", options_.hostname + " Error: too many errors"});
        close_session();
        return;
    }
    reply_with(r);
}

void server_session::set_state(state s) {
    if (s == state_) return;
    if (trace_) trace_(std::string("state ") + state_name(state_) + " -> " + state_name(s));
    state_ = s;
}

void server_session::close_session() {
    set_state(state::closed);
    pending_ = action::close;
    in_.clear();
    pos_ = 0;
}

void server_session::reset_transaction() {
    envelope_.sender.clear();
    envelope_.recipients.clear();
    envelope_.identity.clear();
    envelope_.smtputf8 = false;
    envelope_.body_type.clear();
    declared_size_ = 0;
    data_.reset();
    data_dropped_ = false;
    data_failure_.reset();
}

reply server_session::ehlo_reply() const {
    std::vector<std::string> lines{options_.hostname, "PIPELINING", "SIZE " + std::to_string(options_.max_message_size),
                                   "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"};
    if (options_.tls_available && !tls_) lines.emplace_back("STARTTLS");
    if ((tls_ || !options_.require_tls_for_auth) && !options_.auth_mechanisms.empty()) {
        std::string line = "AUTH";
        for (const auto& m : options_.auth_mechanisms) line += ' ' + m;
        lines.push_back(std::move(line));
    }
    return {250, "", std::move(lines)};
}

}  // namespace subrelay::smtp
