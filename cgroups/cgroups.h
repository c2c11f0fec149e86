#pragma once
// cgroup v2: the hierarchy, groups as RAII handles, Kubernetes limits, stats and
// events. Knows nothing of pods: callers pass names and numbers.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/timer_queue.h"
#include "sys/unique_fd.h"

namespace kernelet::cgroups {

// ---- The hierarchy --------------------------------------------------------

struct Hierarchy {
  std::string mount;                  // e.g. /sys/fs/cgroup
  std::set<std::string> controllers;  // what the root offers: cgroup.controllers
};

// Finds the cgroup v2 mount (cgroup2 at `mount`, or /sys/fs/cgroup/unified on a
// hybrid host) and the controllers its root offers.
Result<Hierarchy> detect(const std::string& mount = "/sys/fs/cgroup");

// The controllers the agent needs to enforce pod resources.
inline const std::vector<std::string> kRequiredControllers = {"cpu", "memory", "pids"};

// An error naming every missing controller and the fix, or success.
Result<void> requireControllers(const Hierarchy& h,
                                const std::vector<std::string>& wanted = kRequiredControllers);

// ---- Limits ---------------------------------------------------------------

struct CpuMax {
  int64_t quota_us;  // -1: "max", no limit
  int64_t period_us;
};

// Kubernetes resources as cgroup v2 values; unset fields are left alone.
struct Limits {
  std::optional<uint64_t> cpu_weight;  // 1..10000
  std::optional<CpuMax> cpu_max;
  std::optional<int64_t> memory_max;  // bytes, -1: "max"
  std::optional<int64_t> memory_min;
  std::optional<int64_t> memory_low;
  std::optional<int64_t> memory_high;
  std::optional<int64_t> memory_swap_max;  // memory.swap.max: swap alone, not memory+swap
  std::optional<int64_t> pids_max;         // -1: "max"
  std::optional<bool> memory_oom_group;
};

// CPU request in millicores -> cpu.shares, as the kubelet computes it
// (milliCPU * 1024 / 1000, at least 2, at most 262144; 0 means the minimum).
uint64_t milliCpuToShares(int64_t milli_cpu);
// cpu.shares -> cpu.weight, the conversion runc >= 1.3.2, crun >= 1.23 and
// Kubernetes' cgroup libraries use since 2025, which maps the default 1024 shares
// to the default weight 100 (the older linear one gave 39).
uint64_t sharesToWeight(uint64_t shares);
// CPU limit in millicores -> cpu.max quota for `period_us` (at least 1000 us).
int64_t milliCpuToQuota(int64_t milli_cpu, int64_t period_us = 100000);

// ---- Devices --------------------------------------------------------------

// One device cgroup rule, as the OCI spec and the v1 devices.allow file write
// it: "c 1:3 rwm". type 'a' matches block and char; -1 is the wildcard.
struct DeviceRule {
  bool allow = false;
  char type = 'a';  // 'a', 'c' or 'b'
  int64_t major = -1;
  int64_t minor = -1;
  std::string access = "rwm";
};

// The devices every container may use (runc's and containerd's list): mknod of
// any, and reading and writing only /dev/null, zero, full, random, urandom,
// tty, ptmx, /dev/pts/* and /dev/net/tun; not the node's console (5:1).
std::vector<DeviceRule> defaultAllowedDevices();
// Every device, for privileged containers ("a *:* rwm", as containerd gives them).
std::vector<DeviceRule> allDevices();

// ---- Stats ----------------------------------------------------------------

struct Stats {
  uint64_t cpu_usage_usec = 0;
  uint64_t cpu_nr_periods = 0;
  uint64_t cpu_nr_throttled = 0;
  uint64_t cpu_throttled_usec = 0;
  uint64_t memory_current = 0;
  uint64_t memory_working_set = 0;  // current - inactive_file, as the kubelet reports it
  uint64_t memory_oom = 0;
  uint64_t memory_oom_kill = 0;
  uint64_t pids_current = 0;
};

// ---- A group --------------------------------------------------------------

// One cgroup directory, opened once. Move-only. remove() must be called to take
// the group away: the destructor closes the handle but leaves the group, because
// a group with processes cannot be removed silently.
class Cgroup {
 public:
  Cgroup() = default;

  // Opens an existing group, or creates it (and missing parents) below `mount`.
  // `relative` is a path like "kubepods/burstable/pod<uid>/app".
  static Result<Cgroup> open(const std::string& mount, const std::string& relative);
  static Result<Cgroup> create(const std::string& mount, const std::string& relative);

  const std::string& path() const { return path_; }
  // The directory fd, for clone3(CLONE_INTO_CGROUP) and the *at() calls.
  int fd() const { return dir_.get(); }

  // Lets the children of this group use these controllers (cgroup.subtree_control).
  Result<void> enableControllers(const std::vector<std::string>& controllers);
  Result<void> apply(const Limits& limits);
  // cgroup v2 has no devices.allow: the rules become an eBPF program attached to
  // the group (BPF_CGROUP_DEVICE), replacing the one before. The last rule that
  // matches decides; no match denies. Needs no controller: it works on any v2
  // group, also on a hybrid host's unified hierarchy.
  Result<void> applyDeviceRules(const std::vector<DeviceRule>& rules);
  Result<Stats> stats() const;
  Result<bool> populated() const;
  Result<void> addProcess(pid_t pid);
  Result<std::vector<pid_t>> processes() const;

