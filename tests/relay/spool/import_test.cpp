#include "relay/spool/import.hpp"

#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
using subrelay::relay::finish_staged_imports;
using subrelay::relay::import_message;
using subrelay::relay::import_result;
using subrelay::relay::import_source;
using subrelay::relay::import_step;
using subrelay::relay::imported_state;
using subrelay::relay::queue_state;
using subrelay::relay::spool;
using subrelay::relay::spool_envelope;
using subrelay::relay::spool_error;
using subrelay::relay::state_store;

namespace {

constexpr std::int64_t now = 1700003600;

// What a test throws from the step hook: the import stops there, as if the
// process had died (not a std::exception: nothing in the import catches it).
struct crash {};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::set<std::string> names_in(const fs::path& d) {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d, ec)) out.insert(e.path().filename().string());
    return out;
}

class import_test : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = subrelay::test_support::make_temp_dir("subrelay-import");
        // The dead node's spool, as its relay left it (it is not running: its lock is free).
        {
            spool other(source_dir());
            other.open();
            state_store(source_dir()).open();
        }
        here_ = std::make_unique<spool>(root_ / "here");
        here_->open();
        states_ = std::make_unique<state_store>(root_ / "here");
        states_->open();
    }
    void TearDown() override {
        here_.reset();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    [[nodiscard]] fs::path source_dir() const { return root_ / "node-a"; }
    [[nodiscard]] fs::path here_dir() const { return root_ / "here"; }

    static spool_envelope envelope(std::vector<std::string> rcpts, std::string mailbox = "relay@contoso.com") {
        spool_envelope e;
        e.sender = "scanner@contoso.com";
        e.recipients = std::move(rcpts);
        e.identity = "scanner@contoso.com";
        e.upstream_mailbox = std::move(mailbox);
        e.client_address = "192.0.2.7";
        e.received_at = 1700000000;
        e.smtputf8 = true;
        return e;
    }

    // A message accepted by the other node (its spool is opened only to write it).
    std::string store_there(const spool_envelope& env, std::string_view body) {
        spool other(source_dir());
        return other.store(env, body, [](const std::string& id) { return "Received: by node-a id " + id + "\r\n"; });
    }

    std::vector<import_result> import_all(const subrelay::relay::import_step_hook& hook = {}) {
        import_source from(source_dir(), here_dir());
        std::vector<import_result> out;
        for (const auto& name : from.messages()) out.push_back(import_message(from, name, *here_, *states_, now, hook));
        return out;
    }

    fs::path root_;
    std::unique_ptr<spool> here_;
    std::unique_ptr<state_store> states_;
};

queue_state tried_state() {
    queue_state s;
    s.attempts = 3;
    s.first_attempt = 1700000100;
    s.next_attempt = 1700007200;
    s.last_reply = "451 4.7.500 Server busy";
    s.last_upstream_reply = "451 4.7.500 Server busy";
    s.hint = "wait";
    s.held = true;
    s.delay_warned = true;
    s.delivered = {"done@example.com"};
    s.failed = {{"gone@example.com", "550 5.1.1 User unknown"}};
    s.history = {"2023-11-14T22:15:00Z attempt 1: 451 4.7.500 Server busy"};
    return s;
}

TEST_F(import_test, messages_come_with_their_envelope_state_and_bytes_and_leave_the_source) {
    const std::string plain = store_there(envelope({"a@example.com"}), "Subject: one\r\n\r\nbody\r\n.dot\r\n");
    const std::string tried =
        store_there(envelope({"done@example.com", "gone@example.com", "left@example.com"}, "other@contoso.com"),
                    "Subject: two\r\n\r\n\xc3\xbc\r\n");
    state_store(source_dir()).save(tried, tried_state());
    const std::string plain_file = read_file(source_dir() / "queue" / plain);
    const std::string tried_file = read_file(source_dir() / "queue" / tried);

    const auto results = import_all();
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
        EXPECT_EQ(r.what, import_result::outcome::imported) << describe(r);
        EXPECT_EQ(r.id, r.source_id);
        EXPECT_TRUE(r.source_removed);
        EXPECT_EQ(describe(r), "imported " + r.id);
    }
    // Byte for byte, ids kept: the envelope (sender, recipients, account,
    // upstream mailbox, received time, flags) and the message as received.
    EXPECT_EQ(read_file(here_dir() / "queue" / plain), plain_file);
    EXPECT_EQ(read_file(here_dir() / "queue" / tried), tried_file);
    const spool_envelope e = here_->load_envelope(tried);
    EXPECT_EQ(e.upstream_mailbox, "other@contoso.com");
    EXPECT_EQ(e.received_at, 1700000000);
    EXPECT_TRUE(e.smtputf8);
    ASSERT_EQ(results[0].source_id, plain);  // oldest first
    EXPECT_EQ(results[0].envelope.upstream_mailbox, "relay@contoso.com");
    EXPECT_EQ(results[1].envelope.upstream_mailbox, "other@contoso.com");

    // The state: all of it, but tried at once here (held stays held).
    EXPECT_FALSE(states_->load(plain));
    const auto st = states_->load(tried);
    ASSERT_TRUE(st);
    queue_state expected = tried_state();
    expected.next_attempt = 0;
    expected.history.push_back("2023-11-14T23:13:20Z imported from another node's spool (queue id " + tried + " there)");
    EXPECT_EQ(*st, expected);

    // Gone from the source, nothing left over here.
    EXPECT_TRUE(names_in(source_dir() / "queue").empty());
    EXPECT_TRUE(names_in(source_dir() / "state").empty());
    EXPECT_EQ(names_in(here_dir() / "import"), std::set<std::string>{"lock"});
    EXPECT_EQ(here_->list().size(), 2u);
}

