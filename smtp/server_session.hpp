#pragma once
// The server side of SMTP submission as a pure state machine: bytes in,
// bytes out and "what to do next". No sockets, no clocks, no threads.
//
// A driver (relay/session) does:
//     write(session.greeting());
//     loop: feed(bytes read);
//           for (;;) { step s = session.advance(); write(s.send);
//                      switch (s.next) { need_input: read more; start_tls: handshake,
//                      tls_started(); authenticate: run SASL, auth_*();
//                      data_chunk: append take_data() to the message being written
//                      (data_failed() if that fails); discard: drop that message;
//                      store: append take_data(), make it durable, stored();
//                      close: done } }
// Replies to pipelined commands are batched in one step's `send`. DATA is
// handed out as it arrives, unstuffed, in pieces of about data_chunk_size
// bytes: the session never holds a whole message.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/command.hpp"
#include "smtp/data.hpp"
#include "smtp/reply.hpp"

namespace subrelay::smtp {

struct server_options {
    std::string hostname = "localhost";
    std::size_t max_message_size = 36700160;   // advertised in SIZE, enforced on DATA
    std::size_t max_recipients = 500;
    std::size_t max_command_line = 2048;       // bytes, without CRLF
    bool tls_available = true;                 // STARTTLS may be offered
    bool implicit_tls = false;                 // session starts inside TLS (port 465)
    bool require_tls_for_auth = true;
    std::vector<std::string> auth_mechanisms = {"PLAIN", "LOGIN"};
    std::size_t max_auth_failures = 3;         // then 421 and close
    std::size_t max_unknown_commands = 20;     // then 421 and close
    // Commands that move no mail (NOOP, RSET, HELP, VRFY, and HELO/EHLO after
    // the first) before one more gets 421 and the connection is closed, like
    // Postfix's smtpd_junk_command_limit; an accepted message starts the
    // count again.
    std::size_t max_junk_commands = 100;
    // reject: a line ending in a bare LF is refused at once (500 5.5.2), and
    // a message with one is refused after its <CRLF>.<CRLF> (550 5.6.0).
    // accept: a bare LF ends a command or a DATA line (old devices).
    bare_lf bare_lf_mode = bare_lf::reject;
    // DATA is handed to the driver in pieces of at least this many bytes
    // (the last one may be smaller), and at most about twice that is held.
    std::size_t data_chunk_size = 128 * 1024;
    // false: MAIL and RCPT are checked by calling the server_policy. true:
    // the session stops at each with action::check_policy and the driver
    // answers with policy_checked(), so that a check may wait (for counters
    // shared between nodes) without holding up the driver's thread.
    bool deferred_policy = false;
};

// What the policy says about a sender or recipient. Called synchronously
// (unless server_options::deferred_policy): the implementation must not
// block (policy is in memory).
class server_policy {
public:
    virtual ~server_policy() = default;
    // nullopt: accepted. Otherwise the reply to give (e.g. 550 5.7.60).
    virtual std::optional<reply> check_sender(const std::string& identity, const std::string& address) = 0;
    virtual std::optional<reply> check_recipient(const std::string& identity, const std::string& sender,
                                                 const std::string& address) = 0;
};

enum class action {
    need_input,    // read more bytes, then feed() and advance() again
    start_tls,     // write `send`, then TLS handshake, then tls_started() (or close on failure)
    authenticate,  // run the authenticator with auth_request(), then auth_challenge/success/failure
    data_chunk,    // append take_data() to the message being received (for current_envelope()),
                   // then advance() again; data_failed(reply) instead if that failed
    discard,       // the message being received is refused: drop what was appended, then advance() again
    store,         // append take_data() (the rest, maybe empty), make the message durable,
                   // then stored(reply)
    check_policy,  // (deferred_policy) decide about pending_check(), then policy_checked()
    close,         // write `send`, then close the connection
};

struct step {
    std::string send;  // bytes to write before acting on `next`
    action next = action::need_input;
};

struct envelope {
    std::string helo;                     // name given in HELO/EHLO
    std::string sender;                   // MAIL FROM path ("" for <>)
    std::vector<std::string> recipients;  // RCPT TO paths, in order
    std::string identity;                 // authenticated account (empty if none)
    bool smtputf8 = false;
    std::string body_type;                // "", "7BIT" or "8BITMIME"
};

// A MAIL or RCPT waiting for the policy (server_options::deferred_policy):
// its syntax and the session's own checks passed.
struct policy_check {
    verb kind = verb::mail;   // verb::mail or verb::rcpt
    std::string identity;     // the account it is checked against
    std::string sender;       // RCPT: the transaction's MAIL FROM path ("" for <>)
    std::string address;      // the path of this command
    std::size_t declared_size = 0;  // MAIL: its SIZE= parameter (0: none)
};

struct auth_request {
    std::string mechanism;              // upper-cased ("PLAIN", "LOGIN")
    // The client's data, base64-decoded. `first` is true for the initial
    // step (with data = initial response if `has_initial_response`).
    bool first = true;
    bool has_initial_response = false;
    std::string data;
};

class server_session {
public:
    explicit server_session(server_options options, server_policy* policy = nullptr);

