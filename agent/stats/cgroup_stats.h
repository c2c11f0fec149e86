#pragma once
// What one cgroup v2 group, and the node as a whole, use: read from the
// group's interface files below a cgroup mount and from procfs, both given as
// paths so tests can point them at a fake tree. cgroups::Cgroup::stats() has
// no user/system split, no memory.stat fields and no io.stat, and opens the
// group as a handle; these readers are the stats view of the same files.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "agent/stats/kernel_files.h"
#include "sys/result.h"

namespace kernelet::agent::stats {

using Clock = std::chrono::system_clock;

struct CgroupSample {
  Clock::time_point time;
  // cpu.stat (present in every v2 group, the cpu controller or not)
  bool has_cpu = false;
  uint64_t cpu_usage_usec = 0, cpu_user_usec = 0, cpu_system_usec = 0;
  // memory.current, memory.max (nullopt: "max"), memory.stat
  bool has_memory = false;
  uint64_t memory_current = 0;
  std::optional<uint64_t> memory_max;
  uint64_t anon = 0, file = 0, inactive_file = 0, pgfault = 0, pgmajfault = 0;
  // memory.current - inactive_file, never below 0: what the kubelet evicts on.
  uint64_t working_set = 0;
  IoTotals io;
  std::optional<uint64_t> pids_current;
  // cpu.pressure, memory.pressure, io.pressure: unset where the kernel has no
  // PSI (CONFIG_PSI off, psi=0, or cgroup.pressure turned off for the group).
  std::optional<Pressure> cpu_pressure, memory_pressure, io_pressure;
  // memory.swap.current (unset without swap accounting) and memory.swap.max
  // (unset: "max", no limit).
  std::optional<uint64_t> swap_current, swap_max;
};

// The group `relative` below `mount`. An error if the group is not there
// (it went, or was never made); a controller's files that are missing leave
// their fields unset. io.stat only `with_io` (nothing in the Summary uses it,
// and every file read counts when 100 pods are read).
Result<CgroupSample> readCgroup(const std::string& mount, const std::string& relative,
                                Clock::time_point now, bool with_io = false);

struct NodeSample {
  Clock::time_point time;
  std::optional<uint64_t> cpu_usage_ns;  // root cgroup's cpu.stat, else /proc/stat
  uint64_t memory_total = 0;             // MemTotal
  uint64_t memory_usage = 0;             // MemTotal - MemFree (cadvisor's root usage)
  uint64_t working_set = 0;              // usage - inactive_file
  uint64_t rss = 0;                      // anon
  uint64_t pgfault = 0, pgmajfault = 0;
  uint64_t available = 0;             // MemTotal - working set, as the kubelet computes it
  std::optional<uint64_t> pid_max;    // /proc/sys/kernel/pid_max
  std::optional<uint64_t> processes;  // tasks now (sysinfo(2), as the kubelet)
  // /proc/pressure/{cpu,memory,io}: unset without PSI.
  std::optional<Pressure> cpu_pressure, memory_pressure, io_pressure;
  // SwapTotal and SwapFree of /proc/meminfo, unset if it lacks them.
  std::optional<uint64_t> swap_total, swap_free;
};

// `proc` is the procfs mount (/proc). An error only if /proc/meminfo cannot be read.
Result<NodeSample> readNode(const std::string& cgroup_mount, const std::string& proc,
                            Clock::time_point now);

}  // namespace kernelet::agent::stats
