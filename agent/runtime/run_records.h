#pragma once
// The runtime's durable record of a pod (ROOT/pods/<uid>/runtime.json): what
// a new agent needs to take over the pod a previous agent left running - the
// sandbox (cgroup, network namespace, address, run dir), the volumes and each
// container's latest run and the one before. It is rewritten (temp file and
// rename, no fsync: a reboot throws the pod away anyway) whenever one of those
// changes, and removed with the pod. Its presence is what tells recovery
// (recovery.h) a pod that may be adopted from garbage.
//
// The file is outside input when read back (another build wrote it, or a disk
// error tore it): every field is checked, and a record of another version or
// a broken one is an error naming the file, never a crash.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/qos.h"
#include "agent/runtime/process_user.h"
#include "sys/result.h"

namespace kernelet::agent::runtime {

// One run of a container.
struct RunRecord {
  std::string id;  // the container id, 64 hex digits
  int pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/PID/stat: the pid-reuse guard
  std::string started_at;   // RFC 3339
  int restart_count = 0;
  std::string image_name, image_id;
  int stop_signal = 15;
  // The uid, gid and supplementary groups its process started with
  // (containerStatuses[].user); none in a record of an older agent.
  std::optional<ProcessUser> user;
  std::string log_path;    // the CRI log file the run writes to
  std::string rootfs_dir;  // ROOT/containers/<id>, the overlay is its rootfs/
  std::string cgroup;      // the run's cgroup, absolute
  // Its stdio beyond the log pipes (ContainerStdio): what the keeper's fds
  // for it are, and whether stdinOnce closed stdin for good.
  bool stdin = false, stdin_once = false, tty = false, stdin_closed = false;
  // Its termination-message file on the host (termination_message.h), empty
  // for none, and whether its policy is FallbackToLogsOnError: what an agent
  // that learns of its end reads its message from.
  std::string termination_file;
  bool fallback_to_logs = false;
  // Set once the run ended (the agent saw it, or learnt it at adoption).
  bool ended = false;
  int exit_code = 0;
  std::string reason, message, finished_at;
  bool oom_killed = false;
};

struct ContainerRecord {
  std::optional<RunRecord> latest, previous;
};

struct PodRecord {
  static constexpr int kVersion = 1;
  int version = kVersion;
  std::string boot_id;  // /proc/sys/kernel/random/boot_id when written
  std::string uid, namespace_, name, pod_hash;
  QosClass qos = QosClass::kBestEffort;
  int64_t grace_seconds = 30;
  std::optional<int64_t> kill_at_unix_ms;  // noteTerminating
  // The sandbox.
  std::string cgroup;      // absolute
  std::string netns_path;  // empty: hostNetwork
  std::string ip, run_dir, hostname;
  // The volumes (PodVolumes).
  std::string volumes_dir;
  std::map<std::string, std::string> volume_paths;
  std::vector<std::string> tmpfs, projected;
  std::map<std::string, ContainerRecord> containers;  // by container name
};

std::string toJson(const PodRecord& r);
// `path` names the record in errors.
Result<PodRecord> parsePodRecord(std::string_view text, const std::string& path);

// ROOT/pods/<uid>/runtime.json
std::string recordPath(const std::string& root_dir, const std::string& uid);
Result<void> writePodRecord(const std::string& path, const PodRecord& r);
Result<PodRecord> readPodRecord(const std::string& path);
// A record read back is for this boot (nothing of another boot can be alive).
Result<PodRecord> readCurrentRecord(const std::string& path, const std::string& boot_id);

// This boot's id; empty if /proc does not tell it.
std::string currentBootId();

}  // namespace kernelet::agent::runtime
