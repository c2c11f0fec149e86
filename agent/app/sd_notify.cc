#include "agent/app/sd_notify.h"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "agent/log/log.h"

namespace kernelet::agent {

std::optional<std::chrono::microseconds> watchdogInterval(const char* usec, const char* pid,
                                                          pid_t self) {
  if (usec == nullptr || *usec == '\0') {
    return std::nullopt;
  }
  if (pid != nullptr && *pid != '\0') {
    char* end = nullptr;
    errno = 0;
    long long p = std::strtoll(pid, &end, 10);
    if (errno != 0 || *end != '\0' || p != self) {
      return std::nullopt;  // the watchdog is another process's (or unreadable)
    }
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long us = std::strtoull(usec, &end, 10);
  if (errno != 0 || *end != '\0' || us == 0 || *usec == '-') {
    return std::nullopt;
  }
  return std::chrono::microseconds(us);
}

ServiceEnvironment takeServiceEnvironment() {
  ServiceEnvironment env;
  if (const char* s = ::getenv("NOTIFY_SOCKET"); s != nullptr) {
    env.notify_socket = s;
  }
  env.watchdog = watchdogInterval(::getenv("WATCHDOG_USEC"), ::getenv("WATCHDOG_PID"), ::getpid());
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  return env;
}

Result<SdNotifier> SdNotifier::open(const std::string& socket) {
  SdNotifier n;
  if (socket.empty()) {
    return n;
  }
  n.shown_ = socket;
  // Only the two forms systemd hands to services; "vsock:" is for VMs.
  if (socket[0] != '/' && socket[0] != '@') {
    return makeError("sd_notify", socket, "NOTIFY_SOCKET is neither a path nor @abstract");
  }
  if (socket.size() >= sizeof(n.addr_.sun_path)) {
    return makeError("sd_notify", socket, "NOTIFY_SOCKET is too long for a unix socket");
  }
  n.addr_.sun_family = AF_UNIX;
  std::memcpy(n.addr_.sun_path, socket.data(), socket.size());
  if (socket[0] == '@') {
    n.addr_.sun_path[0] = '\0';  // abstract: the name is the bytes after the NUL, no terminator
    n.addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size());
  } else {
    n.addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() + 1);
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return sysError("socket", socket);
  }
  n.fd_.reset(fd);
  return n;
}

Result<void> SdNotifier::send(const std::string& message) const {
  if (!enabled()) {
    return {};
  }
  // The kernel attaches our credentials (systemd sets SO_PASSCRED), by which
  // NotifyAccess=main knows the message is the main process's.
  ssize_t n = ::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  if (n < 0) {
    return sysError("sd_notify sendto", shown_);
  }
  if (static_cast<size_t>(n) != message.size()) {
    return makeError("sd_notify sendto", shown_, "datagram truncated");
  }
  return {};
}

ServiceNotifier::ServiceNotifier(SdNotifier notifier,
                                 std::optional<std::chrono::microseconds> watchdog,
                                 TimerQueue& timers)
    : notifier_(std::move(notifier)), watchdog_(watchdog), timers_(timers) {}

ServiceNotifier::~ServiceNotifier() { timers_.cancel(timer_); }

std::optional<std::chrono::microseconds> ServiceNotifier::pingEvery() const {
  if (!watchdog_ || !notifier_.enabled()) {
    return std::nullopt;
  }
  // Half the period, as sd_watchdog_enabled(3) advises: one late turn of the
  // loop does not miss the deadline, a stuck loop misses it within a period.
  return std::max(*watchdog_ / 2, std::chrono::microseconds(1));
}

void ServiceNotifier::start() {
  if (pingEvery() && timer_ == 0) {
    ping();
  }
}

void ServiceNotifier::ping() {
  std::optional<std::chrono::microseconds> every = pingEvery();
  if (!every) {
    return;
  }
  send("WATCHDOG=1", ping_failed_);
  timer_ = timers_.after(*every, [this] { ping(); });
}

void ServiceNotifier::ready(const std::string& status) {
  if (ready_) {
    return;
  }
  ready_ = true;
  send("READY=1\nSTATUS=" + status, other_failed_);
}

void ServiceNotifier::status(const std::string& status) { send("STATUS=" + status, other_failed_); }

void ServiceNotifier::stopping(const std::string& status) {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  send("STOPPING=1\nSTATUS=" + status, other_failed_);
}

void ServiceNotifier::send(const std::string& message, bool& failed_before) {
  if (auto r = notifier_.send(message); !r) {
    if (!failed_before) {
      log::warning("Could not notify the service manager", {{"err", r.error().message()}});
    }
    failed_before = true;
    return;
  }
  failed_before = false;
}

}  // namespace kernelet::agent
