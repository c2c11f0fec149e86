#pragma once
// Whether a pod fits the node: the kubelet's admission of cpu and memory
// requests against allocatable, and of the pod count against maxPods; before
// that, whether it is a pod the agent may run at all: names the API server
// would accept, and at most kMaxContainersPerPod containers.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/lifecycle/sysctl_allowlist.h"
#include "agent/model/pod.h"

namespace kernelet::agent {

// The API server sets no limit on the containers of a pod (only the object's
// size bounds them); the agent holds about six descriptors and a share of its
// loop per container, so one pod may have at most this many, init containers
// and sidecars included. A pod of 10,000 containers exhausted the agent's
// descriptors and starved every other pod.
constexpr size_t kMaxContainersPerPod = 250;

// Descriptors the agent holds per running container (pidfd, log pipes, cgroup
// directories, log file) and for itself, as the README tells operators.
constexpr int64_t kDescriptorsPerContainer = 6, kAgentDescriptors = 100;

struct NodeResources {
  int64_t capacity_milli_cpu = 0, capacity_memory = 0;
  int64_t allocatable_milli_cpu = 0, allocatable_memory = 0;
  int max_pods = 110;
  // Containers the agent's open-file limit has room for; 0: not bounded.
  int64_t max_containers = 0;
  // The sysctls pods may set: the safe set and allowedUnsafeSysctls.
  SysctlAllowlist sysctls;
};

// Capacity from the CPUs this process may run on and /proc/meminfo's MemTotal;
// allocatable is what the kubelet computes: capacity - kubeReserved -
// systemReserved - the hard eviction threshold (memory.available for memory).
// The sysctl allowlist from the running kernel and allowedUnsafeSysctls
// (checked when the configuration was read; a bad pattern leaves the safe set).
// max_containers from the hard RLIMIT_NOFILE (the agent raises its soft limit to it).
NodeResources readNodeResources(const AgentConfig& config);
// The same from a given capacity.
NodeResources nodeResources(int64_t capacity_milli_cpu, int64_t capacity_memory,
                            const AgentConfig& config);

// What a pod asks the scheduler for: the larger of the regular containers'
// (and sidecars') sum and any single init container's request.
int64_t podRequestMilliCpu(const Pod& pod);
int64_t podRequestMemory(const Pod& pod);

// The reason a pod that sets a field kernelet refuses (Pod::refused) is
// rejected with; the message names the field.
constexpr std::string_view kUnsupportedPodSpec = "UnsupportedPodSpec";

struct Admission {
  bool admitted = true;
  // FailedValidation, UnsupportedPodSpec, SysctlForbidden, OutOfcpu, OutOfmemory, OutOfpods,
  // OutOfdescriptors
  std::string reason;
  std::string message;  // "Node didn't have enough resource: cpu, requested: 500, used: ..."
};

// `running`: the pods already admitted and not terminated.
Admission admit(const Pod& pod, const std::vector<const Pod*>& running, const NodeResources& node);

}  // namespace kernelet::agent
