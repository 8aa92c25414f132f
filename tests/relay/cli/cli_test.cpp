#include "relay/cli/cli.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "auth/password.hpp"
#include "tests/relay/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

struct result {
    int status;
    std::string out;
    std::string err;
};

result run(std::vector<std::string> args, const std::string& input = "") {
    std::istringstream in(input);
    std::ostringstream out, err;
    int status = subrelay::relay::run_cli(args, in, out, err);
    return {status, out.str(), err.str()};
}

TEST(cli, version_and_help) {
    auto v = run({"--version"});
    EXPECT_EQ(v.status, 0);
    EXPECT_EQ(v.out.rfind("subrelay ", 0), 0u);
    auto h = run({"--help"});
    EXPECT_EQ(h.status, 0);
    EXPECT_NE(h.out.find("check-config"), std::string::npos);
    for (const char* verb : {"serve", "check-config", "hash-password"}) {
        auto r = run({verb, "--help"});
        EXPECT_EQ(r.status, 0) << verb;
        EXPECT_NE(r.out.find(std::string("usage: subrelay ") + verb), std::string::npos) << verb;
    }
}

TEST(cli, unknown_verb_and_option) {
    auto r = run({"frobnicate"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("unknown verb 'frobnicate'"), std::string::npos);
    auto o = run({"check-config", "--colour"});
    EXPECT_EQ(o.status, 2);
    EXPECT_NE(o.err.find("unknown option '--colour'"), std::string::npos);
    auto m = run({"check-config", "--config"});
    EXPECT_EQ(m.status, 2);
    EXPECT_NE(m.err.find("--config needs a value"), std::string::npos);
}

TEST(cli, hash_password_prints_a_yescrypt_hash_that_verifies) {
    auto r = run({"hash-password"}, "correct horse\n");
    ASSERT_EQ(r.status, 0) << r.err;
    std::string hash = r.out.substr(0, r.out.size() - 1);
    EXPECT_EQ(hash.rfind("$y$", 0), 0u);
    EXPECT_TRUE(subrelay::auth::verify_password("correct horse", hash));
    EXPECT_FALSE(subrelay::auth::verify_password("correct horse\n", hash));
}

TEST(cli, hash_password_schemes_and_errors) {
    auto b = run({"hash-password", "--scheme", "bcrypt"}, "pw\n");
    ASSERT_EQ(b.status, 0);
    EXPECT_EQ(b.out.rfind("$2b$", 0), 0u);
    EXPECT_EQ(run({"hash-password"}, "").status, 1);
    EXPECT_EQ(run({"hash-password"}, "\n").status, 1);
    EXPECT_EQ(run({"hash-password", "--scheme=md5"}, "pw\n").status, 2);
}

class check_config : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = subrelay::test_support::make_temp_dir("subrelay-cli");
    }
    void TearDown() override { fs::remove_all(dir_); }
    // Written readable by the owner only, as an operator keeps them (a policy
    // file or key that others may read gets a warning from check-config).
    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name) << text;
        std::filesystem::permissions(dir_ / name, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    // A self-signed RSA certificate and its key, in dir_.
    void make_certificate(const std::string& cn, const std::string& cert, const std::string& key) {
        const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + cn +
                                    " -keyout " + (dir_ / key).string() + " -out " + (dir_ / cert).string() +
                                    " 2>/dev/null";
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
    }
    fs::path dir_;
};

