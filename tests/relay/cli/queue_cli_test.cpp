#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "relay/cli/cli.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"
#include "tests/relay/fake_relay.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;
using subrelay::relay::message_lock;
using subrelay::relay::queue_state;
using subrelay::relay::spool_envelope;
using subrelay::relay::state_store;

namespace {

constexpr std::string_view message_text =
    "From: scanner@contoso.com\r\nSubject: Scan 42\r\n\r\nbody line\r\nFrom: not a header\r\n";

struct result {
    int status;
    std::string out;
    std::string err;
};

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class queue_cli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-queue-cli");
        config_ = (dir_ / "relay.toml").string();
        std::ofstream(config_) << "[server]\nsubmission = []\n"
                                  "[spool]\ndir = \"var/spool\"\n"
                                  "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n";
        spool_dir_ = dir_ / "var" / "spool";
        subrelay::relay::spool s(spool_dir_);
        s.open();
        state_store(spool_dir_).open();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    result run(std::vector<std::string> args, const std::string& input = "") {
        args.insert(args.begin(), "queue");
        args.push_back("--config");
        args.push_back(config_);
        std::istringstream in(input);
        std::ostringstream out, err;
        int status = subrelay::relay::run_cli(args, in, out, err);
        return {status, out.str(), err.str()};
    }

    // A message received `age` seconds ago.
    std::string store(std::vector<std::string> recipients, std::int64_t age = 180,
                      const std::string& sender = "scanner@contoso.com") {
        spool_envelope env;
        env.sender = sender;
        env.recipients = std::move(recipients);
        env.identity = "scanner@contoso.com";
        env.upstream_mailbox = "relay@contoso.com";
        env.client_address = "192.0.2.7";
        env.received_at = now_seconds() - age;
        subrelay::relay::spool s(spool_dir_);
        return s.store(env, message_text);
    }

    [[nodiscard]] std::optional<queue_state> state(const std::string& id) const {
        return state_store(spool_dir_).load(id);
    }
    void save(const std::string& id, const queue_state& s) const { state_store(spool_dir_).save(id, s); }
    [[nodiscard]] fs::path message_file(const std::string& id) const { return spool_dir_ / "queue" / id; }

    fs::path dir_;
    fs::path spool_dir_;
    std::string config_;
};

queue_state throttled_state() {
    queue_state s;
    s.attempts = 2;
    s.first_attempt = now_seconds() - 120;
    s.next_attempt = now_seconds() + 3600 + 40;
    s.last_reply = "451 4.7.500 Server busy. Please try again later";
    s.hint = "the upstream is throttling relay@contoso.com";
    s.delivered = {"done@example.com"};
    s.failed = {{"gone@example.com", "550 5.1.1 User unknown"}};
    s.history = {"2023-11-14T22:15:00Z attempt 1: 451 4.7.500 Server busy"};
    return s;
}

