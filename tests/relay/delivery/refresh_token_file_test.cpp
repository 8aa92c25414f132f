// The refresh token's file: private, replaced whole, read at each use.
#include "relay/delivery/refresh_token_file.hpp"
#include "tests/relay/temp_dir.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace {

class refresh_token_file_test : public ::testing::Test {
protected:
    void SetUp() override { dir_ = subrelay::test_support::make_temp_dir("subrelay-refresh"); }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_;
};

TEST_F(refresh_token_file_test, missing_file_means_not_signed_in) {
    auto store = subrelay::relay::refresh_token_file(dir_ / "refresh-token", "oauth.refresh_token_file");
    EXPECT_FALSE(store->load().has_value());
}

TEST_F(refresh_token_file_test, saved_token_is_private_and_read_back) {
    const fs::path file = dir_ / "refresh-token";
    auto store = subrelay::relay::refresh_token_file(file, "oauth.refresh_token_file");
    store->save("0.AAAA-first");
    EXPECT_EQ(store->load(), "0.AAAA-first");
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U);
    store->save("0.AAAA-second");
    EXPECT_EQ(store->load(), "0.AAAA-second");
    EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
}

TEST_F(refresh_token_file_test, a_token_written_by_someone_else_is_read_at_the_next_use) {
    const fs::path file = dir_ / "refresh-token";
    auto store = subrelay::relay::refresh_token_file(file, "oauth.refresh_token_file");
    store->save("old");
    std::ofstream(file, std::ios::trunc) << "from-a-new-sign-in\n";  // `subrelay oauth login` meanwhile
    EXPECT_EQ(store->load(), "from-a-new-sign-in");
}

TEST_F(refresh_token_file_test, a_failed_save_keeps_the_old_token_and_names_the_key) {
    const fs::path file = dir_ / "refresh-token";
    auto store = subrelay::relay::refresh_token_file(file, "oauth.profiles.delegated.refresh_token_file");
    store->save("still-valid");
    // A directory where the temporary file goes: the write fails, for root too.
    fs::create_directory(file.string() + ".tmp");
    try {
        store->save("rotated");
        ADD_FAILURE() << "expected the save to fail";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("oauth.profiles.delegated.refresh_token_file: ", 0), 0U) << e.what();
    }
    EXPECT_EQ(store->load(), "still-valid");
}

}  // namespace
