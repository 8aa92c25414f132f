#include "relay/server/service_notify.hpp"

#include <systemd/sd-daemon.h>

namespace subrelay::relay {

namespace {
void send(const std::string& state) { (void)sd_notify(0, state.c_str()); }
}  // namespace

void notify_ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }
void notify_status(const std::string& status) { send("STATUS=" + status); }
void notify_reloading() { send("RELOADING=1\nSTATUS=reloading the policy and the TLS certificates"); }
void notify_stopping() { send("STOPPING=1\nSTATUS=stopping"); }

std::string queue_status(std::size_t queued) { return std::to_string(queued) + " message(s) queued"; }

}  // namespace subrelay::relay
