#include "relay/cli/spool_owner.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

#include "relay/server/privileges.hpp"

namespace subrelay::relay {

std::string act_as_spool_owner(const std::filesystem::path& spool) {
    if (::geteuid() != 0) return {};
    struct stat st {};
    if (::stat(spool.c_str(), &st) != 0 || st.st_uid == 0) return {};
    const passwd* owner = ::getpwuid(st.st_uid);
    if (owner == nullptr) {
        return "spool " + spool.string() + " belongs to uid " + std::to_string(st.st_uid) +
               ", which is no user on this system: chown it to the relay's user";
    }
    try {
        switch_to(find_user(owner->pw_name));
    } catch (const std::exception& e) {
        return std::string("cannot act as the spool's owner ") + owner->pw_name + ": " + e.what();
    }
    return {};
}

}  // namespace subrelay::relay
