#include "relay/server/private_files.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/relay/temp_dir.hpp"

namespace subrelay::relay {
namespace {

namespace fs = std::filesystem;

class private_files_test : public ::testing::Test {
protected:
    void SetUp() override { dir_ = test_support::make_temp_dir("subrelay-private"); }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path file(const std::string& name, fs::perms mode) {
        const fs::path p = dir_ / name;
        std::ofstream(p) << "secret\n";
        fs::permissions(p, mode);
        return p;
    }
    fs::path dir_;
};

TEST_F(private_files_test, names_each_secret_file_others_may_read) {
    conf::config cfg;
    cfg.policy.file = file("policy.toml", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                              fs::perms::others_read);  // 0644
    cfg.tls.certificates = {{file("cert.pem", fs::perms::owner_read | fs::perms::others_read),
                             file("key.pem", fs::perms::owner_read | fs::perms::group_read)},  // 0440: fine
                            {file("cert2.pem", fs::perms::owner_read),
                             file("key2.pem", fs::perms::owner_read | fs::perms::others_write)}};
    cfg.oauth.refresh_token_file = file("refresh", fs::perms::owner_read | fs::perms::others_read);
    const auto warnings = exposed_secret_files(cfg);
    ASSERT_EQ(warnings.size(), 3u);
    EXPECT_EQ(warnings[0].key, "policy.file");
    EXPECT_EQ(warnings[0].message, cfg.policy.file.string() + " can be read by other users (mode 0644): chmod o-rwx " +
                                       cfg.policy.file.string());
    EXPECT_EQ(warnings[1].key, "tls.key_file[1]");
    EXPECT_NE(warnings[1].message.find("can be written by other users (mode 0402)"), std::string::npos)
        << warnings[1].message;
    EXPECT_EQ(warnings[2].key, "oauth.refresh_token_file");
}

TEST_F(private_files_test, private_and_missing_files_say_nothing) {
    conf::config cfg;
    cfg.policy.file = file("policy.toml", fs::perms::owner_read | fs::perms::owner_write);
    cfg.tls.certificates = {{dir_ / "cert.pem", dir_ / "missing-key.pem"}};
    EXPECT_TRUE(exposed_secret_files(cfg).empty());
}

}  // namespace
}  // namespace subrelay::relay