    // 220 greeting.
    [[nodiscard]] std::string greeting() const;

    // Appends bytes read from the client.
    void feed(std::string_view bytes);
    // Bytes fed but not yet processed (bounded by max_command_line in
    // command mode once advance() has run).
    [[nodiscard]] std::size_t buffered() const { return in_.size() - pos_; }

    // Processes buffered input until more input or an action is needed.
    step advance();

    // The TLS handshake of a start_tls step succeeded: input buffered
    // before it was discarded and the session is reset to its initial state.
    void tls_started();

    // After action::authenticate: what the authenticator decided.
    [[nodiscard]] const auth_request& pending_auth() const { return auth_; }
    void auth_challenge(std::string_view challenge);   // sends 334 base64(challenge)
    void auth_success(std::string identity);           // 235 2.7.0 Authentication successful
    void auth_failure(const reply& r);                 // e.g. 535 5.7.139 ...; counts failures

    // After action::check_policy: the command to decide about, and the
    // decision (nullopt: accepted; otherwise the reply, e.g. 550 5.7.60 or
    // 421 4.4.2, which also ends the session).
    [[nodiscard]] const policy_check& pending_check() const { return check_; }
    void policy_checked(const std::optional<reply>& refusal);

    // The envelope of the transaction; fixed once DATA is answered 354.
    [[nodiscard]] const envelope& current_envelope() const { return envelope_; }
    // After action::data_chunk and action::store: the unstuffed message
    // bytes not yet taken (a small message comes whole with its store).
    [[nodiscard]] const std::string& data() const;
    // Moves data() into `out` (its content replaced). The buffers are
    // swapped: a driver that passes the same string each time allocates
    // nothing per piece.
    void take_data(std::string& out);
    // After action::data_chunk: the driver could not write the message
    // (4xx, e.g. 452 4.3.1 when the disk is full). The rest of it is read and
    // dropped, and `r` answers its end.
    void data_failed(const reply& r);
    // The spool's answer: 250 2.0.0 Ok: queued as ID, or 4xx. Resets the transaction.
    void stored(const reply& r);

    // Replies for events the driver detects (timeouts, shutdown). Both end the session.
    [[nodiscard]] std::string on_timeout() const;
    [[nodiscard]] std::string on_shutdown() const;

    [[nodiscard]] bool tls_active() const { return tls_; }
    [[nodiscard]] bool authenticated() const { return !identity_.empty(); }
    [[nodiscard]] const std::string& identity() const { return identity_; }
    [[nodiscard]] const std::string& helo_name() const { return envelope_.helo; }
    [[nodiscard]] bool esmtp() const { return esmtp_; }
    // A bare LF was refused in this session (a command or a message).
    [[nodiscard]] bool refused_bare_lf() const { return refused_bare_lf_; }

