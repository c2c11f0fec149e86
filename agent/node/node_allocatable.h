#pragma once
// Node allocatable enforcement (the kubelet's enforceNodeAllocatable: ["pods"],
// its default): the kubepods cgroup, parent of every pod, is limited to what
// the reservations leave, so pods together cannot take what kubeReserved and
// systemReserved set aside. The eviction threshold is not part of this limit
// (the kubelet leaves it to eviction).

#include <cstdint>
#include <string>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "cgroups/cgroups.h"

namespace kernelet::agent {

// cpu.weight from capacity - reserved cpu, memory.max = capacity - reserved
// memory, pids.max = kernel.pid_max - reserved pids (as the kubelet, which
// counts pid_max as the node's pid capacity).
cgroups::Limits kubepodsLimits(const NodeResources& node, const AgentConfig& config,
                               int64_t pid_max);

// Applies them to CGROUP_ROOT/kubepods.
Result<void> enforceNodeAllocatable(const std::string& mount, const AgentConfig& config,
                                    const NodeResources& node);

}  // namespace kernelet::agent
