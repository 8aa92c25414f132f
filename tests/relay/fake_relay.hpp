#pragma once
// A relay's control socket on its own thread, answering every request with
// what the test chose (the real control_server, a stand-in daemon).
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "relay/server/control.hpp"

namespace subrelay::test_support {

class fake_relay {
public:
    using answer_fn = std::function<boost::json::object(const boost::json::object& request)>;

    fake_relay(const std::filesystem::path& spool_dir, answer_fn answer) : answer_(std::move(answer)) {
        std::filesystem::create_directories(spool_dir);
        server_ = std::make_unique<relay::control_server>(
            io_, spool_dir, [this](boost::json::object request) -> boost::asio::awaitable<boost::json::object> {
                co_return answer_(request);
            });
        server_->start();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~fake_relay() {
        boost::asio::post(io_, [this] { server_->stop(); });
        work_.reset();
        io_.stop();
        thread_.join();
    }
    fake_relay(const fake_relay&) = delete;
    fake_relay& operator=(const fake_relay&) = delete;

private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
    answer_fn answer_;
    std::unique_ptr<relay::control_server> server_;
    std::thread thread_;
};

}  // namespace subrelay::test_support
