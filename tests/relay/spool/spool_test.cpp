#include "relay/spool/spool.hpp"
#include "tests/relay/temp_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include <memory>

namespace fs = std::filesystem;
using subrelay::relay::spool;
using subrelay::relay::spool_envelope;
using subrelay::relay::spool_error;

namespace {

class spool_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-spool");
    }
    void TearDown() override {
        std::error_code ec;
        fs::permissions(dir_ / "queue", fs::perms::owner_all, ec);
        fs::permissions(dir_ / "tmp", fs::perms::owner_all, ec);
        fs::remove_all(dir_, ec);
    }
    static spool_envelope sample() {
        spool_envelope e;
        e.sender = "scanner@contoso.com";
        e.recipients = {"a@example.com", "\"odd local\"@example.com"};
        e.identity = "scanner@contoso.com";
        e.upstream_mailbox = "relay@contoso.com";
        e.client_address = "192.0.2.7";
        e.received_at = 1700000000;
        e.eight_bit = true;
        return e;
    }
    static std::size_t count_files(const fs::path& d) {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& entry : fs::directory_iterator(d)) ++n;
        return n;
    }
    fs::path dir_;
};

TEST_F(spool_test, stores_and_loads_byte_for_byte) {
    spool s(dir_ / "spool");
    s.open();
    const std::string body = "Subject: x\r\n\r\nline\r\n.leading dot\r\n\0binary\r\n";
    std::string id = s.store(sample(), body, [](const std::string& qid) { return "Received: by test id " + qid + "\r\n"; });
    auto loaded = s.load(id);
    EXPECT_EQ(loaded.data, "Received: by test id " + id + "\r\n" + body);
    EXPECT_EQ(loaded.envelope.id, id);
    EXPECT_EQ(loaded.envelope.sender, "scanner@contoso.com");
    EXPECT_EQ(loaded.envelope.recipients, sample().recipients);
    EXPECT_EQ(loaded.envelope.upstream_mailbox, "relay@contoso.com");
    EXPECT_EQ(loaded.envelope.received_at, 1700000000);
    EXPECT_TRUE(loaded.envelope.eight_bit);
    EXPECT_FALSE(loaded.envelope.smtputf8);
    EXPECT_EQ(s.list(), std::vector<std::string>{id});
    EXPECT_EQ(count_files(dir_ / "spool" / "tmp"), 0u);
}

TEST_F(spool_test, null_sender_round_trips) {
    spool s(dir_);
    s.open();
    auto env = sample();
    env.sender.clear();
    std::string id = s.store(env, "x\r\n");
    EXPECT_EQ(s.load(id).envelope.sender, "");
}

TEST_F(spool_test, load_envelope_reads_the_envelope_alone) {
    spool s(dir_);
    s.open();
    auto env = sample();
    // Enough recipients that the envelope spans several read blocks.
    for (int i = 0; i < 300; ++i) env.recipients.push_back("recipient" + std::to_string(i) + "@example.com");
    const std::string id = s.store(env, std::string(3 * 1024 * 1024, 'x') + "\r\n");
    const spool_envelope read = s.load_envelope(id);
    const spool_envelope whole = s.load(id).envelope;
    EXPECT_EQ(read.recipients, whole.recipients);
    EXPECT_EQ(read.recipients.size(), 302u);
    EXPECT_EQ(read.sender, whole.sender);
    EXPECT_EQ(read.upstream_mailbox, "relay@contoso.com");
    EXPECT_EQ(read.received_at, 1700000000);
    EXPECT_EQ(read.id, id);
    EXPECT_THROW((void)s.load_envelope("1K1T0000000000ZZ"), spool_error);
}

TEST_F(spool_test, ids_are_unique_and_sorted_by_arrival) {
    spool s(dir_);
    s.open();
    std::vector<std::string> ids;
    for (int i = 0; i < 50; ++i) ids.push_back(s.store(sample(), "m\r\n"));
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
    EXPECT_EQ(s.list(), ids);
}

TEST_F(spool_test, remove_deletes_the_file) {
    spool s(dir_);
    s.open();
    std::string id = s.store(sample(), "body\r\n");
    s.remove(id);
    EXPECT_TRUE(s.list().empty());
    EXPECT_THROW((void)s.load(id), spool_error);
}

ino_t inode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_ino;
}

TEST_F(spool_test, removed_file_is_recycled_and_cut_to_the_new_size) {
    spool s(dir_);
    s.open();
    const std::string big(10000, 'b');
    std::string first = s.store(sample(), big);
    const ino_t inode = inode_of(dir_ / "queue" / first);
    s.remove(first);
    EXPECT_EQ(count_files(dir_ / "tmp"), 1u);
    std::string second = s.store(sample(), "small\r\n");
    EXPECT_EQ(inode_of(dir_ / "queue" / second), inode);
    EXPECT_EQ(s.load(second).data, "small\r\n");  // nothing of the longer message is left
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
    EXPECT_EQ(s.list(), std::vector<std::string>{second});
}

