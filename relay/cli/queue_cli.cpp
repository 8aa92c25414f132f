// `subrelay queue ...`: look at and change the queue (list, show, retry,
// hold, release, delete), like Postfix's postqueue and postsuper, and take
// over another node's spool (import). While the relay runs, changes are
// asked of it over its control socket (relay/server/control.hpp): it alone
// writes queue state. Without a relay, each change takes the message's lock
// (relay/spool/queue_state.hpp); an import takes the whole spool, as the
// relay would (relay/spool/import.hpp).

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include <boost/json.hpp>

#include "conf/config.hpp"
#include "relay/cli/spool_owner.hpp"
#include "relay/cli/verb.hpp"
#include "policy/policy.hpp"
#include "relay/server/control.hpp"
#include "relay/spool/import.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"
#include "smtp/text/ascii.hpp"
#include "smtp/text/time.hpp"

namespace subrelay::relay {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// What the command line asks for.
struct options {
    std::string action;
    std::vector<std::string> ids;
    std::string import_dir;  // `import DIR`
    bool all = false;
    bool json = false;
    bool yes = false;
    std::string config;
};

// Reads `queue ACTION ...` from the parsed command line. Returns the exit
// status of a usage error.
std::optional<int> read_options(const invocation& v, options& o) {
    static const std::set<std::string> actions = {"list", "show", "retry", "hold", "release", "delete", "import"};
    o.config = v.config_file();
    o.all = v.opts.flag("all");
    o.json = v.opts.flag("json");
    o.yes = v.opts.flag("yes");
    const auto& words = v.opts.positionals;
    if (words.empty()) return v.usage_error("which action? list, show, retry, hold, release, delete or import");
    o.action = words.front();
    if (!actions.count(o.action)) return v.usage_error("unknown action '" + o.action + "'");
    if (o.action == "import") {
        if (words.size() != 2 || words[1].empty() || o.all || o.json || o.yes)
            return v.usage_error("`queue import` takes one directory: the other node's spool");
        o.import_dir = words[1];
        return std::nullopt;
    }
    // Queue ids are upper case; accept them in any case.
    for (auto it = words.begin() + 1; it != words.end(); ++it) o.ids.push_back(text::ascii_upper(*it));
    const std::string& act = o.action;
    if (o.json && act != "list") return v.usage_error("--json is for `queue list`");
    if (o.yes && act != "delete") return v.usage_error("--yes is for `queue delete`");
    if (act == "list") {
        if (!o.ids.empty() || o.all) return v.usage_error("`queue list` takes no message ids");
    } else if (act == "show") {
        if (o.ids.size() != 1 || o.all) return v.usage_error("`queue show` takes one message id");
    } else {
        if (o.ids.empty() && !o.all) return v.usage_error("`queue " + act + "` needs message ids or --all");
        if (!o.ids.empty() && o.all) return v.usage_error("give message ids or --all, not both");
    }
    return std::nullopt;
}

// "45s", "3m", "2h", "5d".
std::string short_duration(std::int64_t seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 60) return std::to_string(seconds) + "s";
    if (seconds < 3600) return std::to_string(seconds / 60) + "m";
    if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
    return std::to_string(seconds / 86400) + "d";
}

// "812", "12K", "35M".
std::string short_size(std::uint64_t bytes) {
    if (bytes < 10000) return std::to_string(bytes);
    if (bytes < 10ull * 1024 * 1024) return std::to_string((bytes + 512) / 1024) + "K";
    return std::to_string((bytes + 512 * 1024) / (1024 * 1024)) + "M";
}

std::string sender_text(const std::string& sender) { return sender.empty() ? "<>" : sender; }

// What `list` shows of one message.
struct row {
    spool_envelope env;
    std::uint64_t size = 0;
    queue_state state;
    std::vector<std::string> left;  // recipients still to deliver
    std::string status;             // from the running relay: ready, in_flight, waiting, parked ("" without one)
    std::string waiting_for;        // parked: why its upstream mailbox is unavailable
    std::string lane_hint;          // parked: the fix for that
};

// What the running relay says about its messages and upstream mailboxes.
struct live_status {
    json::object messages;  // id -> {"status", "upstream_mailbox", "due"}
    std::map<std::string, json::object> lanes;
};

std::string text_in(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end() && it->value().is_string()) return std::string(it->value().get_string());
    return {};
}

