#pragma once
// The files whose content is a secret: the policy file (password hashes),
// the TLS private keys, and the OAuth keys and tokens. `check-config` and
// start-up warn about each one other users may read or write. Group access
// is left to the operator (Debian's ssl-cert group holds keys at 0640).
// OAuth client secret files are checked where they are read.
#include <vector>

#include "conf/config.hpp"

namespace subrelay::relay {

// One warning per exposed file: key "tls.key_file", message "FILE can be
// read by other users (mode 0644): chmod o-rwx FILE". Files that do not
// exist are not this check's concern (the configuration check reports them).
std::vector<conf::warning> exposed_secret_files(const conf::config& cfg);

}  // namespace subrelay::relay
