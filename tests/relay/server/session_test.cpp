// One client session of the real relay code (relay/server/session.cpp) in this
// process: a loopback connection, a spool in a temporary directory, and a
// client that writes raw SMTP. Clients come from 127.0.0.1, bound to one
// account by a [[binding]], so no TLS or AUTH is needed.
#include "relay/server/session.hpp"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>

#include "auth/openssl_ptr.hpp"
#include "auth/password.hpp"
#include "policy/limits.hpp"
#include "policy/policy.hpp"
#include "relay/server/context.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/server/device_tls.hpp"
#include "relay/spool/spool.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace subrelay::relay {
namespace {

// A self-signed ECDSA certificate (the relay will not start without one;
// these sessions never use it).
void write_certificate(const fs::path& cert_file, const fs::path& key_file) {
    auth::pkey_ptr key(EVP_EC_gen("P-256"));
    auth::x509_ptr cert(X509_new());
    ASSERT_TRUE(key && cert);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("relay.test"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
    auth::bio_ptr cert_bio(BIO_new_file(cert_file.c_str(), "w"));
    auth::bio_ptr key_bio(BIO_new_file(key_file.c_str(), "w"));
    ASSERT_TRUE(cert_bio && key_bio);
    PEM_write_bio_X509(cert_bio.get(), cert.get());
    PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
}

constexpr const char* policy_text = R"(
[organization]
smtp_client_authentication_disabled = false

[[mailbox]]
identity = "scanner@contoso.com"
allowed_senders = ["scanner@contoso.com"]

[[binding]]
network = "127.0.0.1/32"
identity = "scanner@contoso.com"
)";

// The client's end: a blocking socket whose reads give up after 60 s.
class client {
public:
    explicit client(int fd) : fd_(fd) {
        timeval tv{60, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~client() { close(); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void send(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            ASSERT_GT(n, 0) << "send: " << std::strerror(errno);
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    // The last line of one reply ("" when the connection ended or timed out).
    std::string reply() {
        for (;;) {
            const auto end = buffer_.find("\r\n");
            if (end != std::string::npos) {
                std::string line = buffer_.substr(0, end);
                buffer_.erase(0, end + 2);
                if (line.size() < 4 || line[3] != '-') return line;
                continue;
            }
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return "";
            buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
    std::string buffer_;
};

class session_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test_support::make_temp_dir("subrelay-session");
        write_certificate(dir_ / "cert.pem", dir_ / "key.pem");
        cfg_.server.hostname = "relay.test";
        cfg_.server.idle_timeout_seconds = 60;
        cfg_.server.max_message_size = 4 << 20;
        cfg_.tls.certificates = {{dir_ / "cert.pem", dir_ / "key.pem"}};
        cfg_.spool.dir = dir_ / "spool";
        cfg_.spool.min_free_bytes = 0;
        cfg_.upstream.kind = conf::upstream_kind::directory;
        cfg_.upstream.directory = dir_ / "out";
        cfg_.upstream.mailbox = "relay@contoso.com";
        auto loaded = policy::load_text(policy_text, dir_ / "policy.toml");
        ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().to_string();
        policy_ = std::make_shared<const policy::engine>(std::move(loaded.policy));
    }

    // Made after the test has set cfg_ up, then served by a thread of its own.
    void start() {
        spool_.emplace(cfg_.spool.dir);
        spool_->open();
        tls_.emplace(cfg_);
        // Never started: what is enqueued waits (these tests look at the spool).
        delivery_.emplace(delivery_io_, pool_, cfg_, *spool_, nullptr);
        ctx_.reset(new relay_context{cfg_, io_, pool_, *tls_, *spool_, *delivery_, sessions_, limits_, policy_, {}});
        acceptor_.emplace(io_, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        // Each test's client is gone by now: its session ends.
        if (ended_.valid()) {
            EXPECT_TRUE(session_ended()) << "a session outlived its test";
        }
        work_.reset();
        if (thread_.joinable()) {
            // Every session has ended by now (each test waits for its end).
            io_.stop();
            thread_.join();
        }
        pool_.join();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    // Connects a client and starts a session for it. `rcvbuf` sets the
    // client's receive buffer; `server_fd`, when given, gets a second
    // descriptor of the session's socket.
    std::unique_ptr<client> connect(int rcvbuf = 0, int* server_fd = nullptr) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(acceptor_->local_endpoint().port());
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
        asio::ip::tcp::socket socket = acceptor_->accept();
        if (server_fd != nullptr) {
            const int small = 4096;
            ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
            *server_fd = ::dup(socket.native_handle());
        }
        const std::string address = "127.0.0.1:" + std::to_string(acceptor_->local_endpoint().port());
        auto ended = std::make_shared<std::promise<void>>();
        ended_ = ended->get_future();
        asio::co_spawn(io_, run_session(*ctx_, std::move(socket), listener_kind{false, "submission " + address, address}),
                       [ended](const std::exception_ptr&) { ended->set_value(); });
        return std::make_unique<client>(fd);
    }

    // The policy in force from now on, as a reload would swap it in.
    void replace_policy(const std::string& text) {
        auto loaded = policy::load_text(text, dir_ / "policy.toml");
        ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().to_string();
        auto engine = std::make_shared<const policy::engine>(std::move(loaded.policy));
        if (ctx_) {
            ctx_->set_policy(std::move(engine));
        } else {
            policy_ = std::move(engine);
        }
    }

    // Waits for the session to end; false if it has not within `limit`.
    bool session_ended(std::chrono::seconds limit = 60s) {
        return ended_.wait_for(limit) == std::future_status::ready;
    }

    std::vector<fs::path> files_in(const std::string& sub) const {
        std::vector<fs::path> out;
        for (const auto& entry : fs::directory_iterator(cfg_.spool.dir / sub))
            if (!entry.path().filename().string().starts_with(".")) out.push_back(entry.path());
        return out;
    }

    // Polls until the spool's tmp/ holds a file of at least `bytes`.
    bool tmp_file_reaches(std::uintmax_t bytes, std::chrono::seconds limit = 30s) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < until) {
            for (const auto& f : files_in("tmp")) {
                std::error_code ec;
                if (fs::file_size(f, ec) >= bytes && !ec) return true;
            }
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    // Up to the 354 of one transaction.
    static void begin_data(client& c) {
        ASSERT_EQ(c.reply().substr(0, 4), "220 ");
        c.send("EHLO scanner.test\r\n");
        ASSERT_EQ(c.reply().substr(0, 4), "250 ");
        c.send("MAIL FROM:<scanner@contoso.com>\r\n");
        ASSERT_EQ(c.reply().substr(0, 4), "250 ");
        c.send("RCPT TO:<alice@example.org>\r\n");
        ASSERT_EQ(c.reply().substr(0, 4), "250 ");
        c.send("DATA\r\n");
        ASSERT_EQ(c.reply().substr(0, 4), "354 ");
    }

    // n bytes of message in 78-character lines, some of them dot-stuffed on the wire.
    static std::pair<std::string, std::string> message_of(std::size_t n) {
        std::string message = "Subject: large\r\n\r\n";
        std::string wire = message;
        for (int i = 0; message.size() < n; ++i) {
            std::string line = (i % 100 == 0 ? "." : "") + std::string(76, static_cast<char>('a' + i % 26)) + "\r\n";
            message += line;
            wire += (line.starts_with(".") ? "." : "") + line;
        }
        return {message, wire};
    }

    fs::path dir_;
    conf::config cfg_;
    std::shared_ptr<const policy::engine> policy_;
    asio::io_context delivery_io_{1};
    asio::thread_pool pool_{2};
    std::optional<spool> spool_;
    std::optional<server_tls> tls_;
    std::optional<delivery> delivery_;
    session_registry sessions_;
    policy::limiter limits_;
    std::unique_ptr<relay_context> ctx_;  // holds a mutex: made in place
    // After what the sessions use: destroyed before it.
    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
    std::optional<asio::ip::tcp::acceptor> acceptor_;
    std::thread thread_;
    std::future<void> ended_;
};

TEST_F(session_test, a_message_is_written_to_the_spool_as_it_arrives) {
    start();
    auto c = connect();
    begin_data(*c);
    const auto [message, wire] = message_of(2 << 20);
    c->send(wire);
    // Before the end of the message, most of it is on disk already.
    EXPECT_TRUE(tmp_file_reaches(1 << 20)) << "the message should be in spool/tmp before its end";
    EXPECT_TRUE(files_in("queue").empty());
    c->send(".\r\n");
    const std::string reply = c->reply();
    ASSERT_EQ(reply.substr(0, 24), "250 2.0.0 Ok: queued as ") << reply;
    const std::string id = reply.substr(24);
    const auto loaded = spool_->load(id);
    const std::string received_start = "Received: from scanner.test";
    ASSERT_EQ(loaded.data.substr(0, received_start.size()), received_start);
    EXPECT_NE(loaded.data.find(" id " + id), std::string::npos) << "the Received: header names the queue id";
    EXPECT_EQ(loaded.data.substr(loaded.data.size() - message.size()), message);
    EXPECT_EQ(loaded.envelope.recipients, std::vector<std::string>{"alice@example.org"});
    EXPECT_EQ(loaded.envelope.sender, "scanner@contoso.com");
    EXPECT_TRUE(files_in("tmp").empty());
    c->send("QUIT\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "221 ");
    EXPECT_TRUE(session_ended());
}

TEST_F(session_test, a_session_that_ends_in_the_middle_of_data_leaves_nothing) {
    start();
    auto c = connect();
    begin_data(*c);
    c->send(message_of(1 << 20).second);
    ASSERT_TRUE(tmp_file_reaches(512 << 10));
    c->close();
    ASSERT_TRUE(session_ended());
    EXPECT_TRUE(files_in("tmp").empty());
    EXPECT_TRUE(files_in("queue").empty());
}

TEST_F(session_test, a_message_over_the_limit_leaves_nothing_and_the_session_goes_on) {
    cfg_.server.max_message_size = 512 << 10;
    start();
    auto c = connect();
    begin_data(*c);
    c->send(message_of(2 << 20).second);
    c->send(".\r\n");
    EXPECT_EQ(c->reply(), "552 5.3.4 Message size exceeds fixed maximum message size");
    EXPECT_TRUE(files_in("tmp").empty());
    EXPECT_TRUE(files_in("queue").empty());
    c->send("MAIL FROM:<scanner@contoso.com>\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "250 ");
}

// A write that fails half-way through the message (the file size limit
// here, as a full disk would) gives a 4xx, never a 250, and leaves nothing.
TEST_F(session_test, a_failed_write_gives_a_4xx_and_leaves_nothing) {
    start();
    auto c = connect();
    begin_data(*c);
    struct rlimit old_limit {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_limit;
    small.rlim_cur = 256 << 10;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    c->send(message_of(1 << 20).second);
    c->send(".\r\n");
    const std::string reply = c->reply();
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_EQ(reply, "451 4.3.0 Temporary failure, message not queued, try again later");
    EXPECT_TRUE(files_in("tmp").empty());
    EXPECT_TRUE(files_in("queue").empty());
    // The session goes on, and the next message is queued.
    c->send("MAIL FROM:<scanner@contoso.com>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "250 ");
    EXPECT_EQ(c->reply().substr(0, 4), "250 ");
    EXPECT_EQ(c->reply().substr(0, 4), "354 ");
    c->send("Subject: small\r\n\r\nbody\r\n.\r\n");
    EXPECT_EQ(c->reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
    EXPECT_EQ(files_in("queue").size(), 1u);
}

// Fills the send buffer of a socket (through its own descriptor) and keeps
// it full until stopped, so that nothing the session writes gets through:
// what the client's kernel still takes in is topped up at once.
class send_buffer_filler {
public:
    explicit send_buffer_filler(int fd) : fd_(fd), thread_([this] { run(); }) {}
    ~send_buffer_filler() {
        stop_ = true;
        thread_.join();
    }
    send_buffer_filler(const send_buffer_filler&) = delete;
    send_buffer_filler& operator=(const send_buffer_filler&) = delete;

private:
    void run() {
        const std::string block(4096, 'x');
        while (!stop_) {
            // Blocks while they fit, then single bytes: a socket that takes
            // no single byte has no room for a reply either.
            for (const std::size_t size : {block.size(), std::size_t{1}}) {
                while (::send(fd_, block.data(), size, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
                }
            }
            std::this_thread::sleep_for(10ms);
        }
    }
    int fd_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// After an idle timeout the session says 421 and closes. A client that no
// longer reads cannot take that 421: the session gives it goodbye_timeout,
// not a second idle timeout.
TEST_F(session_test, the_goodbye_after_an_idle_timeout_is_bounded_by_its_own_short_deadline) {
    cfg_.server.idle_timeout_seconds = 12;
    start();
    int server_fd = -1;
    auto c = connect(4096, &server_fd);
    ASSERT_GE(server_fd, 0);
    ASSERT_EQ(c->reply().substr(0, 4), "220 ");
    const auto greeted = std::chrono::steady_clock::now();
    std::optional<send_buffer_filler> filler(std::in_place, server_fd);
    const auto idle = std::chrono::seconds(cfg_.server.idle_timeout_seconds);
    const bool ended = session_ended(idle + goodbye_timeout + 30s);
    const auto took = std::chrono::steady_clock::now() - greeted;
    filler.reset();
    ::close(server_fd);
    ASSERT_TRUE(ended) << "the session never ended";
    // The old code waited another idle timeout for the 421 (ending after
    // 24 s); the bound leaves a few seconds either way.
    EXPECT_GE(took, idle - 1s);
    EXPECT_LT(took, idle + goodbye_timeout + 3s)
        << "the session ended after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
        << " ms";
    // The 421 never got through (else this test would not test the goodbye's deadline).
    std::string received;
    char buf[65536];
    for (ssize_t n; (n = ::recv(c->fd(), buf, sizeof buf, MSG_DONTWAIT)) > 0;) received.append(buf, static_cast<std::size_t>(n));
    EXPECT_EQ(received.find("421"), std::string::npos);
}

// ---------------------------------------------------------------- revocation reaches open sessions

constexpr const char* revoke_base = R"(
[organization]
smtp_client_authentication_disabled = false

[[mailbox]]
identity = "scanner@contoso.com"
password_hash = "HASH"
smtp_client_authentication_disabled = SCANNER
)";

std::string revoke_policy(const std::string& hash, const std::string& scanner, const std::string& binding) {
    std::string text = revoke_base;
    text.replace(text.find("HASH"), 4, hash);
    text.replace(text.find("SCANNER"), 7, scanner);
    return text + binding;
}

const std::string bound_here = "\n[[binding]]\nnetwork = \"127.0.0.1/32\"\nidentity = \"scanner@contoso.com\"\n";

constexpr std::string_view mailbox_disabled_at_mail =
    "550 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. "
    "Visit https://aka.ms/smtp_auth_disabled for more information.";

// A transaction up to RCPT and back: the account may still send.
void mail_then_rset(client& c) {
    c.send("MAIL FROM:<scanner@contoso.com>\r\n");
    ASSERT_EQ(c.reply().substr(0, 4), "250 ");
    c.send("RSET\r\n");
    ASSERT_EQ(c.reply().substr(0, 4), "250 ");
}

// An account that authenticated, then was set to $true: its next MAIL in the
// same session is refused with the Mailbox text (before, it sent on until the
// session ended).
TEST_F(session_test, an_account_disabled_after_its_auth_is_refused_at_the_next_mail) {
    cfg_.server.require_tls_for_auth = false;
    const std::string hash = auth::hash_password("Device-Passw0rd!", "$6$");
    replace_policy(revoke_policy(hash, "false", ""));
    start();
    auto c = connect();
    ASSERT_EQ(c->reply().substr(0, 4), "220 ");
    c->send("EHLO scanner.test\r\n");
    ASSERT_EQ(c->reply().substr(0, 4), "250 ");
    // base64("\0scanner@contoso.com\0Device-Passw0rd!")
    const std::string encoded = "AHNjYW5uZXJAY29udG9zby5jb20ARGV2aWNlLVBhc3N3MHJkIQ==";
    c->send("AUTH PLAIN " + encoded + "\r\n");
    ASSERT_EQ(c->reply().substr(0, 4), "235 ");
    mail_then_rset(*c);
    replace_policy(revoke_policy(hash, "true", ""));
    c->send("MAIL FROM:<scanner@contoso.com>\r\n");
    EXPECT_EQ(c->reply(), mailbox_disabled_at_mail);
    // Set back: the same session may send again.
    replace_policy(revoke_policy(hash, "false", ""));
    mail_then_rset(*c);
    c->send("QUIT\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "221 ");
}

TEST_F(session_test, a_bound_account_disabled_during_the_session_is_refused_at_the_next_mail) {
    replace_policy(revoke_policy("", "false", bound_here));
    start();
    auto c = connect();
    ASSERT_EQ(c->reply().substr(0, 4), "220 ");
    c->send("EHLO scanner.test\r\n");
    ASSERT_EQ(c->reply().substr(0, 4), "250 ");
    mail_then_rset(*c);
    replace_policy(revoke_policy("", "true", bound_here));
    c->send("MAIL FROM:<scanner@contoso.com>\r\n");
    EXPECT_EQ(c->reply(), mailbox_disabled_at_mail);
    c->send("QUIT\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "221 ");
}

// The binding that let the client send without AUTH is removed: the open
// session is now what a new one from that address is, not authenticated.
TEST_F(session_test, a_removed_binding_no_longer_covers_an_open_session) {
    replace_policy(revoke_policy("", "false", bound_here));
    start();
    auto c = connect();
    ASSERT_EQ(c->reply().substr(0, 4), "220 ");
    c->send("EHLO scanner.test\r\n");
    ASSERT_EQ(c->reply().substr(0, 4), "250 ");
    mail_then_rset(*c);
    replace_policy(revoke_policy("", "false", ""));
    c->send("MAIL FROM:<scanner@contoso.com>\r\n");
    EXPECT_EQ(c->reply(), "530 5.7.57 Client not authenticated to send mail.");
    // A binding of that network to another account does not cover it either.
    replace_policy(revoke_policy("", "false", bound_here) +
                   "\n[[mailbox]]\nidentity = \"other@contoso.com\"\n"
                   "\n[[binding]]\nnetwork = \"127.0.0.0/8\"\nidentity = \"other@contoso.com\"\n");
    mail_then_rset(*c);
    replace_policy(revoke_policy("", "false", "") +
                   "\n[[mailbox]]\nidentity = \"other@contoso.com\"\n"
                   "\n[[binding]]\nnetwork = \"127.0.0.0/8\"\nidentity = \"other@contoso.com\"\n");
    c->send("MAIL FROM:<scanner@contoso.com>\r\n");
    EXPECT_EQ(c->reply(), "530 5.7.57 Client not authenticated to send mail.");
    c->send("QUIT\r\n");
    EXPECT_EQ(c->reply().substr(0, 4), "221 ");
}

}  // namespace
}  // namespace subrelay::relay
