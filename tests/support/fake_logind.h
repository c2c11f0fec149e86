#pragma once
// A private system bus (Debian's dbus-daemon, started for the test) and a
// fake systemd-logind on it, served with sd-bus from a thread of the test:
// org.freedesktop.login1.Manager's Inhibit (a pipe's write end as the lock:
// the lock is released once the read end we keep sees every copy closed),
// its InhibitDelayMaxUSec property and its PrepareForShutdown signal; and
// org.freedesktop.systemd1.Manager.KillUnit, which "reloads" logind by
// reading InhibitDelayMaxSec from a logind.conf.d drop-in, as SIGHUP would.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sys/unique_fd.h"

namespace kernelet::testing {

// dbus-daemon with a config that lets anyone own and call anything.
class PrivateBus {
 public:
  PrivateBus();
  ~PrivateBus();
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;
  // Empty when the daemon could not start; error() says why.
  const std::string& address() const { return address_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, address_, error_;
  pid_t pid_ = -1;
};

struct InhibitCall {
  std::string what, who, why, mode;
};

class FakeLogind {
 public:
  // Serves on `address`; `conf_dir` is where KillUnit reads drop-ins from;
  // with `reload_works` false, KillUnit changes nothing.
  FakeLogind(const std::string& address, uint64_t inhibit_delay_max_usec,
             const std::string& conf_dir, bool reload_works = true);
  ~FakeLogind();
  FakeLogind(const FakeLogind&) = delete;
  FakeLogind& operator=(const FakeLogind&) = delete;
  // Empty when it serves; else why not.
  std::string error() const;

  void emitPrepareForShutdown(bool active);
  std::vector<InhibitCall> inhibits() const;
  int killUnitCalls() const;
  uint64_t inhibitDelayMax() const;
  // Locks handed out and not yet released (every copy of the fd closed).
  int locksHeld() const;
  // Waits until locksHeld() == n; false after `timeout`.
  bool waitForLocks(int n, std::chrono::milliseconds timeout) const;

  // For the sd-bus callbacks.
  struct State;

 private:
  void serve();
  std::unique_ptr<State> state_;
  std::thread thread_;
};

}  // namespace kernelet::testing
