#include "relay/spool/durable_file.hpp"
#include "tests/relay/temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using subrelay::relay::directory_syncer;
using subrelay::relay::existing_tmp;
using subrelay::relay::fd_guard;
using subrelay::relay::file_mode;
using subrelay::relay::valid_queue_id;
using subrelay::relay::write_file_atomically;

namespace {

class durable_file_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-durable");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    static std::string read(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        return std::move(ss).str();
    }
    [[nodiscard]] std::size_t count_files() const {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++n;
        return n;
    }
    fs::path dir_;
};

TEST_F(durable_file_test, writes_the_concatenated_parts) {
    const std::string binary("a\0b\r\n", 5);
    write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"head\n", binary, "", "tail"});
    EXPECT_EQ(read(dir_ / "file"), "head\n" + binary + "tail");
    EXPECT_FALSE(fs::exists(dir_ / ".file.tmp"));
    EXPECT_EQ(count_files(), 1u);
}

TEST_F(durable_file_test, replaces_an_existing_file) {
    std::ofstream(dir_ / "file") << "old content that is longer";
    write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"new"});
    EXPECT_EQ(read(dir_ / "file"), "new");
    EXPECT_EQ(count_files(), 1u);
}

TEST_F(durable_file_test, creates_with_the_given_mode) {
    const mode_t old_mask = ::umask(022);
    write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"x"}, 0640);
    ::umask(old_mask);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "file").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(durable_file_test, the_umask_narrows_the_mode_unless_it_is_exact) {
    const mode_t old_mask = ::umask(077);
    write_file_atomically(dir_ / "narrowed", dir_ / ".narrowed.tmp", {"x"}, 0640);
    write_file_atomically(dir_ / "exact", dir_ / ".exact.tmp", {"x"}, 0640, existing_tmp::replace, file_mode::exact);
    ::umask(old_mask);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "narrowed").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat((dir_ / "exact").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(durable_file_test, exact_mode_also_widens_a_leftover_tmp) {
    std::ofstream(dir_ / ".file.tmp") << "leftover";
    ASSERT_EQ(::chmod((dir_ / ".file.tmp").c_str(), 0600), 0);
    write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"x"}, 0644, existing_tmp::replace, file_mode::exact);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "file").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(durable_file_test, a_symbolic_link_at_the_tmp_path_is_not_followed) {
    std::ofstream(dir_ / "elsewhere") << "untouched";
    fs::create_symlink(dir_ / "elsewhere", dir_ / ".file.tmp");
    EXPECT_THROW(write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"data"}), std::runtime_error);
    EXPECT_EQ(read(dir_ / "elsewhere"), "untouched");
    EXPECT_FALSE(fs::exists(dir_ / "file"));
}

TEST_F(durable_file_test, missing_target_directory_throws_and_leaves_no_tmp) {
    // The temporary file can be created, the rename cannot succeed.
    EXPECT_THROW(write_file_atomically(dir_ / "missing" / "file", dir_ / ".file.tmp", {"data"}), std::runtime_error);
    EXPECT_EQ(count_files(), 0u);
}

TEST_F(durable_file_test, target_that_is_a_directory_throws_and_keeps_it) {
    fs::create_directory(dir_ / "file");
    std::ofstream(dir_ / "file" / "inside") << "x";
    EXPECT_THROW(write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"data"}), std::runtime_error);
    EXPECT_FALSE(fs::exists(dir_ / ".file.tmp"));
    EXPECT_TRUE(fs::is_directory(dir_ / "file"));
    EXPECT_EQ(read(dir_ / "file" / "inside"), "x");
}

TEST_F(durable_file_test, leftover_tmp_is_replaced_by_default) {
    std::ofstream(dir_ / ".file.tmp") << "leftover of a crash, longer than the new content";
    write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"fresh"});
    EXPECT_EQ(read(dir_ / "file"), "fresh");
    EXPECT_EQ(count_files(), 1u);
}

TEST_F(durable_file_test, existing_tmp_fails_when_exclusive_and_is_left_alone) {
    std::ofstream(dir_ / ".file.tmp") << "another writer";
    EXPECT_THROW(write_file_atomically(dir_ / "file", dir_ / ".file.tmp", {"mine"}, 0600, existing_tmp::fail),
                 std::runtime_error);
    EXPECT_FALSE(fs::exists(dir_ / "file"));
    EXPECT_EQ(read(dir_ / ".file.tmp"), "another writer");
}

TEST_F(durable_file_test, fd_guard_closes_unless_released) {
    int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    { fd_guard g(fd); }
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);

    fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    {
        fd_guard g(fd);
        EXPECT_EQ(g.release(), fd);
    }
    EXPECT_NE(::fcntl(fd, F_GETFD), -1);
    ::close(fd);
}

TEST_F(durable_file_test, directory_syncer_serves_concurrent_callers) {
    directory_syncer syncer(dir_);
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                syncer.sync();
                ++done;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(done.load(), 400);
}

TEST_F(durable_file_test, directory_syncer_reports_the_failure_to_every_caller) {
    directory_syncer syncer(dir_ / "missing");
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 20; ++i) {
                try {
                    syncer.sync();
                } catch (const std::runtime_error& e) {
                    if (std::string(e.what()).find("missing") != std::string::npos) ++failures;
                }
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 80);
    // Once the directory exists, the next call succeeds: failures do not stick.
    fs::create_directory(dir_ / "missing");
    EXPECT_NO_THROW(syncer.sync());
}

TEST(valid_queue_id, accepts_spool_ids_only) {
    EXPECT_TRUE(valid_queue_id("0ABCDEFGHJK12345"));
    EXPECT_TRUE(valid_queue_id(std::string(64, 'Z')));
    EXPECT_FALSE(valid_queue_id(""));
    EXPECT_FALSE(valid_queue_id(std::string(65, 'Z')));
    EXPECT_FALSE(valid_queue_id("abc"));
    EXPECT_FALSE(valid_queue_id("../ETC"));
    EXPECT_FALSE(valid_queue_id("A.tmp"));
    EXPECT_FALSE(valid_queue_id("A B"));
}

}  // namespace
