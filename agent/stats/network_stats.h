#pragma once
// A pod's network counters, from its network namespace without entering it:
// /proc/PID/net/dev shows the interfaces of PID's network namespace, and any
// process of the pod will do (its containers share the pod's netns). A
// process is found in cgroup.procs of the pod's group or of its container
// groups (processes live in the leaves under cgroup v2).

#include <optional>
#include <string>
#include <vector>

#include "agent/stats/kernel_files.h"

namespace kernelet::agent::stats {

// The first process found in the group `relative` (below `mount`) or one of
// its direct child groups; nullopt if none.
std::optional<int> findProcessIn(const std::string& mount, const std::string& relative);

// The interfaces of that process' network namespace, loopback left out (the
// kubelet's summary does not report lo). Empty if the pod has no process.
std::vector<InterfaceCounters> podInterfaces(const std::string& cgroup_mount,
                                             const std::string& pod_cgroup,
                                             const std::string& proc);

}  // namespace kernelet::agent::stats
