#include "relay/server/limits_keeper.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "policy/limits_state.hpp"
#include "tests/policy/limiter_calls.hpp"
#include "tests/relay/temp_dir.hpp"

namespace subrelay::relay {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const policy::effective_limits one_a_minute{1, 0, 0};

class limits_keeper_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test_support::make_temp_dir("subrelay-limits-keeper");
        file_ = dir_ / "limits.state";
        previous_ = spdlog::default_logger();
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
        spdlog::default_logger()->set_pattern("%l %v");
    }
    void TearDown() override {
        spdlog::set_default_logger(previous_);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path dir_;
    fs::path file_;
    std::ostringstream log_;
    std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(limits_keeper_test, saves_only_what_is_new_and_restores_it) {
    {
        policy::limiter limits;
        limits_keeper keeper(limits, file_);
        keeper.restore();  // no file yet: nothing to say
        EXPECT_FALSE(keeper.changed());
        keeper.save_if_changed();
        EXPECT_FALSE(fs::exists(file_)) << "nothing counted, nothing written";
        policy::test_calls::record(limits, "a@contoso.com", 2);
        EXPECT_TRUE(keeper.changed());
        keeper.save_if_changed();
        EXPECT_FALSE(keeper.changed());
        struct stat st {};
        ASSERT_EQ(::stat(file_.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600U);
        fs::remove(file_);
        keeper.save_if_changed();
        EXPECT_FALSE(fs::exists(file_)) << "written again although nothing changed";
        policy::test_calls::record(limits, "a@contoso.com", 1);
        keeper.save_if_changed();
    }
    policy::limiter next;
    limits_keeper keeper(next, file_);
    keeper.restore();
    EXPECT_THAT(log_.str(), HasSubstr("info limits: counters of 1 account(s) restored from " + file_.string()));
    EXPECT_TRUE(policy::test_calls::check_message(next, "a@contoso.com", one_a_minute).has_value());
    EXPECT_TRUE(policy::test_calls::check_recipient(next, "a@contoso.com", {0, 3, 0}, 0).has_value());
    EXPECT_FALSE(keeper.changed()) << "what was restored is in the file already";
}

TEST_F(limits_keeper_test, a_damaged_file_is_a_warning_and_empty_counters) {
    std::ofstream(file_) << "subrelay-limits 1\naccount a@contoso.com\nmessage soon\nend\n";
    policy::limiter limits;
    limits_keeper keeper(limits, file_);
    keeper.restore();
    EXPECT_EQ(log_.str(), "warning limits: " + file_.string() +
                              ": line 3: \"soon\" is not a time (milliseconds since 1970); the message and "
                              "recipient counters start empty\n");
    EXPECT_EQ(policy::test_calls::check_message(limits, "a@contoso.com", one_a_minute), std::nullopt);
    // The next snapshot replaces it.
    policy::test_calls::record(limits, "a@contoso.com", 1);
    keeper.save_if_changed();
    EXPECT_EQ(policy::load_limits_state(file_)->accounts.size(), 1U);
}

TEST_F(limits_keeper_test, a_failed_save_is_logged_once_and_tried_again) {
    const fs::path file = dir_ / "gone" / "limits.state";  // its directory is missing for a while
    policy::limiter limits;
    limits_keeper keeper(limits, file);
    policy::test_calls::record(limits, "a@contoso.com", 1);
    keeper.save_if_changed();
    keeper.save_if_changed();
    EXPECT_THAT(log_.str(), HasSubstr("warning limits: cannot save the message and recipient counters: create "));
    EXPECT_EQ(log_.str().find('\n'), log_.str().size() - 1) << "one warning for the same failure: " << log_.str();
    EXPECT_TRUE(keeper.changed()) << "still to be saved";
    fs::create_directory(dir_ / "gone");
    keeper.save_if_changed();
    EXPECT_FALSE(keeper.changed());
    EXPECT_THAT(log_.str(), HasSubstr("info limits: " + file.string() + " saved again"));
    EXPECT_EQ(policy::load_limits_state(file)->accounts.size(), 1U);
}

}  // namespace
}  // namespace subrelay::relay
