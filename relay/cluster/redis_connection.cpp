#include "relay/cluster/redis_connection.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace subrelay::cluster {

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(d.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((d.count() % 1000) * 1000);
    return tv;
}

reply copy_reply(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_INTEGER:
        out.type = reply::kind::integer;
        out.integer = r.integer;
        break;
    case REDIS_REPLY_STRING:
        out.type = reply::kind::string;
        out.text.assign(r.str, r.len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = reply::kind::status;
        out.text.assign(r.str, r.len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = reply::kind::error;
        out.text.assign(r.str, r.len);
        break;
    case REDIS_REPLY_ARRAY:
        out.type = reply::kind::array;
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy_reply(*r.element[i]));
        break;
    default:
        out.type = reply::kind::nil;
        break;
    }
    return out;
}

struct reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};

}  // namespace

std::string reason_of_error(std::string text, std::string_view secret) {
    if (!secret.empty()) {
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
            text.replace(at, secret.size(), "***");
        }
    }
    while (!text.empty() && (text.back() == '.' || text.back() == ' ')) text.pop_back();
    return text;
}

std::unique_ptr<redis_connection> redis_connection::open(const conf::redis_endpoint& endpoint,
                                                         std::chrono::milliseconds timeout, std::string& why) {
    const timeval tv = to_timeval(timeout);
    redisContext* c = endpoint.is_unix()
                          ? redisConnectUnixWithTimeout(endpoint.socket.c_str(), tv)
                          : redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv);
    const int saved_errno = errno;
    if (c == nullptr) {
        why = "out of memory";
        return nullptr;
    }
    std::unique_ptr<redis_connection> conn(new redis_connection(c, timeout));
    if (c->err != 0) {
        why = conn->context_error(saved_errno);
        return nullptr;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        why = conn->context_error(errno);
        return nullptr;
    }
    auto check = [&](const std::vector<std::string>& argv, std::string_view what) {
        auto r = conn->command(argv, why);
        if (!r) return false;
        if (r->is_error()) {
            // Redis's errors for AUTH never repeat the password; scrubbed
            // all the same, since this reason is logged.
            why = std::string(what) + ": " + reason_of_error(r->text, endpoint.password);
            return false;
        }
        return true;
    };
    if (!endpoint.password.empty() && !check({"AUTH", endpoint.password}, "AUTH")) return nullptr;
    if (endpoint.database != 0 && !check({"SELECT", std::to_string(endpoint.database)}, "SELECT")) return nullptr;
    return conn;
}

redis_connection::~redis_connection() { redisFree(context_); }

std::string redis_connection::context_error(int saved_errno) const {
    if (context_->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
        return "no answer within " + std::to_string(timeout_.count()) + " ms";
    }
    if (context_->err == REDIS_ERR_EOF) return "the connection was closed";
    std::string text = context_->errstr;
    if (text.empty()) text = "error " + std::to_string(context_->err);
    // "Connection refused" reads better as "connection refused" inside a sentence.
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z' && (text.size() < 2 || text[1] < 'A' || text[1] > 'Z')) {
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    }
    return text;
}

std::optional<reply> redis_connection::command(const std::vector<std::string>& argv, std::string& why) {
    if (broken_) {
        why = "the connection was lost";
        return std::nullopt;
    }
    std::vector<const char*> args;
    std::vector<std::size_t> lengths;
    args.reserve(argv.size());
    lengths.reserve(argv.size());
    for (const auto& a : argv) {
        args.push_back(a.data());
        lengths.push_back(a.size());
    }
    errno = 0;
    std::unique_ptr<redisReply, reply_deleter> r(static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), args.data(), lengths.data())));
    const int saved_errno = errno;
    if (r == nullptr) {
        broken_ = true;
        why = context_error(saved_errno);
        return std::nullopt;
    }
    return copy_reply(*r);
}

}  // namespace subrelay::cluster
