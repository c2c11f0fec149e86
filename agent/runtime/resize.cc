// In-place resize in the kernel: new cgroup limits for a running container
// and its pod, written into the groups the container and the sandbox already
// have. Nothing is restarted here; a resize that needs a restart is the pod
// worker's (agent/lifecycle/pod_resize.cc).

#include "agent/runtime/instance.h"
#include "agent/runtime/kernel_runtime.h"
#include "agent/runtime/pod_sandbox.h"

namespace kernelet::agent::runtime {

Result<void> KernelRuntime::resizeContainer(ContainerHandle h,
                                            const ContainerResources& resources) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("resize container", std::to_string(h), "no such container");
  }
  if (!sandbox_env_.enforce_limits) {
    return {};  // as at its start: the node enforces no limits
  }
  cgroups::Limits l = containerCgroupLimits(resources);
  // A limit the new resources do not set is lifted, not left at the old one.
  if (!l.cpu_max) {
    l.cpu_max = cgroups::CpuMax{-1, 100000};
  }
  if (!l.memory_max) {
    l.memory_max = -1;
  }
  if (auto r = inst->cgroup.apply(l); !r) {
    return addContext(std::move(r), "resize container " + inst->name);
  }
  return {};
}

Result<void> KernelRuntime::resizePod(const Pod& pod) {
  auto it = pods_.find(pod.uid);
  if (it == pods_.end() || !it->second.sandbox) {
    return makeError("resize pod", pod.uid, "no sandbox");
  }
  if (!sandbox_env_.enforce_limits) {
    return {};
  }
  cgroups::Limits l = podCgroupLimits(pod);
  if (!l.cpu_max) {
    l.cpu_max = cgroups::CpuMax{-1, 100000};
  }
  if (!l.memory_max) {
    l.memory_max = -1;
  }
  return it->second.sandbox->cgroup().apply(l);
}

Result<uint64_t> KernelRuntime::podMemoryUsage(const std::string& pod_uid) {
  auto it = pods_.find(pod_uid);
  if (it == pods_.end() || !it->second.sandbox) {
    return makeError("pod memory usage", pod_uid, "no sandbox");
  }
  TRY(cgroups::Stats s, it->second.sandbox->cgroup().stats());
  return s.memory_current;
}

}  // namespace kernelet::agent::runtime
