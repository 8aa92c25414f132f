#include "relay/delivery/refresh_token_file.hpp"

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "auth/token_provider.hpp"
#include "relay/spool/durable_file.hpp"

namespace subrelay::relay {

namespace {

class file_store final : public auth::refresh_token_store {
public:
    file_store(std::filesystem::path file, std::string key) : file_(std::move(file)), key_(std::move(key)) {}

    [[nodiscard]] std::optional<std::string> load() const override {
        std::error_code ec;
        if (!std::filesystem::exists(file_, ec)) return std::nullopt;  // not signed in yet
        return auth::read_secret_file(file_, key_);
    }

    void save(const std::string& refresh_token) override {
        try {
            write_file_atomically(file_, file_.string() + ".tmp", {refresh_token, "\n"}, 0600);
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(key_ + ": cannot store the new refresh token: " + e.what());
        }
    }

private:
    std::filesystem::path file_;
    std::string key_;
};

}  // namespace

std::shared_ptr<auth::refresh_token_store> refresh_token_file(std::filesystem::path file, std::string key) {
    return std::make_shared<file_store>(std::move(file), std::move(key));
}

}  // namespace subrelay::relay
