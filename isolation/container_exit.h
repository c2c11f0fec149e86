#pragma once
// How a container ended, as the kubelet reports it: exit code or signal, and
// whether its cgroup saw an OOM kill while it ran.

#include <functional>
#include <string>

#include "cgroups/cgroups.h"
#include "isolation/isolation.h"
#include "sys/event_loop.h"

namespace kernelet::isolation {

struct ContainerExit {
  ExitStatus status;
  bool oom_killed = false;
  // The kubelet's terminated reason: "OOMKilled", "Completed" (exit 0) or "Error".
  std::string reason() const;
};

// Counts the OOM kills of `group` at start; pass the count to reap().
uint64_t oomKills(const cgroups::Cgroup& group);

// Reaps an exited process and tells whether the kernel OOM-killed in its group
// since `oom_kills_at_start`. `group` may be null (no cgroup: never OOMKilled).
Result<ContainerExit> reap(Process& proc, const cgroups::Cgroup* group,
                           uint64_t oom_kills_at_start);

// Calls `done` from `loop` once `proc` has exited (its pidfd became readable).
// `proc` and `group` must outlive the watch.
Result<void> watchExit(EventLoop& loop, Process& proc, const cgroups::Cgroup* group,
                       std::function<void(Result<ContainerExit>)> done);

}  // namespace kernelet::isolation