TEST_F(spool_test, recycled_file_still_locked_by_its_reader_waits) {
    spool s(dir_);
    s.open();
    std::string first = s.store(sample(), "one\r\n");
    const ino_t inode = inode_of(dir_ / "queue" / first);
    // A delivery holds the message's lock while it removes the message.
    int reader = ::open((dir_ / "queue" / first).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    ASSERT_EQ(::flock(reader, LOCK_EX | LOCK_NB), 0);
    s.remove(first);
    std::string second = s.store(sample(), "two\r\n");
    EXPECT_NE(inode_of(dir_ / "queue" / second), inode);
    EXPECT_EQ(count_files(dir_ / "tmp"), 1u);
    // Unlocked: the next message may lock its file, so the file is reused.
    ::close(reader);
    std::string third = s.store(sample(), "three\r\n");
    EXPECT_EQ(inode_of(dir_ / "queue" / third), inode);
    EXPECT_EQ(s.load(third).data, "three\r\n");
}

// Two relays on one spool would deliver its queue twice, and the second one
// would empty tmp/ under the first one's in-flight messages.
TEST_F(spool_test, a_second_open_of_one_spool_is_refused_and_touches_nothing) {
    auto first = std::make_unique<spool>(dir_);
    first->open();
    std::ofstream(dir_ / "tmp" / "in-flight") << "a message being received";
    spool second(dir_);
    try {
        second.open();
        FAIL() << "a second open succeeded";
    } catch (const spool_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "spool " + dir_.string() + " is in use by process " + std::to_string(::getpid()));
    }
    EXPECT_TRUE(fs::exists(dir_ / "tmp" / "in-flight")) << "the first relay's tmp/ was emptied";
    // Once the first is gone, the spool can be taken again.
    first.reset();
    spool third(dir_);
    EXPECT_NO_THROW(third.open());
    EXPECT_FALSE(fs::exists(dir_ / "tmp" / "in-flight"));
}

TEST_F(spool_test, only_the_process_that_opened_the_spool_recycles) {
    spool relay(dir_);
    relay.open();
    std::string id = relay.store(sample(), "body\r\n");
    spool command(dir_);  // a queue command: never opened, does not own tmp/
    command.remove(id);
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
    EXPECT_TRUE(relay.list().empty());
}

TEST_F(spool_test, large_files_are_removed_not_recycled) {
    spool s(dir_);
    s.open();
    std::string id = s.store(sample(), std::string(spool::max_recycled_size + 1, 'x'));
    s.remove(id);
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
}

TEST_F(spool_test, open_removes_unacknowledged_leftovers) {
    {
        spool s(dir_);
        s.open();
    }
    std::ofstream(dir_ / "tmp" / "HALFWRITTEN") << "partial";
    spool s(dir_);
    s.open();
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
}

TEST_F(spool_test, failed_rename_throws_and_leaves_nothing) {
    spool s(dir_);
    s.open();
    // queue/ replaced by a file: the rename into it must fail for any user.
    fs::remove_all(dir_ / "queue");
    std::ofstream(dir_ / "queue") << "not a directory";
    EXPECT_THROW(s.store(sample(), "body\r\n"), spool_error);
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
}

// ---- a message written as it arrives

TEST_F(spool_test, incoming_message_is_queued_only_at_commit) {
    spool s(dir_);
    s.open();
    auto in = s.begin(sample(), [](const std::string& qid) { return "Received: by test id " + qid + "\r\n"; });
    ASSERT_TRUE(in.active());
    std::string body;
    for (int i = 0; i < 3; ++i) {
        const std::string piece(200 * 1024, static_cast<char>('a' + i));
        in.append(piece);
        body += piece;
        EXPECT_TRUE(s.list().empty()) << "nothing is queued before the commit";
        EXPECT_EQ(count_files(dir_ / "tmp"), 1u);
    }
    in.append("");
    EXPECT_EQ(in.size(), body.size());
    const std::string id = in.commit();
    EXPECT_FALSE(in.active());
    EXPECT_EQ(id, in.id());
    EXPECT_EQ(s.list(), std::vector<std::string>{id});
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
    const auto loaded = s.load(id);
    EXPECT_EQ(loaded.data, "Received: by test id " + id + "\r\n" + body);
    EXPECT_EQ(loaded.envelope.recipients, sample().recipients);
    EXPECT_EQ(loaded.envelope.id, id);
}

