#include "agent/node/node_allocatable.h"

#include <algorithm>
#include <cstdlib>

#include "sys/fileio.h"

namespace kernelet::agent {

cgroups::Limits kubepodsLimits(const NodeResources& node, const AgentConfig& config,
                               int64_t pid_max) {
  const Reserved &kube = config.kube_reserved, &system = config.system_reserved;
  cgroups::Limits l;
  int64_t cpu = std::max<int64_t>(node.capacity_milli_cpu - kube.milli_cpu - system.milli_cpu, 0);
  l.cpu_weight = cgroups::sharesToWeight(cgroups::milliCpuToShares(cpu));
  l.memory_max = std::max<int64_t>(node.capacity_memory - kube.memory - system.memory, 0);
  if (pid_max > 0) {
    l.pids_max = std::max<int64_t>(pid_max - kube.pids - system.pids, 0);
  }
  return l;
}

Result<void> enforceNodeAllocatable(const std::string& mount, const AgentConfig& config,
                                    const NodeResources& node) {
  TRY(cgroups::Cgroup kubepods,
      cgroups::Cgroup::open(mount, cgroups::kubepodsPath(config.cgroup_root)));
  TRY(std::string pid_max, readFile("/proc/sys/kernel/pid_max"));
  return addContext(kubepods.apply(kubepodsLimits(node, config, std::atoll(pid_max.c_str()))),
                    "enforce node allocatable on " + kubepods.path());
}

}  // namespace kernelet::agent
