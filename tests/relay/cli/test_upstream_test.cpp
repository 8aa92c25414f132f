#include "relay/cli/cli.hpp"
#include "tests/relay/temp_dir.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>


namespace fs = std::filesystem;

namespace {

struct result {
    int status;
    std::string out;
    std::string err;
};

result run(std::vector<std::string> args) {
    args.insert(args.begin(), "test-upstream");
    std::istringstream in;
    std::ostringstream out, err;
    const int status = subrelay::relay::run_cli(args, in, out, err);
    return {status, out.str(), err.str()};
}

// The steps marked [ ok ] / [FAIL] / [skip], in order: "ok config", "FAIL token", ...
std::vector<std::string> marks(const std::string& out) {
    static const std::regex mark(R"(^\[( ok |FAIL|skip)\] (\S+))");
    std::vector<std::string> found;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (!std::regex_search(line, m, mark)) continue;
        std::string what = m[1].str() == " ok " ? "ok" : m[1].str();
        found.push_back(what + " " + m[2].str());
    }
    return found;
}

// A listening socket on 127.0.0.1; -1 on failure.
int listen_socket(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 4) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        return -1;
    }
    port = ntohs(a.sin_port);
    return fd;
}

// A plain-text connector (no TLS, no AUTH) serving one session: records the commands.
class plain_upstream {
public:
    plain_upstream() {
        fd_ = listen_socket(port_);
        if (fd_ >= 0) thread_ = std::thread([this] { serve(); });
    }
    ~plain_upstream() {
        if (thread_.joinable()) {
            ::shutdown(fd_, SHUT_RDWR);
            thread_.join();
        }
        if (fd_ >= 0) ::close(fd_);
    }
    plain_upstream(const plain_upstream&) = delete;
    plain_upstream& operator=(const plain_upstream&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] bool listening() const { return fd_ >= 0; }
    [[nodiscard]] std::vector<std::string> commands() {
        if (thread_.joinable()) thread_.join();
        return commands_;
    }

private:
    void serve() {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        auto say = [c](const std::string& text) { (void)!::write(c, text.data(), text.size()); };
        say("220 connector.contoso.test ESMTP\r\n");
        std::string buffer;
        char chunk[4096];
        for (;;) {
            const ssize_t n = ::read(c, chunk, sizeof chunk);
            if (n <= 0) break;
            buffer.append(chunk, static_cast<std::size_t>(n));
            for (std::size_t end; (end = buffer.find("\r\n")) != std::string::npos;) {
                const std::string line = buffer.substr(0, end);
                buffer.erase(0, end + 2);
                commands_.push_back(line);
                if (line.rfind("EHLO", 0) == 0)
                    say("250-connector.contoso.test\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n");
                else if (line == "QUIT") say("221 2.0.0 Bye\r\n");
                else say("502 5.5.2 not here\r\n");
            }
        }
        ::close(c);
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::vector<std::string> commands_;
};

class test_upstream : public ::testing::Test {
protected:
    void SetUp() override { dir_ = subrelay::test_support::make_temp_dir("subrelay-test-upstream"); }
    void TearDown() override { fs::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name) << text;
        fs::permissions(dir_ / name, fs::perms::owner_read | fs::perms::owner_write);  // secrets must be private
        return (dir_ / name).string();
    }
    // A connector upstream at 127.0.0.1:port without TLS and AUTH.
    std::string connector_config(std::uint16_t port) {
        return write("relay.toml", "[server]\nsubmission = []\n[upstream]\nhost = \"127.0.0.1\"\nport = " +
                                       std::to_string(port) +
                                       "\ntls = \"none\"\nauth = \"none\"\nmailbox = \"relay@contoso.com\"\n"
                                       "connect_timeout_seconds = 5\ncommand_timeout_seconds = 5\n");
    }
    fs::path dir_;
};

TEST_F(test_upstream, help_and_usage_errors) {
    auto h = run({"--help"});
    EXPECT_EQ(h.status, 0);
    EXPECT_NE(h.out.find("usage: subrelay test-upstream"), std::string::npos);
    auto u = run({"--colour"});
    EXPECT_EQ(u.status, 2);
    EXPECT_NE(u.err.find("unknown option '--colour'"), std::string::npos) << u.err;
    auto m = run({"--mailbox"});
    EXPECT_EQ(m.status, 2);
    EXPECT_NE(m.err.find("--mailbox needs a value"), std::string::npos) << m.err;
}