TEST_F(spool_test, aborted_incoming_message_leaves_nothing) {
    spool s(dir_);
    s.open();
    auto in = s.begin(sample());
    in.append(std::string(300 * 1024, 'x'));
    in.abort();
    EXPECT_FALSE(in.active());
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
    EXPECT_TRUE(s.list().empty());
    in.abort();  // twice is harmless
    EXPECT_THROW(in.commit(), spool_error);
    EXPECT_THROW(in.append("more"), spool_error);
}

TEST_F(spool_test, an_incoming_message_dropped_unfinished_leaves_nothing) {
    spool s(dir_);
    s.open();
    {
        auto in = s.begin(sample());
        in.append("the client went away\r\n");
        auto moved = std::move(in);
        EXPECT_FALSE(in.active());  // NOLINT(bugprone-use-after-move): moved-from is inactive
        EXPECT_TRUE(moved.active());
        EXPECT_EQ(count_files(dir_ / "tmp"), 1u);
    }
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
    EXPECT_TRUE(s.list().empty());
}

TEST_F(spool_test, an_aborted_message_gives_its_recycled_file_back_empty) {
    spool s(dir_);
    s.open();
    const std::string first = s.store(sample(), "one\r\n");
    const ino_t inode = inode_of(dir_ / "queue" / first);
    s.remove(first);
    ASSERT_EQ(count_files(dir_ / "tmp"), 1u);
    auto in = s.begin(sample());
    in.append(std::string(1 << 20, 'x'));  // larger than a file that is recycled
    in.abort();
    // tmp/ holds what it held before: the recycled file, emptied.
    ASSERT_EQ(count_files(dir_ / "tmp"), 1u);
    const fs::path kept = fs::directory_iterator(dir_ / "tmp")->path();
    EXPECT_EQ(inode_of(kept), inode);
    EXPECT_EQ(fs::file_size(kept), 0u);
    const std::string second = s.store(sample(), "two\r\n");
    EXPECT_EQ(inode_of(dir_ / "queue" / second), inode);
    EXPECT_EQ(s.load(second).data, "two\r\n");
}

TEST_F(spool_test, a_recycled_file_is_cut_to_the_streamed_size) {
    spool s(dir_);
    s.open();
    const std::string first = s.store(sample(), std::string(60000, 'l'));
    s.remove(first);
    auto in = s.begin(sample());
    in.append("short\r\n");
    in.append("message\r\n");
    const std::string id = in.commit();
    EXPECT_EQ(s.load(id).data, "short\r\nmessage\r\n");
}

