#pragma once
// Graceful node shutdown, the kubelet's way (its nodeshutdown manager): where
// systemd-logind is on the system bus, the agent holds a "delay" inhibitor
// lock on "shutdown"; when logind announces PrepareForShutdown(true), the
// agent terminates the pods, non-critical ones first within
// shutdownGracePeriod - shutdownGracePeriodCriticalPods, then the critical ones
// within shutdownGracePeriodCriticalPods, each pod with the shorter of that
// and its own terminationGracePeriodSeconds, and ends Failed with reason
// Terminated; then it releases the lock and the shutdown goes on.
// logind delays a shutdown at most InhibitDelayMaxUSec: where that is shorter
// than shutdownGracePeriod the agent writes a logind drop-in that raises it,
// asks systemd to make logind reload (SIGHUP), and reads it again; if it is
// still short, it logs why and runs without the feature, as the kubelet does.
// Without a system bus or logind (containers, the test VM) it logs that once.
// PrepareForShutdown(false) (a cancelled shutdown) takes the lock again.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/config/config.h"
#include "agent/model/pod.h"
#include "agent/node/dbus_connection.h"
#include "agent/status/pod_status.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

// What the kubelet writes on pods it stops for a node shutdown.
inline constexpr const char* kNodeShutdownReason = "Terminated";
inline constexpr const char* kNodeShutdownMessage =
    "Pod was terminated in response to imminent node shutdown.";

// Critical pods stop last: spec.priority at or above system-cluster-critical's
// 2000000000, or, without a priority (static pods are not admitted by the API
// server, which fills it in), priorityClassName system-node-critical or
// system-cluster-critical.
bool isCriticalPod(const Pod& pod);
// The grace a pod gets in a group of `group_seconds`: the shorter of the two.
int64_t shutdownGrace(const Pod& pod, int64_t group_seconds);
// The status of a pod stopped for the shutdown: phase Failed (unless it had
// Succeeded), the kubelet's reason and message, DisruptionTarget
// (TerminationByKubelet).
void markShutDown(PodStatus& status, const std::string& now);

class ShutdownManager {
 public:
  // Terminates every active pod of one group (critical or not), each with
  // shutdownGrace(pod, grace_seconds); `done` runs on the loop once they all
  // terminated (at once if there are none).
  using TerminatePods =
      std::function<void(bool critical, int64_t grace_seconds, std::function<void()> done)>;

  struct Settings {
    int64_t grace_seconds = 0, critical_seconds = 0;  // shutdownGracePeriod[CriticalPods]
    std::string bus_address;                          // the system bus
    std::string logind_conf_dir = "/etc/systemd/logind.conf.d";
    std::chrono::milliseconds call_timeout{5000};     // each D-Bus call
    std::chrono::milliseconds reconnect_after{1000};  // the kubelet's dbusReconnectPeriod
    std::chrono::milliseconds recheck_every{1000};    // InhibitDelayMaxUSec after a reload
  };

  // Nullptr when shutdownGracePeriod is 0 (the feature is off, as the kubelet's
  // default). Otherwise connects now; every failure is logged, none is fatal.
  static std::unique_ptr<ShutdownManager> start(EventLoop& loop, TimerQueue& timers,
                                                Settings settings, TerminatePods terminate);
  ~ShutdownManager();
  ShutdownManager(const ShutdownManager&) = delete;
  ShutdownManager& operator=(const ShutdownManager&) = delete;

  // PrepareForShutdown(true) came: new pods are refused, as with the kubelet.
  bool shuttingDown() const { return shutting_down_; }
  // The agent holds logind's delay lock.
  bool holdsLock() const { return lock_.get() >= 0; }
  // The lock's fd, for tests that check what it is.
  int lockFd() const { return lock_.get(); }

 private:
  ShutdownManager(EventLoop& loop, TimerQueue& timers, Settings settings, TerminatePods terminate)
      : loop_(loop),
        timers_(timers),
        settings_(std::move(settings)),
        terminate_(std::move(terminate)) {}
  // Connects, checks InhibitDelayMaxUSec, takes the lock and watches the
  // signal; `first` says whether a failure is the first (logged and final)
  // or a lost bus being found again (retried).
  void connect(bool first);
  Result<std::chrono::microseconds> inhibitDelayMax();
  // The drop-in and logind's reload; then recheck() until it took.
  Result<void> raiseInhibitDelay();
  void recheck(int attempts_left);
  void watch();
  Result<void> takeLock();
  void onReadable();
  void onPrepareForShutdown(bool active);
  void stopGroup(bool critical);
  void groupDone(bool critical, uint64_t round);
  void disconnect(bool release);

  EventLoop& loop_;
  TimerQueue& timers_;
  Settings settings_;
  TerminatePods terminate_;
  std::unique_ptr<dbus::Connection> bus_;
  UniqueFd lock_;
  bool shutting_down_ = false;
  uint64_t round_ = 0;  // which group wait is current: a late done or timer of another is ignored
  TimerQueue::Id group_timer_ = 0, retry_timer_ = 0;
};

}  // namespace kernelet::agent
