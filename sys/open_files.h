#pragma once
// The agent holds a few descriptors per container (its pidfd, log pipes,
// cgroup directories) where the kubelet's runtime spreads them over a shim per
// pod, so the usual soft limit of 1024 runs out near 170 pods. As the Go
// runtime does for the kubelet and containerd, the agent raises its soft
// RLIMIT_NOFILE to the hard limit and its children (containers) get the limit
// the agent was started with.

#include <sys/resource.h>

#include <optional>

#include "sys/result.h"

namespace kernelet {

// Soft RLIMIT_NOFILE := hard, remembering what it was.
Result<void> raiseOpenFileLimit();
// The limit before raiseOpenFileLimit(), for children; nothing if it never ran.
std::optional<rlimit> originalOpenFileLimit();

}  // namespace kernelet