// A write that fails half-way (here: the file size limit, as a full disk
// would) loses the message and says why; nothing is left behind.
TEST_F(spool_test, a_failed_append_throws_and_leaves_nothing) {
    spool s(dir_);
    s.open();
    auto in = s.begin(sample());
    struct rlimit old_limit {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_limit;
    small.rlim_cur = 64 * 1024;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    int error = 0;
    try {
        in.append(std::string(256 * 1024, 'x'));
    } catch (const spool_error& e) {
        error = e.error_number();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_EQ(error, EFBIG);
    EXPECT_FALSE(in.active());
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
    EXPECT_TRUE(s.list().empty());
    // The spool goes on.
    const std::string id = s.store(sample(), "after\r\n");
    EXPECT_EQ(s.load(id).data, "after\r\n");
}

TEST(spool_errors, out_of_space_means_a_full_disk_or_quota) {
    EXPECT_TRUE(spool_error("write", ENOSPC).out_of_space());
    EXPECT_TRUE(spool_error("write", EDQUOT).out_of_space());
    EXPECT_FALSE(spool_error("write", EIO).out_of_space());
    EXPECT_FALSE(spool_error("damaged").out_of_space());
}

TEST_F(spool_test, open_fails_when_the_directory_cannot_be_created) {
    std::ofstream(dir_ / "file") << "x";
    spool s(dir_ / "file" / "spool");
    EXPECT_THROW(s.open(), spool_error);
}

TEST(spool_format, rejects_damaged_envelopes) {
    EXPECT_FALSE(subrelay::relay::parse_envelope("garbage"));
    EXPECT_FALSE(subrelay::relay::parse_envelope("subrelay-spool 1\nid ABC\n"));  // no blank line
    EXPECT_FALSE(subrelay::relay::parse_envelope("subrelay-spool 1\nid ../etc\n\n"));
    EXPECT_FALSE(subrelay::relay::parse_envelope("subrelay-spool 1\nid ABC\nreceived x\n\n"));
    auto ok = subrelay::relay::parse_envelope("subrelay-spool 1\nid ABC\nrecipient a@b\n\nDATA");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->first.recipients, std::vector<std::string>{"a@b"});
    EXPECT_EQ(ok->second, std::string("subrelay-spool 1\nid ABC\nrecipient a@b\n\n").size());
}


// The delivery reads a message as it sends it: a small one whole at once, a
// large one by its header section first and the rest in pieces.
TEST_F(spool_test, open_message_reads_a_small_message_whole) {
    spool s(dir_);
    s.open();
    const std::string id = s.store(sample(), "Subject: x\r\n\r\nbody\r\n");
    const auto m = s.open_message(id);
    EXPECT_EQ(m.envelope.id, id);
    EXPECT_EQ(m.envelope.recipients, sample().recipients);
    EXPECT_EQ(m.head(), "Subject: x\r\n\r\nbody\r\n");
    EXPECT_EQ(m.size(), m.head().size());
    EXPECT_TRUE(m.whole());
}

TEST_F(spool_test, open_message_holds_the_head_of_a_large_one_and_reads_the_rest_in_pieces) {
    spool s(dir_);
    s.open();
    std::string body = "Subject: big\r\n\r\n";
    for (int i = 0; body.size() < 3 * 1024 * 1024; ++i) body += "line " + std::to_string(i) + "\r\n";
    const std::string id = s.store(sample(), body);
    const auto m = s.open_message(id);
    EXPECT_EQ(m.size(), body.size());
    EXPECT_FALSE(m.whole());
    EXPECT_GE(m.head().size(), spool::head_bytes);
    EXPECT_LE(m.head().size(), spool::head_bytes + 64 * 1024);
    EXPECT_EQ(m.head(), body.substr(0, m.head().size()));
    std::string read;
    std::vector<char> buf(100000);
    for (std::size_t n; (n = m.read_at(read.size(), buf)) != 0;) read.append(buf.data(), n);
    EXPECT_EQ(read, body);
    EXPECT_EQ(s.load(id).data, body);
}

TEST_F(spool_test, open_message_reads_on_to_the_end_of_a_long_header_section) {
    spool s(dir_);
    s.open();
    std::string headers;
    while (headers.size() < 200 * 1024) headers += "X-Long: " + std::string(70, 'h') + "\r\n";
    const std::string body = headers + "\r\n" + std::string(2 * 1024 * 1024, 'b');
    const auto m = s.open_message(s.store(sample(), body));
    EXPECT_GE(m.head().size(), headers.size() + 2);
    EXPECT_LT(m.head().size(), body.size());
    EXPECT_EQ(m.head(), body.substr(0, m.head().size()));
}

TEST_F(spool_test, open_message_refuses_a_damaged_file_and_an_unknown_id) {
    spool s(dir_);
    s.open();
    EXPECT_THROW((void)s.open_message("../queue/X"), spool_error);
    EXPECT_THROW((void)s.open_message(spool::new_id()), spool_error);
    const std::string id = spool::new_id();
    {
        std::ofstream damaged(dir_ / "queue" / id, std::ios::binary);
        damaged << std::string(3 * 1024 * 1024, 'z');
    }
    EXPECT_THROW((void)s.open_message(id), spool_error);
}


// Delivered mail does not stay on disk in a recycled file.
TEST_F(spool_test, a_recycled_file_is_emptied_when_its_message_is_removed) {
    spool s(dir_);
    s.open();
    const std::string id = s.store(sample(), "Subject: secret\r\n\r\nthe delivered text\r\n");
    s.remove(id);
    ASSERT_EQ(count_files(dir_ / "tmp"), 1u) << "the file is kept for the next message";
    for (const auto& entry : fs::directory_iterator(dir_ / "tmp"))
        EXPECT_EQ(fs::file_size(entry.path()), 0u) << entry.path();
    // And it still serves the next message whole.
    const std::string next = s.store(sample(), "next\r\n");
    EXPECT_EQ(s.load(next).data, "next\r\n");
    EXPECT_EQ(count_files(dir_ / "tmp"), 0u);
}

// With umask 000 the directories used to be 0777: any local user could
// plant a message, delivered as another account.
TEST_F(spool_test, its_directories_are_private_whatever_the_umask) {
    const mode_t old = ::umask(0);
    spool s(dir_ / "spool");
    s.open();
    ::umask(old);
    for (const auto& d : {dir_ / "spool", dir_ / "spool" / "tmp", dir_ / "spool" / "queue"}) {
        struct stat st {};
        ASSERT_EQ(::stat(d.c_str(), &st), 0) << d;
        EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
    }
}

TEST_F(spool_test, refuses_a_directory_others_may_write_to) {
    const fs::path d = dir_ / "spool";
    fs::create_directories(d / "queue");
    fs::permissions(d / "queue", fs::perms::all);  // 0777
    spool s(d);
    try {
        s.open();
        FAIL() << "a queue/ writable by others was accepted";
    } catch (const spool_error& e) {
        EXPECT_NE(std::string(e.what()).find((d / "queue").string() + " is writable by other users (mode 0777)"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_FALSE(fs::exists(d / "serve.lock")) << "nothing in the spool was touched";
}

}  // namespace
