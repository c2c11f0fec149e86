#include "agent/lifecycle/admission.h"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/model/pod_names.h"
#include "agent/model/saturating.h"

namespace kernelet::agent {
namespace {

int64_t request(const Container& c, const char* resource, bool milli) {
  // An unset request defaults to the limit, as the API server defaults it.
  for (const auto* list : {&c.resources.requests, &c.resources.limits}) {
    if (auto it = list->find(resource); it != list->end()) {
      return milli ? it->second.milliValue() : it->second.value();
    }
  }
  return 0;
}

int64_t podRequest(const Pod& pod, const char* resource, bool milli) {
  int64_t sum = 0, init_max = 0, sidecars = 0;
  for (const auto& c : pod.init_containers) {
    if (c.restart_policy == "Always") {
      sidecars = saturatingAdd(sidecars, request(c, resource, milli));
    }
    // An init container runs beside the sidecars started before it.
    init_max = std::max(init_max, saturatingAdd(sidecars, request(c, resource, milli)));
  }
  for (const auto& c : pod.containers) {
    sum = saturatingAdd(sum, request(c, resource, milli));
  }
  return std::max(saturatingAdd(sum, sidecars), init_max);
}

Admission outOf(const std::string& resource, int64_t requested, int64_t used, int64_t capacity) {
  return {false, "OutOf" + resource,
          "Node didn't have enough resource: " + resource +
              ", requested: " + std::to_string(requested) + ", used: " + std::to_string(used) +
              ", capacity: " + std::to_string(capacity)};
}

}  // namespace

int64_t podRequestMilliCpu(const Pod& pod) { return podRequest(pod, "cpu", true); }
int64_t podRequestMemory(const Pod& pod) { return podRequest(pod, "memory", false); }

NodeResources nodeResources(int64_t capacity_milli_cpu, int64_t capacity_memory,
                            const AgentConfig& config) {
  NodeResources n;
  n.capacity_milli_cpu = capacity_milli_cpu;
  n.capacity_memory = capacity_memory;
  const Reserved &kube = config.kube_reserved, &system = config.system_reserved;
  n.allocatable_milli_cpu =
      std::max<int64_t>(capacity_milli_cpu - kube.milli_cpu - system.milli_cpu, 0);
  auto threshold = config.eviction_hard.find("memory.available");
  int64_t evict =
      threshold == config.eviction_hard.end() ? 0 : threshold->second.of(capacity_memory);
  n.allocatable_memory =
      std::max<int64_t>(capacity_memory - kube.memory - system.memory - evict, 0);
  n.max_pods = config.max_pods;
  auto sysctls = SysctlAllowlist::forNode(config.allowed_unsafe_sysctls);
  n.sysctls = sysctls ? std::move(*sysctls) : SysctlAllowlist::forNode({}).value();
  return n;
}

NodeResources readNodeResources(const AgentConfig& config) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0, memory = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemTotal:") {
      memory = kib * 1024;
      break;
    }
  }
  NodeResources n = nodeResources(static_cast<int64_t>(cpus) * 1000, memory, config);
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_max != RLIM_INFINITY) {
    n.max_containers = std::max<int64_t>(
        (static_cast<int64_t>(files.rlim_max) - kAgentDescriptors) / kDescriptorsPerContainer, 1);
  }
  return n;
}

Admission admit(const Pod& pod, const std::vector<const Pod*>& running, const NodeResources& node) {
  // Static pods were checked when their file loaded; pods from the API are
  // checked here, where a refusal shows in the pod's status, before any path
  // is built from their names. "FailedValidation" is the kubelet's reason for
  // a pod it refuses to run.
  if (auto bad = invalidPodName(pod)) {
    return {false, "FailedValidation", *bad};
  }
  // A field kernelet does not implement is refused, never dropped: the pod
  // fails here with the field's name, as the kubelet fails a pod it cannot
  // run (its PodOSNotSupported, SysctlForbidden), and the pods beside it run.
  if (!pod.refused.empty()) {
    return {false, std::string(kUnsupportedPodSpec), pod.refused};
  }
  size_t containers = pod.init_containers.size() + pod.containers.size();
  if (containers > kMaxContainersPerPod) {
    return {false, "FailedValidation",
            "spec.containers: Too many: " + std::to_string(containers) +
                " containers (init containers included): must have at most " +
                std::to_string(kMaxContainersPerPod)};
  }
  // The kubelet's sysctl admit handler runs before its resource fit: a pod
  // that may not set a sysctl fails whether or not it fits; a namespaced one
  // of a namespace the pod shares with the node is forbidden too.
  for (const Sysctl& s : pod.sysctls) {
    if (auto why = node.sysctls.check(s.name, pod.host_network, pod.host_ipc)) {
      return {false, std::string(kSysctlForbidden), "forbidden sysctl: " + *why};
    }
  }
  if (static_cast<int>(running.size()) + 1 > node.max_pods) {
    return outOf("pods", 1, static_cast<int64_t>(running.size()), node.max_pods);
  }
  int64_t cpu = 0, memory = 0, containers_used = 0;
  for (const Pod* p : running) {
    cpu = saturatingAdd(cpu, podRequestMilliCpu(*p));
    memory = saturatingAdd(memory, podRequestMemory(*p));
    containers_used += static_cast<int64_t>(p->init_containers.size() + p->containers.size());
  }
  // Past its open-file limit the agent could neither start a container nor
  // watch one; a pod that would take it there waits for none, it is refused.
  if (node.max_containers > 0 &&
      containers_used + static_cast<int64_t>(containers) > node.max_containers) {
    return outOf("descriptors", static_cast<int64_t>(containers) * kDescriptorsPerContainer,
                 containers_used * kDescriptorsPerContainer,
                 node.max_containers * kDescriptorsPerContainer);
  }
  int64_t want_cpu = podRequestMilliCpu(pod), want_memory = podRequestMemory(pod);
  if (want_cpu > 0 && saturatingAdd(cpu, want_cpu) > node.allocatable_milli_cpu) {
    return outOf("cpu", want_cpu, cpu, node.allocatable_milli_cpu);
  }
  if (want_memory > 0 && saturatingAdd(memory, want_memory) > node.allocatable_memory) {
    return outOf("memory", want_memory, memory, node.allocatable_memory);
  }
  return {};
}

}  // namespace kernelet::agent
