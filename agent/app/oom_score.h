#pragma once
// The agent's own OOM score. The kubelet writes its oomScoreAdj (-999) at
// start so that, on a node out of memory, the kernel kills a pod's process
// before the agent that keeps every pod: an agent killed for memory would
// leave the node unmanaged until its restart. Only the agent (and what it
// starts for itself, such as the holder) keeps it: every container and exec
// gets its QoS class's value instead (model/qos.h, written by the container's
// child before it execs).

#include <string>

#include "sys/result.h"

namespace kernelet::agent {

// Writes `value` to `path` (the process's oom_score_adj).
Result<void> setOomScoreAdj(int value, const std::string& path = "/proc/self/oom_score_adj");

}  // namespace kernelet::agent
