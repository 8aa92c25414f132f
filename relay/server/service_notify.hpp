#pragma once
// What the relay tells its service manager (systemd's Type=notify, through
// sd_notify): ready once every listener is bound and the spool is open, a
// status line with the queue, reloading and stopping. Without NOTIFY_SOCKET
// (not started by systemd) each call does nothing.
#include <cstddef>
#include <string>

namespace subrelay::relay {

void notify_ready(const std::string& status);
void notify_status(const std::string& status);
void notify_reloading();
void notify_stopping();

// "12 message(s) queued"
std::string queue_status(std::size_t queued);

}  // namespace subrelay::relay
