#pragma once
// The eviction manager (the kubelet's pkg/kubelet/eviction), on the agent's
// loop. Every monitoring period (10 s, the kubelet's) it observes the signals
// (memory.available = MemTotal - the root group's working set, as cadvisor
// computes it on cgroup v2; nodefs and imagefs bytes and inodes by statvfs;
// pid.available = pid_max - tasks), updates the thresholds met and the
// pressure conditions, then evicts: first pods over their local storage
// limits, else, for the threshold to reclaim (memory first), after a
// node-level reclaim for disk (image and container GC, a hook), the first
// pod of the ranking. One pod per cycle; the next cycle waits until it is
// gone (at most 30 s, the kubelet's podCleanupTimeout) and measures again.
//
// Memory is not left to the 10 s period: a notifier looks at memory.available
// every 500 ms (two small procfs/cgroupfs reads) and runs a cycle at once when
// a memory threshold is crossed; a PSI trigger on kubepods' memory.pressure
// wakes it sooner still when the pods stall on reclaim. cgroup v2 has no
// usage-threshold event of its own (v1's cgroup.event_control is gone), and
// setting memory.high on kubepods would throttle the pods to make one.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/eviction/ranking.h"
#include "agent/eviction/thresholds.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::eviction {

struct Settings {
  std::string cgroup_mount = "/sys/fs/cgroup";
  std::string proc = "/proc";
  std::string nodefs_dir;   // the root dir
  std::string imagefs_dir;  // the image store (the same filesystem unless mounted apart)
  std::string kubepods;     // relative to cgroup_mount: its memory.pressure gets the trigger
  std::chrono::milliseconds monitoring{10000};  // the kubelet's evictionMonitoringPeriod
  std::chrono::milliseconds memory_check{500};  // the memory notifier's period
  std::chrono::seconds cleanup_timeout{30};     // the kubelet's podCleanupTimeout
};

struct Hooks {
  // The pods that may be evicted (active, not being stopped), with their usage now.
  std::function<std::vector<PodUsage>()> pods;
  // Stops `pod` within `grace` seconds as Evicted with `message`; false if
  // it was not (gone meanwhile, or critical).
  std::function<bool(const PodUsage& pod, int64_t grace, const std::string& message)> evict;
  // Whether an evicted pod is gone (terminated, or removed).
  std::function<bool(const std::string& uid)> terminated;
  // Node-level reclaim before pods are evicted for a disk signal (unused
  // images, dead containers); may be empty. The signals are measured again
  // after it, and no pod goes if it was enough.
  std::function<void(const std::string& signal)> reclaim;
  // Disk figures measured now (a walk that ended after this call, waited
  // for a bounded time): the pods are ranked for a disk signal on them, not
  // on figures from before the pressure; may be empty.
  std::function<void()> refresh_disk;
  // The pressure conditions changed.
  std::function<void(const Pressure&)> pressure;
};

class EvictionManager {
 public:
  static std::unique_ptr<EvictionManager> start(EventLoop& loop, TimerQueue& timers,
                                                const AgentConfig& config, Settings settings,
                                                Hooks hooks);
  ~EvictionManager();
  EvictionManager(const EvictionManager&) = delete;
  EvictionManager& operator=(const EvictionManager&) = delete;

  // One cycle now (the monitoring timer's, also for tests).
  void synchronize();
  const Pressure& pressure() const { return pressure_; }
  // The signals as they are now.
  Observations observe() const;

 private:
  EvictionManager(EventLoop& loop, TimerQueue& timers, const AgentConfig& config, Settings settings,
                  Hooks hooks);
  void armMonitoring();
  void armMemoryCheck();
  // The notifier: a cycle now if a memory threshold is met.
  void checkMemory(const char* by);
  void armPsiTrigger();
  // Waiting for the last evicted pod: true while it is still there.
  bool waitingForCleanup();
  bool evictLocalStorage(std::vector<PodUsage>& pods);
  bool evictFor(const Rule& rule, const Observations& obs, std::vector<PodUsage>& pods);

  EventLoop& loop_;
  TimerQueue& timers_;
  Settings settings_;
  Hooks hooks_;
  Tracker tracker_;
  int64_t max_pod_grace_ = 0;
  bool has_memory_rule_ = false;
  Pressure pressure_;
  TimerQueue::Id monitor_timer_ = 0, memory_timer_ = 0;
  UniqueFd psi_;
  // The pod evicted last and since when: no other goes until it is gone.
  std::string waiting_for_;
  Clock::time_point waiting_since_;
  Clock::time_point last_cycle_;
  bool in_cycle_ = false;
  // The last cycle found no pod to evict: the notifier waits for the next
  // monitoring period instead of measuring every pod twice a second.
  bool nothing_to_evict_ = false;
};

}  // namespace kernelet::agent::eviction