TEST_F(test_upstream, config_problems_are_listed_as_file_key_what) {
    const std::string file = write("bad.toml", "[upstream]\nkind = \"smtp\"\ncolour = \"blue\"\n");
    auto r = run({"--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(marks(r.out), std::vector<std::string>{"FAIL config"}) << r.out;
    EXPECT_NE(r.out.find(file + ": upstream.colour: "), std::string::npos) << r.out;
}

TEST_F(test_upstream, a_directory_upstream_has_nothing_to_test) {
    const std::string file =
        write("relay.toml", "[server]\nsubmission = []\n[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n");
    auto r = run({"--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(marks(r.out), std::vector<std::string>{"FAIL config"}) << r.out;
    EXPECT_NE(r.out.find("no upstream to test"), std::string::npos) << r.out;
}

TEST_F(test_upstream, an_unknown_profile_is_named) {
    write("secret", "s3cret-value\n");
    const std::string file = write("relay.toml",
                                   "[server]\nsubmission = []\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
                                   "[oauth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n"
                                   "client_secret_file = \"secret\"\n");
    auto r = run({"--config", file, "--profile", "nosuch"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(marks(r.out), std::vector<std::string>{"FAIL config"}) << r.out;
    EXPECT_NE(r.out.find("no OAuth profile named 'nosuch'"), std::string::npos) << r.out;
}

TEST_F(test_upstream, an_unreadable_secret_fails_the_credentials_step) {
    const std::string file = write("relay.toml",
                                   "[server]\nsubmission = []\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
                                   "[oauth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n"
                                   "client_secret_file = \"missing-secret\"\n");
    auto r = run({"--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(marks(r.out), (std::vector<std::string>{"ok config", "FAIL credentials"})) << r.out;
    EXPECT_NE(r.out.find("oauth.client_secret_file"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("hint"), std::string::npos) << r.out;
}

TEST_F(test_upstream, an_unreachable_token_endpoint_fails_the_token_step_without_a_secret_shown) {
    std::uint16_t closed = 0;
    const int fd = listen_socket(closed);
    ASSERT_GE(fd, 0);
    ::close(fd);  // nothing listens there now
    write("secret", "s3cret-value\n");
    const std::string file = write(
        "relay.toml", "[server]\nsubmission = []\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
                      "[oauth]\ntoken_url = \"https://127.0.0.1:" + std::to_string(closed) +
                          "/contoso.onmicrosoft.com/oauth2/v2.0/token\"\nclient_id = \"app\"\n"
                          "client_secret_file = \"secret\"\nscope = \"https://outlook.office365.com/.default\"\n"
                          "timeout_seconds = 5\n");
    auto r = run({"--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(marks(r.out), (std::vector<std::string>{"ok config", "ok credentials", "FAIL token"})) << r.out;
    EXPECT_EQ((r.out + r.err).find("s3cret-value"), std::string::npos);
}

TEST_F(test_upstream, a_connector_without_tls_and_auth_passes_and_gets_no_mail) {
    plain_upstream upstream;
    ASSERT_TRUE(upstream.listening());
    auto r = run({"--config", connector_config(upstream.port())});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(marks(r.out), (std::vector<std::string>{"ok config", "ok credentials", "skip token", "ok connect",
                                                       "skip tls", "ok ehlo", "skip auth", "ok quit"}))
        << r.out;
    EXPECT_NE(r.out.find("SIZE 8BITMIME"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("stopped before MAIL: no message was sent"), std::string::npos) << r.out;
    const auto commands = upstream.commands();
    ASSERT_EQ(commands.size(), 2u);
    EXPECT_EQ(commands[0].rfind("EHLO ", 0), 0u);
    EXPECT_EQ(commands[1], "QUIT");
}

TEST_F(test_upstream, nothing_listening_fails_the_connect_step) {
    std::uint16_t closed = 0;
    const int fd = listen_socket(closed);
    ASSERT_GE(fd, 0);
    ::close(fd);
    auto r = run({"--config", connector_config(closed)});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(marks(r.out), (std::vector<std::string>{"ok config", "ok credentials", "skip token", "FAIL connect"}))
        << r.out;
    EXPECT_NE(r.out.find("port " + std::to_string(closed)), std::string::npos) << r.out;
}

}  // namespace