TEST_F(import_test, unacknowledged_files_in_tmp_are_counted_not_imported) {
    std::ofstream(source_dir() / "tmp" / "0ABC") << "subrelay-spool 1\nid 0ABC\n";  // a message being received
    std::ofstream(source_dir() / "tmp" / "recycled.1");                          // kept for reuse: empty
    EXPECT_EQ(subrelay::relay::unacknowledged_files(source_dir()), 1u);
    EXPECT_TRUE(import_all().empty());
    EXPECT_TRUE(fs::exists(source_dir() / "tmp" / "0ABC"));
    EXPECT_TRUE(here_->list().empty());
    EXPECT_EQ(subrelay::relay::unacknowledged_files(root_ / "no-such-spool"), 0u);
}

TEST_F(import_test, a_spool_in_use_this_one_and_a_directory_that_is_no_spool_are_refused) {
    {
        // A relay still serves it: the lock is held (by another open file here).
        spool running(source_dir());
        running.open();
        try {
            import_source from(source_dir(), here_dir());
            FAIL() << "no refusal";
        } catch (const spool_error& e) {
            EXPECT_EQ(std::string(e.what()),
                      "spool " + source_dir().string() + " is in use by process " + std::to_string(::getpid()));
        }
    }
    EXPECT_NO_THROW(import_source(source_dir(), here_dir()));
    try {
        import_source from(here_dir() / "." , here_dir());
        FAIL() << "no refusal";
    } catch (const spool_error& e) {
        EXPECT_NE(std::string(e.what()).find("is this node's own spool"), std::string::npos) << e.what();
    }
    fs::create_directories(root_ / "not-a-spool");
    try {
        import_source from(root_ / "not-a-spool", here_dir());
        FAIL() << "no refusal";
    } catch (const spool_error& e) {
        EXPECT_NE(std::string(e.what()).find("is not a spool directory: it has no queue/"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(import_source(root_ / "missing", here_dir()), spool_error);
}

TEST_F(import_test, damaged_files_are_reported_and_left_in_place) {
    const fs::path q = source_dir() / "queue";
    std::ofstream(q / "0DAMAGED") << "not a spool file\n";
    std::ofstream(q / "0OTHERID") << "subrelay-spool 1\nid 0SOMETHINGELSE\n\nbody\r\n";
    std::ofstream(q / "README") << "notes\n";
    const std::string bad_state = store_there(envelope({"a@example.com"}), "x\r\n");
    std::ofstream(source_dir() / "state" / bad_state) << "garbage\n";
    const std::string good = store_there(envelope({"b@example.com"}), "y\r\n");

    const auto results = import_all();
    ASSERT_EQ(results.size(), 5u);
    std::map<std::string, import_result> by_name;
    for (const auto& r : results) by_name[r.source_id] = r;
    EXPECT_EQ(by_name.at(good).what, import_result::outcome::imported);
    for (const std::string name : {"0DAMAGED", "0OTHERID", "README", bad_state.c_str()}) {
        const import_result& r = by_name.at(name);
        EXPECT_EQ(r.what, import_result::outcome::skipped) << name;
        EXPECT_TRUE(fs::exists(q / name)) << name;
        EXPECT_EQ(describe(r).rfind("skipped " + name + ": ", 0), 0u) << describe(r);
    }
    EXPECT_NE(by_name.at("0DAMAGED").reason.find("damaged envelope"), std::string::npos);
    EXPECT_NE(by_name.at("0OTHERID").reason.find("names queue id 0SOMETHINGELSE"), std::string::npos);
    EXPECT_NE(by_name.at(bad_state).reason.find("damaged queue state file"), std::string::npos)
        << by_name.at(bad_state).reason;
    EXPECT_TRUE(fs::exists(source_dir() / "state" / bad_state));
    EXPECT_EQ(here_->list(), std::vector<std::string>{good});
}

TEST_F(import_test, a_message_locked_by_someone_else_is_left) {
    const std::string id = store_there(envelope({"a@example.com"}), "x\r\n");
    auto lock = subrelay::relay::message_lock::try_lock(source_dir() / "queue" / id);
    ASSERT_TRUE(lock);
    const auto results = import_all();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].what, import_result::outcome::skipped);
    EXPECT_NE(results[0].reason.find("locked by another process"), std::string::npos);
    EXPECT_TRUE(here_->list().empty());
}

TEST_F(import_test, an_id_taken_here_by_another_message_gives_a_new_one) {
    const std::string id = store_there(envelope({"a@example.com"}), "Subject: theirs\r\n\r\nx\r\n");
    // Another message with the same id in this spool.
    std::string mine = read_file(source_dir() / "queue" / id);
    mine.replace(mine.find("theirs"), 6, "mine!!");
    std::ofstream(here_dir() / "queue" / id, std::ios::binary) << mine;

    const auto results = import_all();
    ASSERT_EQ(results.size(), 1u);
    const import_result& r = results[0];
    ASSERT_EQ(r.what, import_result::outcome::imported) << describe(r);
    EXPECT_NE(r.id, id);
    EXPECT_EQ(describe(r), "imported " + id + " as " + r.id + " (the id " + id + " is taken here)");
    EXPECT_EQ(read_file(here_dir() / "queue" / id), mine) << "the message here is untouched";
    const auto loaded = here_->load(r.id);
    EXPECT_EQ(loaded.envelope.id, r.id);
    EXPECT_EQ(loaded.envelope.recipients, std::vector<std::string>{"a@example.com"});
    EXPECT_EQ(loaded.data, "Received: by node-a id " + id + "\r\nSubject: theirs\r\n\r\nx\r\n");
    EXPECT_EQ(r.envelope.id, r.id);
    EXPECT_TRUE(names_in(source_dir() / "queue").empty());
}

TEST_F(import_test, a_copy_already_queued_here_is_only_removed_from_the_source) {
    const std::string id = store_there(envelope({"a@example.com"}), "x\r\n");
    fs::copy_file(source_dir() / "queue" / id, here_dir() / "queue" / id);
    const auto results = import_all();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].what, import_result::outcome::already);
    EXPECT_EQ(results[0].id, id);
    EXPECT_EQ(here_->list(), std::vector<std::string>{id});
    EXPECT_TRUE(names_in(source_dir() / "queue").empty());
}

