#pragma once
// The Summary API (/stats/summary) as k8s.io/kubelet/pkg/apis/stats/v1alpha1
// defines it: these structs mirror the Go types field by field, an unset
// std::optional being a nil pointer (left out: every such Go field is
// omitempty), and summaryJson() writes the JSON Go's encoding/json writes
// (times in RFC 3339 at seconds, as metav1.Time).
//
// buildSummary() reads the node and every pod of a snapshot that has a cgroup;
// the containers are the running ones of its init, regular and ephemeral
// container statuses (their group: <pod group>/<ID>). Disk usage comes from an FsUsageCache, never
// from a walk here.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/stats/cgroup_stats.h"
#include "agent/stats/cpu_sampler.h"
#include "agent/stats/fs_usage.h"
#include "agent/status/snapshot.h"

namespace kernelet::agent::stats {

// PSIStats (KubeletPSI): the kernel's pressure file as it is, total in
// microseconds; both lines are always written, a missing one as zeros.
using PsiStats = Pressure;
struct CpuStats {
  Clock::time_point time;
  std::optional<uint64_t> usage_nano_cores, usage_core_nano_seconds;
  std::optional<PsiStats> psi;
};
struct MemoryStats {
  Clock::time_point time;
  std::optional<uint64_t> available_bytes, usage_bytes, working_set_bytes, rss_bytes, page_faults,
      major_page_faults;
  std::optional<PsiStats> psi;
};
// IOStats: only io pressure (the kubelet reports no io counters here).
struct IoStats {
  Clock::time_point time;
  std::optional<PsiStats> psi;
};
struct SwapStats {
  Clock::time_point time;
  // swap limit - usage; left out when there is no limit.
  std::optional<uint64_t> swap_available_bytes, swap_usage_bytes;
};
struct InterfaceStats {
  std::string name;
  std::optional<uint64_t> rx_bytes, rx_errors, tx_bytes, tx_errors;
};
struct NetworkStats {
  Clock::time_point time;
  InterfaceStats primary;  // inline in the JSON: the default interface (eth0)
  std::vector<InterfaceStats> interfaces;
};
struct FsStats {
  Clock::time_point time;
  std::optional<uint64_t> available_bytes, capacity_bytes, used_bytes, inodes_free, inodes,
      inodes_used;
};
struct VolumeStats {
  FsStats fs;  // inline
  std::string name;
};
struct RlimitStats {
  Clock::time_point time;
  std::optional<int64_t> max_pid, num_of_running_processes;
};
struct ContainerStats {
  std::string name;
  Clock::time_point start_time;
  std::optional<CpuStats> cpu;
  std::optional<MemoryStats> memory;
  std::optional<IoStats> io;
  std::optional<FsStats> rootfs, logs;
  std::optional<SwapStats> swap;
  // Beyond the Go type, for /metrics/cadvisor: the runtime's id and image.
  std::string id, image;
};
struct NodeStats {
  std::string node_name;
  std::vector<ContainerStats> system_containers;
  Clock::time_point start_time;
  std::optional<CpuStats> cpu;
  std::optional<MemoryStats> memory;
  std::optional<IoStats> io;
  std::optional<NetworkStats> network;
  std::optional<FsStats> fs;
  std::optional<FsStats> image_fs, container_fs;  // runtime{imageFs, containerFs}
  std::optional<RlimitStats> rlimit;
  std::optional<SwapStats> swap;
};
struct PodStats {
  std::string name, namespace_, uid;  // podRef
  Clock::time_point start_time;
  std::vector<ContainerStats> containers;
  std::optional<CpuStats> cpu;
  std::optional<MemoryStats> memory;
  std::optional<IoStats> io;
  std::optional<NetworkStats> network;
  std::vector<VolumeStats> volume;
  std::optional<FsStats> ephemeral_storage;
  std::optional<uint64_t> process_count;  // process_stats.process_count
  std::optional<SwapStats> swap;
};
struct Summary {
  NodeStats node;
  std::vector<PodStats> pods;
};

// Where the stats are read from.
struct SummarySources {
  std::string node_name;
  std::string cgroup_mount = "/sys/fs/cgroup";
  std::string proc = "/proc";
  std::string root_dir;          // ROOT: containers/<ID>/upper, pods/<UID>/volumes
  std::string pod_log_dir;       // POD_LOG_DIR/NS_NAME_UID/CONTAINER
  std::string image_dir;         // the image store (imageFs); ROOT if empty
  Clock::time_point node_start;  // the node's boot time
  // NodeStats.systemContainers: "pods" is this group (kubepods, relative to
  // the mount) when set; "kubelet" is the agent's own group, from
  // PROC/self/cgroup.
  std::string pods_cgroup;
};

// The disk directories of a pod the FsUsageCache should measure: each running
// container's upper dir and log dir, each emptyDir.
std::vector<std::string> podDiskTargets(const SummarySources& src, const PodSnapshot& pod);

Summary buildSummary(const SummarySources& src, const NodeSnapshot& snapshot, CpuSampler& sampler,
                     const FsUsageCache* disk, Clock::time_point now);

std::string summaryJson(const Summary& summary);
// metav1.Time's form: "2006-01-02T15:04:05Z"; the zero time_point is null.
std::string rfc3339(Clock::time_point t);
// Parses what rfc3339() and the status writer write (seconds, optional
// fraction, Z or +hh:mm); nullopt if it does not parse.
std::optional<Clock::time_point> parseRfc3339(const std::string& text);

// "kernelet://ID" -> "ID"; empty if another runtime's or malformed.
std::string containerIdOf(const std::string& container_id);

}  // namespace kernelet::agent::stats
