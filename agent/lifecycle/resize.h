#pragma once
// In-place pod resize (KEP 1287, GA in Kubernetes 1.35): the decisions the
// kubelet's allocation manager and runtime manager make when the API asks a
// running pod's containers for other cpu or memory requests and limits
// (through the pods/resize subresource). Pure functions over the model, so
// that every rule is unit-tested without a runtime; the pod worker acts on
// them (agent/lifecycle/pod_resize.cc).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/lifecycle/admission.h"
#include "agent/model/pod.h"

namespace kernelet::agent {

// The resources a resize may change; the API refuses any other.
inline constexpr const char* kResizableResources[] = {"cpu", "memory"};

// The pod conditions of a resize and their reasons, as the kubelet 1.35 sets them.
inline constexpr const char* kPodResizePending = "PodResizePending";
inline constexpr const char* kPodResizeInProgress = "PodResizeInProgress";
inline constexpr const char* kResizeDeferred = "Deferred";
inline constexpr const char* kResizeInfeasible = "Infeasible";
inline constexpr const char* kResizeError = "Error";

struct ResizeAdmission {
  enum class Verdict {
    kAccepted,    // allocate it now
    kDeferred,    // it would fit the node, not beside the pods running now: retried
    kInfeasible,  // more than the node's allocatable: never, until the spec changes
  } verdict = Verdict::kAccepted;
  std::string message;  // the condition's message, the kubelet's words
};

// The allocation manager's handlePodResourcesResize: `wanted` is the pod with
// the resources the API asks for; `others` the other admitted pods, with
// what is allocated to them. Infeasible when the pod alone exceeds
// allocatable (memory checked first, as the kubelet does); Deferred when it
// does not fit beside the others (the scheduler's fit message).
ResizeAdmission admitResize(const Pod& wanted, const std::vector<const Pod*>& others,
                            const NodeResources& node);

// Whether the cpu or memory requests or limits of `from` and `to` differ;
// other resources (ephemeral-storage) are not resizable and not compared.
bool resourcesDiffer(const ContainerResources& from, const ContainerResources& to);
// `from` with its cpu and memory requests and limits taken from `to` (the
// others kept: the API lets only cpu and memory change).
ContainerResources withResizable(const ContainerResources& from, const ContainerResources& to);

// Whether applying `to` over `from` restarts the container: a resource whose
// request or limit changes and whose resizePolicy is RestartContainer.
bool resizeRestarts(const Container& spec, const ContainerResources& from,
                    const ContainerResources& to);

// Per resource (cpu, memory), the larger of `a`'s and `b`'s requests and
// limits, a missing limit being the largest: what a cgroup needs while a
// process started with `a` may still run where one with `b` will.
ContainerResources widest(const ContainerResources& a, const ContainerResources& b);

// The memory limit in bytes `r` sets, or nullopt (no limit).
std::optional<int64_t> memoryLimit(const ContainerResources& r);

// The kubelet does not lower a memory limit below what the cgroup uses (the
// kernel would reclaim or OOM-kill to get there): the message it reports
// then, or nullopt when `limit` may be applied. `who` is "pod NAME" or
// "container NAME".
std::optional<std::string> memoryLimitBelowUsage(const std::string& who,
                                                 std::optional<int64_t> old_limit,
                                                 std::optional<int64_t> new_limit, uint64_t usage);

}  // namespace kernelet::agent
