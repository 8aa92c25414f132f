// `subrelay hash-password`: a password from standard input, its crypt(3) hash
// on standard output (for an account's password_hash in the policy file).
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <map>

#include "auth/password.hpp"
#include "relay/cli/verb.hpp"

namespace subrelay::relay {

namespace {

// Turns terminal echo off for its lifetime when standard input is a terminal.
class echo_off {
public:
    explicit echo_off(bool on_stdin) {
        if (on_stdin && ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    ~echo_off() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
    }
    echo_off(const echo_off&) = delete;
    echo_off& operator=(const echo_off&) = delete;
    [[nodiscard]] bool active() const { return active_; }

private:
    termios saved_{};
    bool active_ = false;
};

}  // namespace

int run_hash_password(invocation& v) {
    static const std::map<std::string, std::string> schemes = {
        {"yescrypt", "$y$"}, {"bcrypt", "$2b$"}, {"sha512-crypt", "$6$"}};
    const std::string scheme = v.opts.has("scheme") ? v.opts.value("scheme") : "yescrypt";
    auto it = schemes.find(scheme);
    if (it == schemes.end()) {
        v.fail() << "--scheme: expected yescrypt, bcrypt or sha512-crypt\n";
        return 2;
    }
    std::string password;
    bool got;
    {
        // At a terminal, ask without echoing the password.
        echo_off quiet(&v.in == &std::cin);
        if (quiet.active()) v.err << "Password: " << std::flush;
        got = static_cast<bool>(std::getline(v.in, password));
        if (quiet.active()) v.err << '\n';
    }
    if (!got) {
        v.fail() << "no password on standard input\n";
        return 1;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
        v.fail() << "the password is empty\n";
        return 1;
    }
    try {
        v.out << auth::hash_password(password, it->second) << '\n';
    } catch (const std::exception& e) {
        v.fail() << e.what() << '\n';
        return 1;
    }
    return 0;
}

}  // namespace subrelay::relay