TEST_F(queue_cli, help_and_usage_errors) {
    auto h = run({"--help"});
    EXPECT_EQ(h.status, 0);
    EXPECT_NE(h.out.find("usage: subrelay queue list"), std::string::npos);
    EXPECT_EQ(run({}).status, 2);
    auto bad = run({"frobnicate"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("unknown action 'frobnicate'"), std::string::npos) << bad.err;
    EXPECT_EQ(run({"hold"}).status, 2);                  // no id
    EXPECT_EQ(run({"show"}).status, 2);                  // no id
    EXPECT_EQ(run({"list", "--yes"}).status, 2);         // --yes is for delete
    EXPECT_EQ(run({"hold", "--colour"}).status, 2);
    // The verb is listed in the main help.
    std::istringstream in;
    std::ostringstream out, err;
    EXPECT_EQ(subrelay::relay::run_cli({"--help"}, in, out, err), 0);
    EXPECT_NE(out.str().find("queue "), std::string::npos);
}

TEST_F(queue_cli, a_bad_config_is_reported) {
    std::ofstream(config_) << "[spool]\ncolour = \"blue\"\n";
    auto r = run({"list"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("spool.colour"), std::string::npos) << r.err;
}

TEST_F(queue_cli, list_an_empty_queue) {
    auto r = run({"list"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "queue is empty\n");
    auto j = run({"list", "--json"});
    EXPECT_EQ(j.status, 0) << j.err;
    EXPECT_EQ(json::parse(j.out), json::value(json::array{}));
}

TEST_F(queue_cli, a_spool_not_made_yet_is_an_empty_queue_however_long_its_path) {
    // Past sockaddr_un's 108 bytes the control socket is reached through its
    // directory, which must not be required to exist.
    const std::string deep = std::string(120, 'd');
    std::ofstream(config_) << "[server]\nsubmission = []\n[spool]\ndir = \"" << deep << "/spool\"\n"
                              "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n";
    auto r = run({"list"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "queue is empty\n");
}

TEST_F(queue_cli, list_shows_one_row_per_message) {
    const std::string fresh = store({"a@example.com"}, 30, "");
    const std::string old =
        store({"done@example.com", "gone@example.com", "left@example.com", "\"odd local\"@example.com"}, 2 * 3600 + 60);
    save(old, throttled_state());
    auto r = run({"list"});
    ASSERT_EQ(r.status, 0) << r.err;
    std::istringstream lines(r.out);
    std::string header, row1, row2;
    std::getline(lines, header);
    EXPECT_EQ(header.rfind("ID", 0), 0u) << r.out;
    // Oldest first.
    std::getline(lines, row1);
    EXPECT_EQ(row1.rfind(old + " ", 0), 0u) << r.out;
    EXPECT_NE(row1.find(" 2h "), std::string::npos) << row1;
    EXPECT_NE(row1.find(" in 1h "), std::string::npos) << row1;
    EXPECT_NE(row1.find("scanner@contoso.com -> left@example.com, \"odd local\"@example.com"), std::string::npos)
        << row1;
    EXPECT_EQ(row1.find("done@example.com"), std::string::npos) << row1;
    EXPECT_NE(r.out.find("last: 451 4.7.500 Server busy"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("hint: the upstream is throttling relay@contoso.com"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(fresh + " "), std::string::npos);
    EXPECT_NE(r.out.find("<> -> a@example.com"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("-- 2 messages"), std::string::npos) << r.out;
}

TEST_F(queue_cli, list_json_has_every_field) {
    const std::string fresh = store({"a@example.com"}, 30);
    const std::string old = store({"done@example.com", "gone@example.com", "left@example.com"}, 3 * 60 + 10);
    save(old, throttled_state());
    auto r = run({"list", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    json::value v = json::parse(r.out);
    ASSERT_TRUE(v.is_array());
    const json::array& a = v.as_array();
    ASSERT_EQ(a.size(), 2u);
    const json::object& o = a[0].as_object();
    EXPECT_EQ(o.at("id").as_string(), old);
    EXPECT_EQ(o.at("age").as_string(), "3m");
    EXPECT_EQ(o.at("size").to_number<std::size_t>(), message_text.size());
    EXPECT_EQ(o.at("sender").as_string(), "scanner@contoso.com");
    EXPECT_EQ(o.at("recipients"), (json::array{"left@example.com"}));
    EXPECT_EQ(o.at("delivered"), (json::array{"done@example.com"}));
    EXPECT_EQ(o.at("failed").as_array().at(0).at("address").as_string(), "gone@example.com");
    EXPECT_EQ(o.at("attempts").to_number<unsigned>(), 2u);
    EXPECT_GT(o.at("next_attempt").to_number<std::int64_t>(), now_seconds());
    EXPECT_EQ(o.at("next").as_string(), "in 1h");
    EXPECT_EQ(o.at("held").as_bool(), false);
    EXPECT_EQ(o.at("last_reply").as_string(), "451 4.7.500 Server busy. Please try again later");
    EXPECT_EQ(o.at("hint").as_string(), "the upstream is throttling relay@contoso.com");
    EXPECT_EQ(o.at("upstream_mailbox").as_string(), "relay@contoso.com");
    const json::object& f = a[1].as_object();
    EXPECT_EQ(f.at("id").as_string(), fresh);
    EXPECT_EQ(f.at("attempts").to_number<unsigned>(), 0u);
    EXPECT_EQ(f.at("next").as_string(), "now");
    EXPECT_EQ(f.at("last_reply").as_string(), "");
    EXPECT_EQ(f.at("recipients"), (json::array{"a@example.com"}));
}

TEST_F(queue_cli, show_prints_envelope_headers_and_history) {
    const std::string id = store({"done@example.com", "gone@example.com", "left@example.com"});
    save(id, throttled_state());
    auto r = run({"show", id});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("id: " + id + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("sender: scanner@contoso.com\n"), std::string::npos);
    EXPECT_NE(r.out.find("upstream mailbox: relay@contoso.com\n"), std::string::npos);
    EXPECT_NE(r.out.find("recipients left:\n  left@example.com\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("delivered:\n  done@example.com\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("failed:\n  gone@example.com: 550 5.1.1 User unknown\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("attempts: 2"), std::string::npos);
    EXPECT_NE(r.out.find("history:\n  2023-11-14T22:15:00Z attempt 1: 451 4.7.500 Server busy\n"), std::string::npos);
    EXPECT_NE(r.out.find("headers:\n  From: scanner@contoso.com\n  Subject: Scan 42\n"), std::string::npos) << r.out;
    // Only the headers: nothing after the first blank line.
    EXPECT_EQ(r.out.find("body line"), std::string::npos);
    EXPECT_EQ(r.out.find("not a header"), std::string::npos);
    EXPECT_EQ(r.out.find('\r'), std::string::npos);
}

TEST_F(queue_cli, unknown_ids_are_an_error) {
    for (const char* action : {"show", "hold", "release", "retry", "delete"}) {
        std::vector<std::string> args = {action, "0NOSUCHMESSAGE00"};
        if (std::string(action) == "delete") args.push_back("--yes");
        auto r = run(args);
        EXPECT_EQ(r.status, 1) << action;
        EXPECT_NE(r.err.find("no message 0NOSUCHMESSAGE00 in the queue"), std::string::npos) << action << r.err;
    }
    auto traversal = run({"show", "../../relay.toml"});
    EXPECT_EQ(traversal.status, 1);
    EXPECT_NE(traversal.err.find("no message"), std::string::npos);
}

TEST_F(queue_cli, hold_and_release_change_the_state) {
    const std::string id = store({"a@example.com"});
    EXPECT_FALSE(state(id));
    auto h = run({"hold", id});
    ASSERT_EQ(h.status, 0) << h.err;
    EXPECT_EQ(h.out, id + ": held\n");
    ASSERT_TRUE(state(id));
    EXPECT_TRUE(state(id)->held);
    auto l = run({"list", "--json"});
    EXPECT_EQ(json::parse(l.out).as_array().at(0).at("next").as_string(), "held");

    // Holding keeps the rest of the state.
    queue_state s = throttled_state();
    s.held = false;
    save(id, s);
    ASSERT_EQ(run({"hold", id}).status, 0);
    s.held = true;
    EXPECT_EQ(*state(id), s);

    auto r = run({"release", id});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, id + ": released\n");
    // Released means delivered now.
    s.held = false;
    s.next_attempt = 0;
    EXPECT_EQ(*state(id), s);
    EXPECT_EQ(run({"release", id}).out, id + ": not held\n");
}

TEST_F(queue_cli, retry_clears_the_wait_but_not_the_hold) {
    const std::string a = store({"a@example.com"});
    const std::string b = store({"b@example.com"});
    queue_state s = throttled_state();
    save(a, s);
    s.held = true;
    save(b, s);
    auto r = run({"retry", a});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(state(a)->next_attempt, 0);
    EXPECT_EQ(state(a)->attempts, 2u);

    auto all = run({"retry", "--all"});
    ASSERT_EQ(all.status, 0) << all.err;
    EXPECT_EQ(state(b)->next_attempt, 0);
    EXPECT_TRUE(state(b)->held);
    EXPECT_NE(all.out.find("queue release " + b), std::string::npos) << all.out;
}

TEST_F(queue_cli, retry_of_a_message_without_state_writes_none) {
    const std::string id = store({"a@example.com"});
    ASSERT_EQ(run({"retry", id}).status, 0);
    EXPECT_FALSE(state(id));
}

TEST_F(queue_cli, with_a_running_relay_changes_are_asked_of_it) {
    // While the relay runs it alone writes queue state: the command asks it
    // over the control socket and prints its answers; the files stay as they were.
    const std::string a = store({"a@example.com"});
    const queue_state before = throttled_state();
    save(a, before);
    std::vector<json::object> asked;
    std::mutex m;
    subrelay::test_support::fake_relay relay(spool_dir_, [&](const json::object& request) {
        std::lock_guard lock(m);
        asked.push_back(request);
        if (request.at("verb").as_string() == "status") return json::object{{"ok", true}, {"messages", json::object{}}};
        json::array results;
        results.emplace_back(json::object{{"id", a}, {"ok", true}, {"text", a + ": held as soon as its current attempt ends"}});
        return json::object{{"ok", true}, {"results", std::move(results)}};
    });
    auto r = run({"hold", a});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, a + ": held as soon as its current attempt ends\n");
    EXPECT_EQ(*state(a), before);
    std::lock_guard lock(m);
    ASSERT_EQ(asked.size(), 2u);
    EXPECT_EQ(asked[0].at("verb").as_string(), "status");
    EXPECT_EQ(asked[1].at("verb").as_string(), "hold");
    EXPECT_EQ(asked[1].at("ids").as_array(), (json::array{json::string(a)}));
}

TEST_F(queue_cli, list_shows_why_a_message_waits_for_its_upstream_mailbox) {
    const std::string a = store({"a@example.com"});
    subrelay::test_support::fake_relay relay(spool_dir_, [&](const json::object&) {
        json::array lanes;
        lanes.emplace_back(json::object{{"upstream_mailbox", "relay@contoso.com"},
                                        {"available", false},
                                        {"reason", "token request failed: AADSTS7000215 invalid_client"},
                                        {"hint", "check oauth.client_secret_file"}});
        return json::object{
            {"ok", true},
            {"messages", json::object{{a, json::object{{"status", "parked"}, {"upstream_mailbox", "relay@contoso.com"}}}}},
            {"lanes", std::move(lanes)}};
    });
    auto r = run({"list"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("waiting: upstream mailbox relay@contoso.com unavailable: token request failed: AADSTS7000215"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("hint: check oauth.client_secret_file"), std::string::npos) << r.out;
    auto j = run({"list", "--json"});
    ASSERT_EQ(j.status, 0) << j.err;
    const json::value doc = json::parse(j.out);
    const json::object& row = doc.as_array().at(0).as_object();
    EXPECT_EQ(row.at("status").as_string(), "parked");
    EXPECT_EQ(row.at("next").as_string(), "upstream");
    EXPECT_EQ(row.at("hint").as_string(), "check oauth.client_secret_file");
}

TEST_F(queue_cli, delete_with_yes_removes_message_and_state) {
    const std::string a = store({"a@example.com"});
    const std::string b = store({"b@example.com"});
    save(a, throttled_state());
    auto r = run({"delete", a, "--yes"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, a + ": deleted\n");
    EXPECT_FALSE(fs::exists(message_file(a)));
    EXPECT_FALSE(state(a));
    EXPECT_TRUE(fs::exists(message_file(b)));

    auto all = run({"delete", "--all", "--yes"});
    ASSERT_EQ(all.status, 0) << all.err;
    EXPECT_FALSE(fs::exists(message_file(b)));
    EXPECT_EQ(run({"list"}).out, "queue is empty\n");
}

TEST_F(queue_cli, delete_without_a_terminal_needs_yes) {
    const std::string id = store({"a@example.com"});
    save(id, throttled_state());
    auto r = run({"delete", id}, "y\n");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("--yes"), std::string::npos) << r.err;
    EXPECT_TRUE(fs::exists(message_file(id)));
    EXPECT_TRUE(state(id));
    EXPECT_EQ(run({"delete", "--all"}).status, 1);
    EXPECT_TRUE(fs::exists(message_file(id)));
}

TEST_F(queue_cli, a_locked_message_is_not_changed) {
    const std::string id = store({"a@example.com"});
    const queue_state before = throttled_state();
    save(id, before);
    auto lock = message_lock::try_lock(message_file(id));
    ASSERT_TRUE(lock);
    // No relay runs: another command holds it.
    for (const char* action : {"hold", "release", "retry"}) {
        auto r = run({action, id});
        EXPECT_EQ(r.status, 1) << action;
        EXPECT_NE(r.err.find(id + " is locked by another command; try again in a moment"), std::string::npos)
            << action << r.err;
    }
    auto d = run({"delete", id, "--yes"});
    EXPECT_EQ(d.status, 1);
    EXPECT_NE(d.err.find("is locked by another command"), std::string::npos) << d.err;
    EXPECT_TRUE(fs::exists(message_file(id)));
    EXPECT_EQ(*state(id), before);

    lock.reset();
    EXPECT_EQ(run({"hold", id}).status, 0);
    EXPECT_TRUE(state(id)->held);
}

TEST_F(queue_cli, a_damaged_state_file_is_reported_by_name) {
    const std::string id = store({"a@example.com"});
    std::ofstream(spool_dir_ / "state" / id) << "garbage\n";
    auto r = run({"list"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find((spool_dir_ / "state" / id).string()), std::string::npos) << r.err;
    EXPECT_NE(r.out.find(id), std::string::npos);  // still listed
    auto h = run({"hold", id});
    EXPECT_EQ(h.status, 1);
    EXPECT_NE(h.err.find("damaged"), std::string::npos) << h.err;
}

// `queue import DIR`: another node's spool taken over.
class queue_import : public queue_cli {
protected:
    [[nodiscard]] fs::path other() const { return dir_ / "node-a"; }
    std::string store_there(const std::string& mailbox = "relay@contoso.com", std::string_view body = message_text) {
        if (!fs::exists(other() / "queue")) {
            subrelay::relay::spool there(other());
            there.open();
            state_store(other()).open();
        }
        spool_envelope env;
        env.sender = "scanner@contoso.com";
        env.recipients = {"a@example.com"};
        env.identity = "scanner@contoso.com";
        env.upstream_mailbox = mailbox;
        env.client_address = "192.0.2.7";
        env.received_at = now_seconds() - 600;
        return subrelay::relay::spool(other()).store(env, body);
    }
    static std::string read_file(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
};

TEST_F(queue_import, without_a_relay_the_messages_are_moved_into_this_spool) {
    const std::string a = store_there();
    const std::string b = store_there();
    queue_state held = throttled_state();
    held.held = true;
    state_store(other()).save(b, held);
    const std::string a_file = read_file(other() / "queue" / a);
    std::ofstream(other() / "tmp" / "0PARTIAL") << "subrelay-spool 1\nid 0PARTIAL\n";

    auto r = run({"import", other().string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "imported " + a + "\nimported " + b + "\n-- 2 imported, 0 already imported before, 0 skipped (left in " +
                         (other() / "queue").string() + "); 1 never-acknowledged file(s) in " +
                         (other() / "tmp").string() + " not imported\n");
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(read_file(message_file(a)), a_file) << "byte for byte";
    ASSERT_TRUE(state(b));
    EXPECT_TRUE(state(b)->held);
    EXPECT_EQ(state(b)->attempts, 2u);
    EXPECT_EQ(state(b)->delivered, std::vector<std::string>{"done@example.com"});
    EXPECT_TRUE(fs::is_empty(other() / "queue"));
    EXPECT_TRUE(fs::exists(other() / "tmp" / "0PARTIAL")) << "never acknowledged: left alone";
    auto l = run({"list", "--json"});
    EXPECT_EQ(json::parse(l.out).as_array().size(), 2u);

    // Again: nothing left to do.
    auto again = run({"import", other().string() + "/"});
    EXPECT_EQ(again.status, 0) << again.err;
    EXPECT_NE(again.out.find("-- 0 imported, 0 already imported before, 0 skipped"), std::string::npos) << again.out;
}

TEST_F(queue_import, a_damaged_file_is_left_and_the_exit_status_says_so) {
    const std::string good = store_there();
    std::ofstream(other() / "queue" / "0BROKEN") << "not a spool file\n";
    auto r = run({"import", other().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("imported " + good + "\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("skipped 0BROKEN: damaged envelope"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("-- 1 imported, 0 already imported before, 1 skipped"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(other() / "queue" / "0BROKEN"));
}

TEST_F(queue_import, refusals) {
    auto usage = run({"import"});
    EXPECT_EQ(usage.status, 2);
    EXPECT_EQ(run({"import", "a", "b"}).status, 2);
    EXPECT_EQ(run({"import", other().string(), "--all"}).status, 2);

    auto own = run({"import", spool_dir_.string()});
    EXPECT_EQ(own.status, 1);
    EXPECT_NE(own.err.find("is this node's own spool"), std::string::npos) << own.err;
    fs::create_directories(dir_ / "empty");
    auto none = run({"import", (dir_ / "empty").string()});
    EXPECT_EQ(none.status, 1);
    EXPECT_NE(none.err.find("is not a spool directory: it has no queue/"), std::string::npos) << none.err;

    const std::string id = store_there();
    {
        subrelay::relay::spool running(other());  // its relay still runs
        running.open();
        auto busy = run({"import", other().string()});
        EXPECT_EQ(busy.status, 1);
        EXPECT_NE(busy.err.find("spool " + other().string() + " is in use by process " + std::to_string(::getpid())),
                  std::string::npos)
            << busy.err;
        EXPECT_EQ(busy.out, "") << "no summary of an import that did not begin";
    }
    EXPECT_TRUE(fs::exists(other() / "queue" / id));
    EXPECT_EQ(run({"list"}).out, "queue is empty\n");
}

TEST_F(queue_import, a_mailbox_this_node_does_not_know_is_imported_with_a_warning) {
    std::ofstream(config_) << "[server]\nsubmission = []\n[spool]\ndir = \"var/spool\"\n"
                              "[policy]\nfile = \"policy.toml\"\n"
                              "[upstream]\nmailbox = \"relay@contoso.com\"\n"
                              "[oauth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n"
                              "client_secret_file = \"client-secret\"\n";
    std::ofstream(dir_ / "policy.toml") << "[organization]\nsmtp_client_authentication_disabled = true\n"
                                           "[[mailbox]]\nidentity = \"scanner@contoso.com\"\n"
                                           "upstream_mailbox = \"scans@contoso.com\"\n";
    const std::string known = store_there("scans@contoso.com");
    const std::string unknown = store_there("elsewhere@contoso.com");
    auto r = run({"import", other().string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("imported " + unknown + "\n"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "subrelay queue import: warning: " + unknown +
                         ": upstream mailbox elsewhere@contoso.com is not configured on this node (not "
                         "upstream.mailbox, in no OAuth profile, the upstream_mailbox of no account); it is imported, "
                         "tried through the default OAuth profile, and stays queued if the upstream refuses it\n");
    EXPECT_TRUE(fs::exists(message_file(known)));
    EXPECT_TRUE(fs::exists(message_file(unknown)));
}

TEST_F(queue_import, with_a_running_relay_each_message_is_asked_of_it) {
    // While the relay runs it alone writes its queue: one request per message,
    // its answers printed as they come; no file is touched here.
    const std::string a = store_there();
    const std::string b = store_there();
    std::vector<json::object> asked;
    std::mutex m;
    subrelay::test_support::fake_relay relay(spool_dir_, [&](const json::object& request) {
        std::lock_guard lock(m);
        asked.push_back(request);
        if (request.at("verb").as_string() == "status") return json::object{{"ok", true}, {"messages", json::object{}}};
        const std::string id(request.at("ids").as_array().at(0).as_string());
        json::object r{{"id", id}, {"queue_id", id}, {"source_removed", true}};
        if (id == a) {
            r["outcome"] = "imported";
            r["text"] = "imported " + id;
            r["upstream_mailbox"] = "other@contoso.com";
            r["mailbox_configured"] = false;
        } else {
            r["outcome"] = "skipped";
            r["text"] = "skipped " + id + ": locked by another process; try again in a moment";
            r["source_removed"] = false;
        }
        return json::object{{"ok", true}, {"results", json::array{r}}};
    });
    auto r = run({"import", other().string()});
    EXPECT_EQ(r.status, 1) << "one was skipped";
    EXPECT_EQ(r.out, "imported " + a + "\nskipped " + b +
                         ": locked by another process; try again in a moment\n-- 1 imported, 0 already imported "
                         "before, 1 skipped (left in " +
                         (other() / "queue").string() + "); 0 never-acknowledged file(s) in " +
                         (other() / "tmp").string() + " not imported\n");
    EXPECT_NE(r.err.find("warning: " + a + ": upstream mailbox other@contoso.com is not configured on this node"),
              std::string::npos)
        << r.err;
    std::lock_guard lock(m);
    ASSERT_EQ(asked.size(), 3u);
    for (std::size_t i = 1; i < 3; ++i) {
        EXPECT_EQ(asked[i].at("verb").as_string(), "import");
        EXPECT_EQ(asked[i].at("dir").as_string(), other().string());
        EXPECT_EQ(asked[i].at("ids").as_array(), (json::array{json::string(i == 1 ? a : b)}));
    }
    EXPECT_TRUE(fs::exists(other() / "queue" / a)) << "the fake relay imported nothing";
}

TEST_F(queue_import, a_refusal_of_the_relay_is_reported) {
    store_there();
    subrelay::test_support::fake_relay relay(spool_dir_, [&](const json::object& request) {
        if (request.at("verb").as_string() == "status") return json::object{{"ok", true}, {"messages", json::object{}}};
        return json::object{{"ok", false}, {"error", "open " + (other() / "serve.lock").string() + ": Permission denied"}};
    });
    auto r = run({"import", other().string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("the relay cannot import from " + other().string() + ": open "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the relay's user must own"), std::string::npos) << r.err;
}

}  // namespace
