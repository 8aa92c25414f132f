#include "relay/spool/queue_state.hpp"
#include "tests/relay/temp_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using subrelay::relay::queue_state;

namespace {

queue_state full_state() {
    queue_state s;
    s.attempts = 3;
    s.first_attempt = 1700000100;
    s.next_attempt = 1700001000;
    s.last_reply = "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)";
    s.hint = "the upstream is throttling relay@contoso.com: delivery slows down by itself";
    s.last_upstream_reply = "451 4.7.500 Server busy. Please try again later";
    s.held = true;
    s.delay_warned = true;
    s.delivered = {"a@example.com", "\"odd local\"@example.com"};
    s.failed = {{"gone@example.com", "550 5.1.1 User unknown"},
                {"\"tab\tand\\slash\"@example.com", "550 5.7.1 two\nlines"}};
    s.history = {"2023-11-14T22:15:00Z attempt 1: 451 4.7.500 Server busy",
                 "2023-11-14T22:20:00Z attempt 2: connection refused"};
    return s;
}

TEST(queue_state_format, round_trips_every_field) {
    const queue_state s = full_state();
    auto parsed = subrelay::relay::parse_state(subrelay::relay::format_state(s));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, s);

    const queue_state empty;
    auto parsed_empty = subrelay::relay::parse_state(subrelay::relay::format_state(empty));
    ASSERT_TRUE(parsed_empty);
    EXPECT_EQ(*parsed_empty, empty);
}

TEST(queue_state_format, is_one_line_per_value) {
    const std::string text = subrelay::relay::format_state(full_state());
    EXPECT_EQ(text.rfind("subrelay-state 1\n", 0), 0u);
    EXPECT_NE(text.find("\nattempts 3\n"), std::string::npos);
    EXPECT_NE(text.find("\nheld 1\n"), std::string::npos);
    EXPECT_NE(text.find("\ndelivered \"odd local\"@example.com\n"), std::string::npos);
    EXPECT_NE(text.find("\nfailed gone@example.com\t550 5.1.1 User unknown\n"), std::string::npos);
    // The reply's newline is escaped, not written.
    EXPECT_NE(text.find("two\\nlines"), std::string::npos);
}

TEST(queue_state_format, ignores_unknown_keys_and_newer_versions) {
    auto s = subrelay::relay::parse_state("subrelay-state 2\nattempts 2\nfuture_key some value\nheld 1\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->attempts, 2u);
    EXPECT_TRUE(s->held);
    // No trailing newline is fine too.
    auto t = subrelay::relay::parse_state("subrelay-state 1\nnext_attempt 42");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->next_attempt, 42);
}

TEST(queue_state_format, rejects_damaged_text) {
    for (const char* bad : {"", "garbage\n", "subrelay-state x\n", "subrelay-state 1\nattempts -1\n",
                            "subrelay-state 1\nattempts 3x\n", "subrelay-state 1\nheld yes\n",
                            "subrelay-state 1\nfailed no-tab-here\n", "subrelay-state 1\nlast_reply bad \\q escape\n",
                            "subrelay-state 1\nhint trailing\\\n"}) {
        EXPECT_FALSE(subrelay::relay::parse_state(bad)) << bad;
    }
}

class state_store_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-state");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_;
};

TEST_F(state_store_test, saves_loads_and_removes) {
    subrelay::relay::state_store store(dir_);
    store.open();
    EXPECT_TRUE(fs::is_directory(dir_ / "state"));
    EXPECT_EQ(store.dir(), dir_ / "state");
    EXPECT_FALSE(store.load("0ABC"));

    store.save("0ABC", full_state());
    EXPECT_TRUE(fs::exists(dir_ / "state" / "0ABC"));
    auto loaded = store.load("0ABC");
    ASSERT_TRUE(loaded);
    EXPECT_EQ(*loaded, full_state());

    // Overwriting leaves no temporary file behind.
    queue_state next = full_state();
    next.attempts = 4;
    store.save("0ABC", next);
    EXPECT_EQ(store.load("0ABC")->attempts, 4u);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ / "state")) ++files;
    EXPECT_EQ(files, 1u);

    store.remove("0ABC");
    EXPECT_FALSE(store.load("0ABC"));
    EXPECT_NO_THROW(store.remove("0ABC"));  // already gone
}