TEST_F(check_config, reports_each_problem_as_file_key_message) {
    write("bad.toml", "[server]\nsubmission = [\"127.0.0.1:99999\"]\ncolour = \"blue\"\n[upstream]\nkind = \"smtp\"\n");
    const std::string file = (dir_ / "bad.toml").string();
    auto r = run({"check-config", "--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(file + ": server.colour: unknown key"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(file + ": server.submission[0]: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(file + ": upstream.mailbox: "), std::string::npos) << r.err;
    // One line per problem, each starting with the file name.
    std::istringstream lines(r.err);
    for (std::string line; std::getline(lines, line);) EXPECT_EQ(line.rfind(file + ": ", 0), 0u) << line;
}

TEST_F(check_config, reports_policy_problems_with_the_policy_file) {
    make_certificate("localhost", "cert.pem", "key.pem");
    write("relay.toml",
          "[server]\nsubmission = [\"127.0.0.1:0\"]\n[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n"
          "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n");
    write("policy.toml", "[[mailbox]]\nidentity = \"not an address\"\npassword_hash = \"$y$j9T$abc$def\"\n");
    auto r = run({"check-config", "--config", (dir_ / "relay.toml").string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find((dir_ / "policy.toml").string() + ": mailbox[0].identity: "), std::string::npos) << r.err;

    write("policy.toml", "[[mailbox]]\nidentity = \"a@contoso.com\"\npassword_hash = \"$y$j9T$abc$def\"\n");
    auto ok = run({"check-config", "--config", (dir_ / "relay.toml").string()});
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "ok\n");
}

TEST_F(check_config, a_device_profile_cipher_list_openssl_refuses) {
    make_certificate("localhost", "cert.pem", "key.pem");
    write("relay.toml",
          "[server]\nsubmission = [\"127.0.0.1:0\"]\n[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n"
          "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n"
          "[[device_network]]\nnetworks = [\"10.0.0.0/8\"]\n"
          "[[device_network]]\nnetworks = [\"192.0.2.0/24\"]\ntls_ciphers = \"NO-SUCH-CIPHER\"\n");
    write("policy.toml", "[organization]\nsmtp_client_authentication_disabled = true\n");
    const std::string file = (dir_ / "relay.toml").string();
    auto r = run({"check-config", "--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err.rfind(file + ": device_network[1].tls_ciphers: no usable cipher in \"NO-SUCH-CIPHER\"", 0), 0u)
        << r.err;
}

TEST_F(check_config, a_missing_certificate_is_a_problem) {
    write("relay.toml",
          "[server]\nsubmission = [\"127.0.0.1:0\"]\n[tls]\ncert_file = \"nope.pem\"\nkey_file = \"nope.key\"\n"
          "[upstream]\nkind = \"directory\"\ndirectory = \"out\"\n");
    write("policy.toml", "[organization]\nsmtp_client_authentication_disabled = true\n");
    auto r = run({"check-config", "--config", (dir_ / "relay.toml").string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find((dir_ / "relay.toml").string() + ": tls.cert_file: " + (dir_ / "nope.pem").string() +
                         ": cannot load certificate"),
              std::string::npos)
        << r.err;
}

TEST_F(check_config, oauth_credentials_are_read_and_each_profile_named) {
    write("relay.toml",
          "[server]\nsubmission = []\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
          "[oauth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n"
          "certificate_file = \"app.crt\"\nprivate_key_file = \"app.key\"\n");
    write("policy.toml", "[organization]\nsmtp_client_authentication_disabled = true\n");
    const std::string file = (dir_ / "relay.toml").string();
    auto r = run({"check-config", "--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(file + ": oauth.private_key_file: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("app.key"), std::string::npos) << r.err;

    make_certificate("app", "app.crt", "app.key");
    write("relay.toml",
          "[server]\nsubmission = []\n[upstream]\nmailbox = \"relay@contoso.com\"\n"
          "[oauth]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n"
          "certificate_file = \"app.crt\"\nprivate_key_file = \"app.key\"\n"
          "[oauth.profiles.gmail]\nprovider = \"google\"\nservice_account_file = \"sa.json\"\n"
          "mailboxes = [\"reports@example.com\"]\n");
    r = run({"check-config", "--config", file});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(file + ": oauth.profiles.gmail.service_account_file: cannot read "), std::string::npos)
        << r.err;
}

}  // namespace
