#pragma once
// The Node this agent registers and keeps reporting: what the machine is
// (nodeInfo, capacity, addresses), what it offers (allocatable) and how it
// is (the MemoryPressure, DiskPressure, PIDPressure and Ready conditions from
// real signals), as JSON for the API.

#include <cstdint>
#include <map>
#include <string>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"

namespace kernelet::agent {

struct NodeFacts {
  std::string name, ip, hostname;
  std::string machine_id, system_uuid, boot_id, kernel_version, os_image, architecture;
  NodeResources resources;
  int64_t ephemeral_capacity = 0, ephemeral_allocatable = 0;
  std::map<std::string, int64_t> hugepages;  // "hugepages-2Mi" -> bytes
  int max_pods = 110;
  int kubelet_port = 10250;  // daemonEndpoints.kubeletEndpoint.Port: where the node server listens
};

// Reads /etc/machine-id, the boot id, uname, /etc/os-release, the root dir's
// filesystem and the hugepage pools.
NodeFacts readNodeFacts(const AgentConfig& config, const NodeResources& resources,
                        const std::string& node_ip);

// What the eviction signals are measured on: MemTotal/MemAvailable, the root
// dir's filesystem (nodefs, and imagefs: the images live there too) and
// kernel.pid_max against the tasks that exist.
struct NodeUsage {
  int64_t memory_total = 0, memory_available = 0;
  int64_t fs_total = 0, fs_available = 0, inodes_total = 0, inodes_free = 0;
  int64_t pid_max = 0, pids = 0;
};
NodeUsage readNodeUsage(const std::string& root_dir);

struct NodeSignals {
  bool memory_pressure = false;  // memory.available under its hard eviction threshold
  bool disk_pressure = false;    // nodefs/imagefs available or inodesFree under theirs
  bool pid_pressure = false;     // pid.available under its threshold (none by default)
  bool ready = true;
};
// The conditions as the kubelet's eviction manager sets them from evictionHard.
NodeSignals nodeSignals(const NodeUsage& u, const std::map<std::string, Threshold>& eviction_hard);
// The conditions: the eviction manager's once it published them (with its
// grace and transition periods), else the signals against evictionHard.
NodeSignals readNodeSignals(const AgentConfig& config);
// The eviction manager's pressure conditions. It decides on the agent's loop
// and the node heartbeat reads on its own thread, so they are kept in one
// atomic word of the process (one agent per process).
void publishPressure(bool memory, bool disk, bool pid);

// A Node for POST /api/v1/nodes: labels, annotation, and the status.
std::string nodeJson(const NodeFacts& f, const NodeSignals& s, const std::string& now);
// {"status": {...}}: conditions (heartbeat = now, transition kept from
// `previous` when unchanged), capacity, allocatable, addresses, nodeInfo,
// daemonEndpoints.
std::string nodeStatusJson(const NodeFacts& f, const NodeSignals& s, const std::string& now,
                           const std::map<std::string, std::string>& transition_times);
// The same with the heartbeat times blanked: what "changed" is judged by.
std::string nodeStatusFingerprint(const NodeFacts& f, const NodeSignals& s);

}  // namespace kernelet::agent