std::string next_text(const queue_state& st, std::int64_t now, const std::string& status = {}) {
    if (st.held) return "held";
    if (status == "in_flight") return "sending";
    if (status == "parked") return "upstream";  // when its upstream mailbox is available again
    if (st.next_attempt <= now) return "now";
    return "in " + short_duration(st.next_attempt - now);
}

json::array json_strings(const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
}

class queue_command {
public:
    queue_command(options o, const conf::config& cfg, std::istream& in, std::ostream& out, std::ostream& err)
        : o_(std::move(o)), cfg_(cfg), dir_(cfg.spool.dir), spool_(dir_), states_(dir_), in_(in), out_(out), err_(err) {}

    int run() {
        live_ = ask_status();
        const std::string& a = o_.action;
        if (a == "list") return list();
        if (a == "show") return show(o_.ids.front());
        if (a == "import") return import_spool();
        return change();
    }

private:
    options o_;
    const conf::config& cfg_;
    fs::path dir_;
    spool spool_;
    state_store states_;
    std::istream& in_;
    std::ostream& out_;
    std::ostream& err_;
    int status_ = 0;
    std::optional<live_status> live_;  // set when a relay runs on this spool

    std::optional<live_status> ask_status() {
        std::optional<json::object> reply = ask_relay(dir_, json::object{{"verb", "status"}});
        if (!reply) return std::nullopt;
        live_status s;
        if (auto it = reply->find("messages"); it != reply->end() && it->value().is_object())
            s.messages = it->value().get_object();
        if (auto it = reply->find("lanes"); it != reply->end() && it->value().is_array())
            for (const auto& l : it->value().get_array())
                if (l.is_object()) s.lanes[text_in(l.get_object(), "upstream_mailbox")] = l.get_object();
        return s;
    }

    // Adds what the running relay knows: whether the message is being sent,
    // or waits for its upstream mailbox (and why that is unavailable).
    void add_live(row& r) const {
        if (!live_) return;
        auto m = live_->messages.find(r.env.id);
        if (m == live_->messages.end() || !m->value().is_object()) return;
        const json::object& o = m->value().get_object();
        r.status = text_in(o, "status");
        if (r.status != "parked") return;
        auto l = live_->lanes.find(text_in(o, "upstream_mailbox"));
        if (l == live_->lanes.end()) return;
        r.waiting_for = "upstream mailbox " + l->first + " unavailable: " + text_in(l->second, "reason");
        r.lane_hint = text_in(l->second, "hint");
    }

    void fail(const std::string& what) {
        err_ << "subrelay queue " << o_.action << ": " << what << '\n';
        status_ = 1;
    }

    [[nodiscard]] fs::path message_path(const std::string& id) const { return dir_ / "queue" / id; }