TEST_F(state_store_test, a_damaged_file_is_an_error_naming_it) {
    subrelay::relay::state_store store(dir_);
    store.open();
    std::ofstream(dir_ / "state" / "0BAD") << "not a state file\n";
    try {
        (void)store.load("0BAD");
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find((dir_ / "state" / "0BAD").string()), std::string::npos) << e.what();
    }
}

TEST_F(state_store_test, refuses_ids_that_name_other_files) {
    subrelay::relay::state_store store(dir_);
    store.open();
    EXPECT_THROW((void)store.load("../queue/X"), std::runtime_error);
    EXPECT_THROW(store.save("../evil", {}), std::runtime_error);
    EXPECT_THROW(store.remove(""), std::runtime_error);
    EXPECT_FALSE(fs::exists(dir_ / "evil"));
}

TEST_F(state_store_test, save_fails_without_the_directory) {
    subrelay::relay::state_store store(dir_ / "missing");
    EXPECT_THROW(store.save("0ABC", {}), std::runtime_error);
}

class message_lock_test : public state_store_test {};

TEST_F(message_lock_test, is_exclusive_until_released) {
    const fs::path file = dir_ / "0ABC";
    std::ofstream(file) << "message\n";
    {
        auto first = subrelay::relay::message_lock::try_lock(file);
        ASSERT_TRUE(first);
        EXPECT_EQ(first->path(), file);
        EXPECT_FALSE(subrelay::relay::message_lock::try_lock(file));
        // Moving keeps the lock.
        auto moved = std::move(*first);
        first.reset();
        EXPECT_FALSE(subrelay::relay::message_lock::try_lock(file));
    }
    EXPECT_TRUE(subrelay::relay::message_lock::try_lock(file));
    auto blocking = subrelay::relay::message_lock::lock(file);
    EXPECT_FALSE(subrelay::relay::message_lock::try_lock(file));
}

TEST_F(message_lock_test, a_missing_or_removed_file_is_not_locked) {
    const fs::path file = dir_ / "0ABC";
    EXPECT_FALSE(subrelay::relay::message_lock::try_lock(file));
    try {
        (void)subrelay::relay::message_lock::lock(file);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    }
    std::ofstream(file) << "message\n";
    {
        auto held = subrelay::relay::message_lock::try_lock(file);
        ASSERT_TRUE(held);
        fs::remove(file);
    }
    EXPECT_FALSE(subrelay::relay::message_lock::try_lock(file));
    EXPECT_FALSE(fs::exists(file));
}

TEST_F(message_lock_test, a_replaced_file_is_locked_by_its_new_inode) {
    const fs::path file = dir_ / "0ABC";
    std::ofstream(file) << "old\n";
    auto old_lock = subrelay::relay::message_lock::try_lock(file);
    ASSERT_TRUE(old_lock);
    std::ofstream(dir_ / "new") << "new\n";
    fs::rename(dir_ / "new", file);
    // The name now refers to another, unlocked file.
    auto new_lock = subrelay::relay::message_lock::try_lock(file);
    EXPECT_TRUE(new_lock);
}


TEST_F(state_store_test, its_directory_is_private_and_refused_when_others_may_write) {
    const mode_t old = ::umask(0);
    subrelay::relay::state_store store(dir_);
    store.open();
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "state").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    fs::permissions(dir_ / "state", fs::perms::others_write, fs::perm_options::add);
    EXPECT_THROW(store.open(), std::runtime_error);
}

}  // namespace