    // Sets the identity as if AUTH had succeeded (tests, tools).
    void set_identity(std::string identity) { identity_ = std::move(identity); }
    // A network binding: clients from a bound address may send without AUTH
    // as this account. AUTH stays possible and, when it succeeds, wins. The
    // binding survives STARTTLS (it depends on the address, not the session).
    void set_bound_identity(std::string identity) { bound_identity_ = std::move(identity); }
    // The account MAIL is checked against: the authenticated one, else the bound one.
    [[nodiscard]] const std::string& sender_identity() const { return identity_.empty() ? bound_identity_ : identity_; }
    [[nodiscard]] bool bound() const { return identity_.empty() && !bound_identity_.empty(); }

    enum class state { initial, ready, mail, rcpt, data, auth, closed };
    [[nodiscard]] state current_state() const { return state_; }

    // Optional observer of every reply sent ("reply 250 2.0.0 Ok") and every
    // state change ("state ready -> mail"), for logging. Never sees AUTH data.
    void set_trace(std::function<void(std::string_view)> trace) { trace_ = std::move(trace); }
    // Optional observer of each refusal the session makes by itself of a
    // MAIL, RCPT or DATA (out of sequence, not authenticated, bad syntax,
    // too many recipients, a message too big or with a bare LF), with its
    // stage ("mail", "rcpt", "data"). What the driver decides (policy_checked,
    // data_failed, stored) is the driver's to observe.
    using refusal_observer = std::function<void(std::string_view stage, const reply& r)>;
    void set_refusal_observer(refusal_observer observer) { refused_ = std::move(observer); }

private:
    // The command table and its check/proceed steps (see .cpp).
    struct commands;

    bool next_line();                 // false: more input needed
    void handle_line(const std::string& line);
    void handle_auth_response(const std::string& line);
    bool handle_data_bytes();         // false: more input needed
    void end_of_data();               // the terminator was read
    void refuse_line(const reply& r); // a line refused before it was read as a command
    void refuse_command(const reply& r);  // a command refused by a check or the policy
    void note_refusal(verb kind, const reply& r) const;  // tells refused_ of a MAIL, RCPT or DATA refused
    void end_auth_exchange();         // back to where AUTH began
    void reply_with(const reply& r);  // every reply goes through here
    void bad_command(const reply& r);  // reply, count, and close after too many
    [[nodiscard]] bool is_junk(verb kind) const;
    void set_state(state s);          // every state change goes through here
    void close_session();
    void reset_transaction();
    [[nodiscard]] reply ehlo_reply() const;

    server_options options_;
    server_policy* policy_;
    std::function<void(std::string_view)> trace_;
    refusal_observer refused_;
    std::string in_;          // unprocessed input (from pos_)
    std::size_t pos_ = 0;
    std::string out_;         // replies accumulated for the next step
    action pending_ = action::need_input;
    state state_ = state::initial;
    bool tls_ = false;
    bool esmtp_ = false;
    bool discard_line_ = false;   // inside an over-long line: drop until its end
    bool after_bare_lf_ = false;  // bare_lf::reject: the line so far had a bare LF
    bool refused_bare_lf_ = false;
    bool greeted_ = false;        // HELO or EHLO succeeded (state::initial is left by AUTH too)
    std::string identity_;
    std::string bound_identity_;
    envelope envelope_;
    auth_request auth_;
    policy_check check_;                 // action::check_policy: what the driver decides about
    std::optional<command> checked_;     // ... and the command that proceeds if accepted
    std::size_t auth_failures_ = 0;
    std::size_t unknown_commands_ = 0;
    std::size_t junk_commands_ = 0;     // since the last accepted message
    std::size_t declared_size_ = 0;
    std::optional<data_reader> data_;   // while in state::data
    bool data_dropped_ = false;         // the driver was told to discard, or failed itself
    std::optional<reply> data_failure_; // data_failed(): the reply to the end of DATA
};

}  // namespace subrelay::smtp
