#pragma once
// A real redis-server for one test: on a Unix socket in a directory of its
// own, without persistence, started and stopped (or killed, or paused) at
// will, and a plain hiredis client to look at what the library left in it.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace subrelay::test_support {

struct redis_reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using redis_reply_ptr = std::unique_ptr<redisReply, redis_reply_deleter>;

struct redis_context_deleter {
    void operator()(redisContext* c) const { redisFree(c); }
};

// A client of the test's own.
class redis_client {
public:
    explicit redis_client(const std::filesystem::path& socket, std::string password = {}) {
        timeval tv{1, 0};
        context_.reset(redisConnectUnixWithTimeout(socket.c_str(), tv));
        if (!context_ || context_->err != 0) return;
        redisSetTimeout(context_.get(), timeval{5, 0});
        if (!password.empty()) command({"AUTH", password});
    }
    [[nodiscard]] bool connected() const { return context_ && context_->err == 0; }

    // nullptr when the connection failed.
    redis_reply_ptr command(const std::vector<std::string>& argv) {
        if (!connected()) return nullptr;
        std::vector<const char*> args;
        std::vector<std::size_t> lengths;
        for (const auto& a : argv) {
            args.push_back(a.data());
            lengths.push_back(a.size());
        }
        return redis_reply_ptr(static_cast<redisReply*>(
            redisCommandArgv(context_.get(), static_cast<int>(args.size()), args.data(), lengths.data())));
    }

    // The string of a status or bulk reply; nullopt for anything else.
    std::optional<std::string> text(const std::vector<std::string>& argv) {
        auto r = command(argv);
        if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return std::nullopt;
        return std::string(r->str, r->len);
    }
    std::optional<long long> integer(const std::vector<std::string>& argv) {
        auto r = command(argv);
        if (!r || r->type != REDIS_REPLY_INTEGER) return std::nullopt;
        return r->integer;
    }
    std::vector<std::string> strings(const std::vector<std::string>& argv) {
        std::vector<std::string> out;
        auto r = command(argv);
        if (!r || r->type != REDIS_REPLY_ARRAY) return out;
        for (std::size_t i = 0; i < r->elements; ++i) out.emplace_back(r->element[i]->str, r->element[i]->len);
        return out;
    }

private:
    std::unique_ptr<redisContext, redis_context_deleter> context_;
};

class redis_server {
public:
    redis_server(std::filesystem::path dir, std::vector<std::string> extra_args = {})
        : dir_(std::move(dir)), socket_(dir_ / "redis.sock"), extra_(std::move(extra_args)) {}
    ~redis_server() { kill(); }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    [[nodiscard]] const std::filesystem::path& socket() const { return socket_; }

    // Starts it and returns once it answers PING (throws when it does not
    // within 30 s).
    void start() {
        std::vector<std::string> args{"redis-server", "--port", "0", "--unixsocket", socket_.string(),
                                      "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                                      "--dir", dir_.string(), "--logfile", (dir_ / "redis.log").string()};
        args.insert(args.end(), extra_.begin(), extra_.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) {
            pid_ = -1;
            throw std::runtime_error("cannot start redis-server (scripts/install-deps installs it)");
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!answers_ping()) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("redis-server exited at start; see " + (dir_ / "redis.log").string());
            }
            if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("redis-server does not answer PING");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    // SIGKILL, as a crash: the socket file stays behind.
    void kill() {
        if (pid_ <= 0) return;
        resume();
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    // SIGSTOP: connections stay open but nothing is answered.
    void pause() {
        if (pid_ > 0 && !paused_) ::kill(pid_, SIGSTOP);
        paused_ = pid_ > 0;
    }
    void resume() {
        if (pid_ > 0 && paused_) ::kill(pid_, SIGCONT);
        paused_ = false;
    }

    redis_client client() { return redis_client(socket_, password()); }

private:
    [[nodiscard]] std::string password() const {
        for (std::size_t i = 0; i + 1 < extra_.size(); ++i) {
            if (extra_[i] == "--requirepass") return extra_[i + 1];
        }
        return {};
    }

    bool answers_ping() {
        auto c = client();
        return c.text({"PING"}) == std::optional<std::string>("PONG");
    }

    std::filesystem::path dir_;
    std::filesystem::path socket_;
    std::vector<std::string> extra_;
    pid_t pid_ = -1;
    bool paused_ = false;
};

}  // namespace subrelay::test_support