    [[nodiscard]] bool in_queue(const std::string& id) const {
        static const auto valid = [](const std::string& s) {
            return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
                   });
        };
        std::error_code ec;
        return valid(id) && fs::is_regular_file(message_path(id), ec);
    }

    void no_such_message(const std::string& id) { fail("no message " + id + " in the queue"); }

    std::vector<std::string> all_ids() {
        std::error_code ec;
        if (!fs::exists(dir_ / "queue", ec)) return {};
        return spool_.list();
    }

    // The state of a message, or a fresh one; a damaged file is reported.
    queue_state state_of(const std::string& id) {
        try {
            if (auto s = states_.load(id)) return *s;
        } catch (const std::exception& e) {
            fail(e.what());
        }
        return {};
    }

    std::optional<row> load_row(const std::string& id) {
        row r;
        try {
            auto msg = spool_.open_message(id);  // the envelope and the first bytes, not the whole
            r.env = std::move(msg.envelope);
            r.size = msg.size();
        } catch (const spool_error& e) {
            // Delivered (and removed) since the directory was read: not an error.
            if (in_queue(id)) fail(e.what());
            return std::nullopt;
        }
        r.state = state_of(id);
        r.left = recipients_left(r.env.recipients, r.state);
        add_live(r);
        return r;
    }

    int list() {
        const std::int64_t now = now_seconds();
        std::vector<row> rows;
        for (const auto& id : all_ids())
            if (auto r = load_row(id)) rows.push_back(std::move(*r));
        // Oldest first (ids sort by arrival in this spool; received_at is what the sender saw).
        std::stable_sort(rows.begin(), rows.end(),
                         [](const row& a, const row& b) { return a.env.received_at < b.env.received_at; });
        if (o_.json) {
            json::array a;
            for (const auto& r : rows) {
                json::array failed;
                for (const auto& f : r.state.failed) failed.emplace_back(json::object{{"address", f.address}, {"reply", f.reply}});
                a.emplace_back(json::object{
                    {"id", r.env.id},
                    {"received_at", r.env.received_at},
                    {"age", short_duration(now - r.env.received_at)},
                    {"age_seconds", std::max<std::int64_t>(0, now - r.env.received_at)},
                    {"size", r.size},
                    {"sender", r.env.sender},
                    {"recipients", json_strings(r.left)},
                    {"delivered", json_strings(r.state.delivered)},
                    {"failed", std::move(failed)},
                    {"attempts", r.state.attempts},
                    {"next_attempt", r.state.next_attempt},
                    {"next", next_text(r.state, now, r.status)},
                    {"held", r.state.held},
                    {"status", r.status.empty() ? json::value(nullptr) : json::value(r.status)},
                    {"waiting_for", r.waiting_for},
                    {"last_reply", r.state.last_reply},
                    {"hint", r.lane_hint.empty() ? r.state.hint : r.lane_hint},
                    {"identity", r.env.identity},
                    {"upstream_mailbox", r.env.upstream_mailbox},
                });
            }
            out_ << json::serialize(a) << '\n';
            return status_;
        }
        if (rows.empty()) {
            out_ << "queue is empty\n";
            return status_;
        }
        auto cols = [this](std::string_view id, std::string_view age, std::string_view size, std::string_view tries,
                           std::string_view next, std::string_view rest) {
            out_ << std::left << std::setw(17) << id << ' ' << std::setw(5) << age << ' ' << std::setw(6) << size
                 << ' ' << std::setw(5) << tries << ' ' << std::setw(8) << next << ' ' << rest << '\n';
        };
        cols("ID", "AGE", "SIZE", "TRIES", "NEXT", "SENDER -> RECIPIENTS");
        std::uint64_t total = 0;
        for (const auto& r : rows) {
            total += r.size;
            cols(r.env.id, short_duration(now - r.env.received_at), short_size(r.size), std::to_string(r.state.attempts),
                 next_text(r.state, now, r.status), sender_text(r.env.sender) + " -> " + join(r.left, ", "));
            const std::string indent(18, ' ');
            if (!r.waiting_for.empty()) out_ << indent << "waiting: " << r.waiting_for << '\n';
            if (!r.state.last_reply.empty()) out_ << indent << "last: " << r.state.last_reply << '\n';
            if (!r.lane_hint.empty()) out_ << indent << "hint: " << r.lane_hint << '\n';
            else if (!r.state.hint.empty()) out_ << indent << "hint: " << r.state.hint << '\n';
        }
        out_ << "-- " << rows.size() << (rows.size() == 1 ? " message, " : " messages, ") << short_size(total)
             << " bytes\n";
        return status_;
    }

    int show(const std::string& id) {
        if (!in_queue(id)) {
            no_such_message(id);
            return status_;
        }
        spool::stored_message msg;  // the header section is all it shows of the message
        try {
            msg = spool_.open_message(id);
        } catch (const spool_error& e) {
            if (in_queue(id)) fail(e.what());
            else no_such_message(id);
            return status_;
        }
        const std::int64_t now = now_seconds();
        const spool_envelope& env = msg.envelope;
        const queue_state st = state_of(id);
        out_ << "id: " << env.id << '\n'
             << "received: " << text::iso8601_utc(env.received_at) << " (" << short_duration(now - env.received_at)
             << " ago)\n"
             << "sender: " << sender_text(env.sender) << '\n'
             << "identity: " << env.identity << '\n'
             << "upstream mailbox: " << env.upstream_mailbox << '\n'
             << "client: " << env.client_address << '\n'
             << "size: " << msg.size() << " bytes" << (env.eight_bit ? ", 8bit" : "")
             << (env.smtputf8 ? ", SMTPUTF8" : "") << '\n';
        auto list_of = [this](std::string_view title, const std::vector<std::string>& v) {
            out_ << title << ':' << (v.empty() ? " none" : "") << '\n';
            for (const auto& s : v) out_ << "  " << s << '\n';
        };
        list_of("recipients left", recipients_left(env.recipients, st));
        list_of("delivered", st.delivered);
        out_ << "failed:" << (st.failed.empty() ? " none" : "") << '\n';
        for (const auto& f : st.failed) out_ << "  " << f.address << ": " << f.reply << '\n';
        out_ << "attempts: " << st.attempts;
        if (st.first_attempt != 0) out_ << " (first " << text::iso8601_utc(st.first_attempt) << ')';
        row live;
        live.env = env;
        add_live(live);
        out_ << '\n' << "next attempt: " << next_text(st, now, live.status) << '\n';
        if (st.delay_warned) out_ << "delay notice: sent\n";
        if (!live.waiting_for.empty()) out_ << "waiting: " << live.waiting_for << '\n';
        if (!st.last_reply.empty()) out_ << "last reply: " << st.last_reply << '\n';
        if (!live.lane_hint.empty()) out_ << "hint: " << live.lane_hint << '\n';
        else if (!st.hint.empty()) out_ << "hint: " << st.hint << '\n';
        list_of("history", st.history);
        out_ << "headers:\n";
        std::string_view data = msg.head();
        while (!data.empty()) {
            std::size_t nl = data.find('\n');
            std::string_view line = data.substr(0, nl);
            data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.empty()) break;
            out_ << "  " << line << '\n';
        }
        return status_;
    }

    [[nodiscard]] bool on_terminal() const { return &in_ == &std::cin && ::isatty(STDIN_FILENO); }

    bool confirm_delete(const std::vector<std::string>& ids) {
        if (o_.yes) return true;
        if (!on_terminal()) {
            fail("refusing to delete without confirmation: run it at a terminal, or add --yes");
            return false;
        }
        err_ << "delete " << ids.size() << (ids.size() == 1 ? " message" : " messages");
        if (ids.size() <= 5) err_ << " (" << join(ids, ", ") << ')';
        err_ << " and the delivery state? [y/N] " << std::flush;
        std::string answer;
        std::getline(in_, answer);
        answer = text::ascii_lower(answer);
        if (answer == "y" || answer == "yes") return true;
        fail("nothing deleted");
        return false;
    }

    // retry, hold, release, delete: each message under its lock.
    int change() {
        const std::string& act = o_.action;
        std::vector<std::string> ids;
        if (o_.all) {
            ids = all_ids();
            if (ids.empty()) {
                out_ << "queue is empty\n";
                return 0;
            }
        } else {
            for (const auto& id : o_.ids) {
                if (in_queue(id)) ids.push_back(id);
                else no_such_message(id);
            }
            if (ids.empty()) return status_;
        }
        if (act == "delete" && !confirm_delete(ids)) return status_;
        if (live_) return ask_relay_to_change(ids);
        // No relay runs on this spool: change the files, each under its lock.
        for (const auto& id : ids) {
            std::optional<message_lock> lock;
            try {
                lock = message_lock::try_lock(message_path(id));
            } catch (const std::system_error& e) {
                fail(e.what());
                continue;
            }
            if (!lock && !in_queue(id)) {
                // Removed meanwhile.
                if (!o_.all) no_such_message(id);
                continue;
            }
            if (!lock) {
                fail(id + " is locked by another command; try again in a moment");
                continue;
            }
            try {
                apply(id);
            } catch (const std::exception& e) {
                fail(id + ": " + e.what());
            }
        }
        return status_;
    }

    // The running relay changes them: it alone writes queue state while it runs.
    int ask_relay_to_change(const std::vector<std::string>& ids) {
        json::array list;
        for (const auto& id : ids) list.emplace_back(id);
        std::optional<json::object> reply = ask_relay(dir_, json::object{{"verb", o_.action}, {"ids", std::move(list)}});
        if (!reply) {
            fail("the relay stopped while asked; run the command again");
            return status_;
        }
        if (auto ok = reply->find("ok"); ok == reply->end() || !ok->value().is_bool() || !ok->value().get_bool()) {
            fail("the relay refused: " + text_in(*reply, "error"));
            return status_;
        }
        const auto results = reply->find("results");
        if (results == reply->end() || !results->value().is_array()) return status_;
        for (const auto& v : results->value().get_array()) {
            if (!v.is_object()) continue;
            const json::object& r = v.get_object();
            const bool ok = r.contains("ok") && r.at("ok").is_bool() && r.at("ok").get_bool();
            const std::string text = text_in(r, "text");
            // Delivered meanwhile: not an error when everything was asked for.
            if (!ok && o_.all && text.rfind("no message ", 0) == 0) continue;
            if (ok) out_ << text << '\n';
            else fail(text);
        }
        return status_;
    }

    // Changes one locked message (no relay runs).
    void apply(const std::string& id) {
        const std::string& act = o_.action;
        if (act == "delete") {
            // The message first: a state file without its message is inert,
            // a message without its state would be delivered again in full.
            spool_.remove(id);
            states_.remove(id);
            out_ << id << ": deleted\n";
            return;
        }
        std::optional<queue_state> loaded = states_.load(id);
        queue_state st = loaded.value_or(queue_state{});
        if (act == "hold") {
            if (st.held) {
                out_ << id << ": already held\n";
                return;
            }
            st.held = true;
            save(id, st);
            out_ << id << ": held\n";
            return;
        }
        if (act == "release") {
            if (!st.held) {
                out_ << id << ": not held\n";
                return;
            }
            st.held = false;
            st.next_attempt = 0;
            save(id, st);
            out_ << id << ": released\n";
            return;
        }
        // retry
        if (loaded && st.next_attempt != 0) {
            st.next_attempt = 0;
            save(id, st);
        }
        out_ << id << ": retry requested";
        if (st.held) out_ << " (held: `subrelay queue release " << id << "` delivers it)";
        out_ << '\n';
    }

    void save(const std::string& id, const queue_state& st) {
        states_.open();
        states_.save(id, st);
    }

    // `queue import DIR`: the messages of another node's spool, imported
    // into this one (relay/spool/import.hpp) and removed from DIR, each with
    // its envelope and queue state. While the relay runs it does the work,
    // a message per request, and starts delivering each at once; otherwise
    // this command takes the spool as the relay would and writes it itself.
    struct import_tally {
        std::size_t imported = 0;
        std::size_t already = 0;
        std::size_t skipped = 0;
        std::size_t left = 0;  // imported but still in DIR too (a re-run removes it)
    };

    int import_spool() {
        fs::path from = fs::absolute(o_.import_dir).lexically_normal();  // the relay does not share our directory
        if (from.filename().empty()) from = from.parent_path();
        std::error_code ec;
        if (!fs::is_directory(from / "queue", ec)) {
            fail(from.string() + " is not a spool directory: it has no queue/");
            return status_;
        }
        if (fs::equivalent(from, dir_, ec)) {
            fail(from.string() + " is this node's own spool (spool.dir)");
            return status_;
        }
        std::size_t unacknowledged = 0;
        try {
            unacknowledged = unacknowledged_files(from);
        } catch (const spool_error& e) {
            fail(e.what());
            return status_;
        }
        import_tally t;
        if (live_) import_through_relay(from, t);
        else import_here(from, t);
        // Refused before any message: the error says all.
        if (status_ != 0 && t.imported + t.already + t.skipped == 0) return status_;
        out_ << "-- " << t.imported << " imported, " << t.already << " already imported before, " << t.skipped
             << " skipped (left in " << (from / "queue").string() << "); " << unacknowledged
             << " never-acknowledged file(s) in " << (from / "tmp").string() << " not imported\n";
        if (t.skipped > 0 || t.left > 0) status_ = 1;
        return status_;
    }

    // One message's outcome, as a line and in the tally.
    void report_import(const std::string& outcome, const std::string& text, const std::string& id,
                       const std::string& mailbox, bool mailbox_configured, bool source_removed, import_tally& t) {
        out_ << text << '\n';
        if (outcome == "imported") ++t.imported;
        else if (outcome == "already") ++t.already;
        else ++t.skipped;
        if (outcome != "skipped" && !source_removed) ++t.left;
        if (outcome == "imported" && !mailbox_configured)
            err_ << "subrelay queue import: warning: " << id << ": upstream mailbox " << mailbox
                 << " is not configured on this node (not upstream.mailbox, in no OAuth profile, the "
                    "upstream_mailbox of no account); it is imported, tried through the default OAuth profile, "
                    "and stays queued if the upstream refuses it\n";
    }

    void import_through_relay(const fs::path& from, import_tally& t) {
        std::vector<std::string> names;
        try {
            names = queue_names(from);
        } catch (const spool_error& e) {
            fail(e.what());
            return;
        }
        for (const auto& name : names) {
            std::optional<json::object> reply;
            try {
                reply = ask_relay(dir_, json::object{{"verb", "import"}, {"dir", from.string()}, {"ids", json::array{json::value(name)}}});
            } catch (const std::exception& e) {
                fail(std::string(e.what()) + "; import again: what was imported stays imported, and is not imported twice");
                return;
            }
            if (!reply) {
                fail("the relay stopped while asked; import again: what was imported stays imported, and is not "
                     "imported twice");
                return;
            }
            if (auto ok = reply->find("ok"); ok == reply->end() || !ok->value().is_bool() || !ok->value().get_bool()) {
                const std::string error = text_in(*reply, "error");
                // This command sees DIR; the relay may not (its user, or a sandbox with a private /tmp and
                // a read-only system).
                const bool unseen = error.find(std::strerror(EACCES)) != std::string::npos ||
                                    error.find(std::strerror(EROFS)) != std::string::npos ||
                                    error.find(" is not a directory") != std::string::npos ||
                                    error.find("it has no queue/") != std::string::npos;
                fail("the relay cannot import from " + from.string() + ": " + error +
                     (unseen ? " (the relay's user must own " + from.string() +
                                   ", in a place the relay may write to: beside its spool)"
                             : std::string()));
                return;
            }
            const auto results = reply->find("results");
            if (results == reply->end() || !results->value().is_array()) continue;
            for (const auto& v : results->value().get_array()) {
                if (!v.is_object()) continue;
                const json::object& r = v.get_object();
                const auto flag = [&r](std::string_view key) {
                    const auto it = r.find(key);
                    return it != r.end() && it->value().is_bool() && it->value().get_bool();
                };
                report_import(text_in(r, "outcome"), text_in(r, "text"), text_in(r, "queue_id"),
                              text_in(r, "upstream_mailbox"), flag("mailbox_configured") || !r.contains("mailbox_configured"),
                              flag("source_removed"), t);
            }
        }
    }

    void import_here(const fs::path& from, import_tally& t) {
        // What is written here must be the relay's to read.
        struct stat st {};
        if (::stat(dir_.c_str(), &st) == 0 && st.st_uid != ::geteuid()) {
            const passwd* owner = ::getpwuid(st.st_uid);
            fail("spool " + dir_.string() + " belongs to " + (owner != nullptr ? std::string(owner->pw_name) + " (uid " : "uid ") +
                 std::to_string(st.st_uid) + (owner != nullptr ? ")" : "") + ", and this command runs as uid " +
                 std::to_string(::geteuid()) + ": run it as the spool's owner, so that the relay can read what it writes");
            return;
        }
        spool here(dir_);
        try {
            here.open();  // no relay may start on it meanwhile; tmp/ leftovers go, as at a start
        } catch (const spool_error& e) {
            // A relay may have started since: it does the import then.
            if ((live_ = ask_status())) {
                import_through_relay(from, t);
                return;
            }
            fail(e.what());
            return;
        }
        for (const auto& id : here.imports_finished()) out_ << "queued " << id << " (its import was interrupted)\n";
        for (const auto& problem : here.import_problems()) fail(problem);
        state_store states(dir_);
        std::optional<import_source> source;
        try {
            states.open();
            source.emplace(from, dir_);
        } catch (const std::exception& e) {
            fail(e.what());
            return;
        }
        std::optional<policy::engine> policy;
        if (auto loaded = policy::load_file(cfg_.policy.file); loaded.ok()) policy.emplace(std::move(loaded.policy));
        std::vector<std::string> names;
        try {
            names = source->messages();
        } catch (const spool_error& e) {
            fail(e.what());
            return;
        }
        for (const auto& name : names) {
            const import_result r = import_message(*source, name, here, states, now_seconds());
            const std::string mailbox = r.envelope.upstream_mailbox.empty() ? cfg_.upstream.mailbox : r.envelope.upstream_mailbox;
            const char* outcome = r.what == import_result::outcome::imported  ? "imported"
                                  : r.what == import_result::outcome::already ? "already"
                                                                              : "skipped";
            report_import(outcome, describe(r), r.id, mailbox,
                          policy::upstream_mailbox_configured(cfg_, policy ? &*policy : nullptr, mailbox),
                          r.source_removed, t);
        }
    }
};

}  // namespace

int run_queue(invocation& v) {
    options o;
    if (auto status = read_options(v, o)) return *status;
    const std::optional<conf::config> cfg = load_config(o.config, v.err);
    if (!cfg) return 1;
    if (auto problem = act_as_spool_owner(cfg->spool.dir); !problem.empty()) {
        v.err << "subrelay queue: " << problem << '\n';
        return 1;
    }
    try {
        queue_command cmd(std::move(o), *cfg, v.in, v.out, v.err);
        return cmd.run();
    } catch (const std::exception& e) {
        v.err << "subrelay queue: " << e.what() << '\n';
        return 1;
    }
}

}  // namespace subrelay::relay