// Crashes between the steps: the message is never lost, and never queued
// twice here, whatever happens to it here meanwhile.
class import_crash : public import_test, public ::testing::WithParamInterface<import_step> {};

TEST_P(import_crash, a_second_run_neither_loses_nor_duplicates) {
    const std::string id = store_there(envelope({"a@example.com", "b@example.com"}), "x\r\n");
    queue_state st;
    st.attempts = 1;
    st.delivered = {"a@example.com"};
    state_store(source_dir()).save(id, st);
    const std::string file = read_file(source_dir() / "queue" / id);
    const import_step stop = GetParam();
    EXPECT_THROW(import_all([stop](import_step s) {
                     if (s == stop) throw crash{};
                 }),
                 crash);
    const bool handed_over = stop != import_step::staged;
    EXPECT_EQ(fs::exists(source_dir() / "queue" / id), stop != import_step::source_removed);
    EXPECT_EQ(here_->list().size(), stop == import_step::staged || stop == import_step::receipt_written ? 0u : 1u);

    // The relay starts on this spool (or an import without a relay opens it).
    here_.reset();
    here_ = std::make_unique<spool>(here_dir());
    here_->open();
    EXPECT_EQ(here_->imports_finished(),
              stop == import_step::receipt_written ? std::vector<std::string>{id} : std::vector<std::string>{});
    EXPECT_EQ(here_->list(), handed_over ? std::vector<std::string>{id} : std::vector<std::string>{});
    if (handed_over) {
        EXPECT_EQ(read_file(here_dir() / "queue" / id), file);
        ASSERT_TRUE(states_->load(id));
        EXPECT_EQ(states_->load(id)->delivered, std::vector<std::string>{"a@example.com"});
        // ... and delivers it before anyone imports again.
        here_->remove(id);
        states_->remove(id);
    }

    const auto again = import_all();
    if (stop == import_step::source_removed) {
        EXPECT_TRUE(again.empty());
    } else {
        ASSERT_EQ(again.size(), 1u);
        EXPECT_EQ(again[0].what, handed_over ? import_result::outcome::already : import_result::outcome::imported)
            << describe(again[0]);
        EXPECT_TRUE(again[0].source_removed);
    }
    // Delivered once: not queued again. Not handed over: queued now, once.
    EXPECT_EQ(here_->list(), handed_over ? std::vector<std::string>{} : std::vector<std::string>{id});
    EXPECT_TRUE(names_in(source_dir() / "queue").empty());
    EXPECT_TRUE(names_in(source_dir() / "state").empty());
    // Only the lock, and the receipt of a run that stopped just before removing it (harmless).
    const auto left = names_in(here_dir() / "import");
    EXPECT_EQ(left.size(), stop == import_step::source_removed ? 2u : 1u);
    EXPECT_TRUE(left.count("lock"));
}

