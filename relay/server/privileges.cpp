#include "relay/server/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace subrelay::relay {

run_as find_user(const std::string& name) {
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    const int rc = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc != 0) throw std::runtime_error("server.user: cannot look up \"" + name + "\": " + std::strerror(rc));
    if (found == nullptr) throw std::runtime_error("server.user: no user \"" + name + "\" on this system");
    if (found->pw_uid == 0) throw std::runtime_error("server.user: \"" + name + "\" is root: name an unprivileged user");
    return {name, found->pw_uid, found->pw_gid};
}

std::string spool_ownership_problem(const std::filesystem::path& spool, const run_as& user) {
    struct stat st {};
    if (::stat(spool.c_str(), &st) != 0) return {};  // made by the user, after the switch
    if (st.st_uid == user.uid) return {};
    return "spool " + spool.string() + " belongs to uid " + std::to_string(st.st_uid) + ", not to server.user \"" +
           user.name + "\" (uid " + std::to_string(user.uid) + "): chown -R " + user.name + ": " + spool.string();
}

void switch_to(const run_as& user) {
    if (::geteuid() == user.uid && ::getuid() == user.uid) return;
    if (::geteuid() != 0)
        throw std::runtime_error("server.user = \"" + user.name + "\": the relay runs as uid " +
                                 std::to_string(::geteuid()) + ", and only root can switch to another user");
    auto fail = [&](const char* call) {
        throw std::runtime_error("server.user = \"" + user.name + "\": " + call + " failed: " + std::strerror(errno));
    };
    if (::initgroups(user.name.c_str(), user.gid) != 0) fail("initgroups");
    if (::setgid(user.gid) != 0) fail("setgid");
    if (::setuid(user.uid) != 0) fail("setuid");
    // For good: there is no way back.
    if (::setuid(0) == 0 || ::geteuid() == 0) throw std::runtime_error("server.user: root could be regained");
}

}  // namespace subrelay::relay