  // Kills every process in the group and below (cgroup.kill), waits until it is
  // empty (at most `timeout_ms`), then removes it and its child groups. Blocks
  // the caller for that wait: an event loop uses removeAsync() (below).
  Result<void> remove(int timeout_ms = 5000);
  // Removes the child groups, then the group itself, now; a populated group
  // fails with EBUSY. The handle is closed once the children are gone.
  Result<void> removeTree();

  // Reads or writes one interface file of this group.
  Result<std::string> read(const std::string& file) const;
  Result<void> write(const std::string& file, const std::string& value);

 private:
  Cgroup(std::string path, UniqueFd dir) : path_(std::move(path)), dir_(std::move(dir)) {}
  std::string path_;
  UniqueFd dir_;
};

// The cgroup of a pod as the kubelet's cgroupfs driver lays it out under the
// cgroup root: kubepods/pod<uid> (Guaranteed), kubepods/burstable/pod<uid>,
// kubepods/besteffort/pod<uid>.
enum class QosClass { kGuaranteed, kBurstable, kBestEffort };
// "kubepods" under the cgroup root, relative to the mount.
std::string kubepodsPath(const std::string& cgroup_root);
std::string podCgroupPath(const std::string& cgroup_root, QosClass qos, const std::string& uid);
// Creates kubepods, kubepods/burstable and kubepods/besteffort with the
// controllers (cpu, memory and pids unless told otherwise) delegated to them.
Result<void> ensureQosTree(const std::string& mount, const std::string& cgroup_root,
                           const std::vector<std::string>& controllers = kRequiredControllers);

// ---- Removal on an event loop --------------------------------------------

// Cgroup::remove() without blocking the loop: cgroup.kill at once, then the
// wait for "populated 0" in cgroup.events happens on the loop (inotify), with a
// deadline; then the groups are removed and `done` runs, once, from the loop
// (also when there was nothing to wait for, or a step failed). `done` may
// destroy the handle. Destroying the handle before `done` stops waiting: the
// group's processes were killed already, but the group stays (for the next
// removal, or the agent's recovery at start-up) and `done` never runs.
// loop and timers must outlive the handle.
class AsyncRemoval {
 public:
  using Done = std::function<void(Result<void>)>;
  ~AsyncRemoval();
  AsyncRemoval(const AsyncRemoval&) = delete;
  AsyncRemoval& operator=(const AsyncRemoval&) = delete;
  const std::string& path() const { return group_.path(); }

 private:
  friend std::unique_ptr<AsyncRemoval> removeAsync(EventLoop& loop, TimerQueue& timers,
                                                   Cgroup group, std::chrono::milliseconds timeout,
                                                   Done done);
  AsyncRemoval(EventLoop& loop, TimerQueue& timers, Cgroup group, Done done)
      : loop_(loop), timers_(timers), group_(std::move(group)), done_(std::move(done)) {}
  Result<bool> begin(std::chrono::milliseconds timeout);
  void onChange();
  void finish(Result<void> r);
  void disarm();

  EventLoop& loop_;
  TimerQueue& timers_;
  Cgroup group_;
  Done done_;
  UniqueFd inotify_;
  bool watching_ = false;
  TimerQueue::Id timer_ = 0;
  std::chrono::milliseconds timeout_{0};
  // Timer callbacks hold this weakly: TimerQueue takes due timers out before
  // running them, so cancel() cannot stop one that is due in the same round
  // as the callback that destroys this object.
  std::shared_ptr<char> life_ = std::make_shared<char>();
};

std::unique_ptr<AsyncRemoval> removeAsync(EventLoop& loop, TimerQueue& timers, Cgroup group,
                                          std::chrono::milliseconds timeout,
                                          AsyncRemoval::Done done);

// ---- Events ---------------------------------------------------------------

// Tells when a group becomes empty and when the kernel OOM-kills in it, from
// inotify on cgroup.events and memory.events: wait on fd(), then call check().
class EventWatcher {
 public:
  struct Changes {
    bool became_empty = false;
    uint64_t new_oom_kills = 0;
  };

  static Result<EventWatcher> watch(const Cgroup& group);
  int fd() const { return inotify_.get(); }
  // Drains the inotify queue and compares the files with what was seen before.
  Result<Changes> check();

 private:
  EventWatcher(std::string path, UniqueFd dir, UniqueFd inotify)
      : path_(std::move(path)), dir_(std::move(dir)), inotify_(std::move(inotify)) {}
  std::string path_;
  UniqueFd dir_;  // our own handle on the group, so the watcher outlives moves of the Cgroup
  UniqueFd inotify_;
  bool populated_ = true;
  uint64_t oom_kills_ = 0;
};

}  // namespace kernelet::cgroups