TEST_P(import_crash, a_second_run_without_a_restart_finishes_the_import) {
    const std::string id = store_there(envelope({"a@example.com"}), "x\r\n");
    const import_step stop = GetParam();
    EXPECT_THROW(import_all([stop](import_step s) {
                     if (s == stop) throw crash{};
                 }),
                 crash);
    const auto again = import_all();
    if (stop == import_step::source_removed) {
        EXPECT_TRUE(again.empty());
    } else {
        ASSERT_EQ(again.size(), 1u);
        const auto expected = stop == import_step::queued ? import_result::outcome::already
                                                          : import_result::outcome::imported;
        EXPECT_EQ(again[0].what, expected) << describe(again[0]);
        if (stop == import_step::receipt_written) {
            EXPECT_EQ(describe(again[0]), "imported " + id + " (an interrupted import finished)");
        }
    }
    EXPECT_EQ(here_->list(), std::vector<std::string>{id});
    EXPECT_TRUE(names_in(source_dir() / "queue").empty());
}

INSTANTIATE_TEST_SUITE_P(after_each_step, import_crash,
                         ::testing::Values(import_step::staged, import_step::receipt_written, import_step::queued,
                                           import_step::source_removed),
                         [](const ::testing::TestParamInfo<import_step>& step) {
                             switch (step.param) {
                             case import_step::staged: return std::string("staged");
                             case import_step::receipt_written: return std::string("receipt_written");
                             case import_step::queued: return std::string("queued");
                             case import_step::source_removed: return std::string("source_removed");
                             }
                             return std::string("unknown");
                         });

TEST_F(import_test, what_the_dead_node_was_importing_itself_comes_too) {
    // Node A died while importing from node C: its import/ holds a handed-over message.
    const fs::path c = root_ / "node-c";
    {
        spool other(c);
        other.open();
    }
    const std::string id = spool(c).store(envelope({"a@example.com"}), "from c\r\n");
    {
        spool a(source_dir());
        a.open();
        state_store a_states(source_dir());
        import_source from(c, source_dir());
        EXPECT_THROW(import_message(from, id, a, a_states, now,
                                    [](import_step s) {
                                        if (s == import_step::receipt_written) throw crash{};
                                    }),
                     crash);
    }
    ASSERT_TRUE(names_in(source_dir() / "queue").empty());
    const auto results = import_all();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].what, import_result::outcome::imported);
    EXPECT_EQ(here_->load(id).data, "from c\r\n");
}

TEST_F(import_test, leftovers_without_a_receipt_are_removed_at_open) {
    fs::create_directories(here_dir() / "import");
    std::ofstream(here_dir() / "import" / "0ABC.0123456789abcdef.msg") << "half";
    std::ofstream(here_dir() / "import" / "0ABC.0123456789abcdef.state") << "half";
    std::ofstream(here_dir() / "import" / "0ABC.0123456789abcdef.tmp") << "0ABC\n";
    std::ofstream(here_dir() / "import" / "notes.txt") << "an operator's file";
    const auto staged = finish_staged_imports(here_dir());
    EXPECT_TRUE(staged.queued.empty());
    EXPECT_TRUE(staged.problems.empty());
    EXPECT_EQ(names_in(here_dir() / "import"), (std::set<std::string>{"lock", "notes.txt"}));
    EXPECT_TRUE(here_->list().empty());
}

TEST(imported_state, keeps_everything_but_the_wait) {
    EXPECT_FALSE(imported_state(std::nullopt, now, "0ABC"));
    queue_state s = tried_state();
    s.history.assign(20, "2023-11-14T22:15:00Z attempt 1: 451");
    const auto out = imported_state(s, now, "0ABC");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->next_attempt, 0);
    EXPECT_TRUE(out->held);
    EXPECT_TRUE(out->delay_warned);
    EXPECT_EQ(out->attempts, 3u);
    EXPECT_EQ(out->delivered, s.delivered);
    EXPECT_EQ(out->failed, s.failed);
    ASSERT_EQ(out->history.size(), 20u);
    EXPECT_EQ(out->history.back(), "2023-11-14T23:13:20Z imported from another node's spool (queue id 0ABC there)");
}

}  // namespace
