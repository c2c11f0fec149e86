#pragma once
// The agent under a service manager: sd_notify(3)'s protocol without
// libsystemd (the kernelet binary is static; Debian ships libsystemd only as a
// shared library). systemd gives the unit a datagram socket in NOTIFY_SOCKET
// (a path, or "@name" for an abstract one); each message is one datagram of
// "KEY=VALUE" lines. The agent sends
//   READY=1        once the pods are adopted (Type=notify: until then the unit
//                  is "activating" and units ordered after it wait),
//   STATUS=...     what `systemctl status` shows,
//   WATCHDOG=1     every WATCHDOG_USEC/2 from a timer on the agent's loop, so
//                  that a loop that is stuck stops pinging and systemd restarts
//                  the agent (which leaves the pods running),
//   STOPPING=1     when it exits.
// Without NOTIFY_SOCKET every call is a no-op.

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "sys/result.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

// The three variables systemd sets for the service.
struct ServiceEnvironment {
  std::string notify_socket;                          // empty: not under a service manager
  std::optional<std::chrono::microseconds> watchdog;  // WatchdogSec, if it is ours
};

// WATCHDOG_USEC as sd_watchdog_enabled(3) reads it: a positive number of
// microseconds, for this process only if WATCHDOG_PID is unset or names
// `self`. Null, malformed or zero values: no watchdog.
std::optional<std::chrono::microseconds> watchdogInterval(const char* usec, const char* pid,
                                                          pid_t self);

// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from the
// environment, as sd_notify(unset_environment=1) does, so that no child (the
// holder, a hook, a helper) talks to the manager in the agent's name. Call it
// before any thread starts (setenv/unsetenv are not thread-safe).
ServiceEnvironment takeServiceEnvironment();

// The socket, and one datagram per message.
class SdNotifier {
 public:
  // `socket` is NOTIFY_SOCKET's value; empty gives a notifier that sends nothing.
  static Result<SdNotifier> open(const std::string& socket);
  bool enabled() const { return fd_.get() >= 0; }
  // One datagram, e.g. "READY=1\nSTATUS=Running 3 pods". Unconnected (sendto
  // each time), as sd_notify: a manager that re-executed itself and bound the
  // path anew still gets the next message.
  Result<void> send(const std::string& message) const;

 private:
  UniqueFd fd_;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  std::string shown_;  // the address as given, for errors
};

// The agent's side of the protocol, on its loop: the watchdog timer, READY=1
// once, STOPPING=1 once. A failed send is logged (once per kind), never fatal:
// the pods do not depend on the service manager hearing from the agent.
class ServiceNotifier {
 public:
  // Pings start with start(); `timers` (the agent's loop) must outlive this.
  ServiceNotifier(SdNotifier notifier, std::optional<std::chrono::microseconds> watchdog,
                  TimerQueue& timers);
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // One WATCHDOG=1 now and then every watchdog/2, from the loop's timers.
  void start();
  // READY=1 with a status line, the first time only.
  void ready(const std::string& status);
  bool isReady() const { return ready_; }
  void status(const std::string& status);
  // STOPPING=1 with a status line, the first time only; the pings go on (a
  // graceful stop of every pod can take its grace period, and a stuck one
  // should still be restarted).
  void stopping(const std::string& status);
  // The interval between two pings, if there is a watchdog.
  std::optional<std::chrono::microseconds> pingEvery() const;

 private:
  void send(const std::string& message, bool& failed_before);
  void ping();

  SdNotifier notifier_;
  std::optional<std::chrono::microseconds> watchdog_;
  TimerQueue& timers_;
  TimerQueue::Id timer_ = 0;
  bool ready_ = false, stopping_ = false;
  bool ping_failed_ = false, other_failed_ = false;
};

}  // namespace kernelet::agent
