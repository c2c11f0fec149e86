#pragma once
// A pod's status as the kubelet computes it (generateAPIPodStatus): phase,
// conditions and container statuses, and its v1.PodStatus JSON.

#include <optional>
#include <string>
#include <vector>

#include "agent/model/pod.h"

namespace kernelet::agent {

struct ContainerState {
  enum class Kind { kNone, kWaiting, kRunning, kTerminated } kind = Kind::kNone;
  std::string reason, message;  // waiting and terminated
  int exit_code = 0, signal = 0;
  std::string started_at, finished_at;  // RFC 3339
  std::string container_id;
};

// containerStatuses[].volumeMounts[]: a mount as the spec asked for it, and
// for a read-only one whether it is recursively so (Disabled / Enabled).
struct VolumeMountStatus {
  std::string name, mount_path;
  bool read_only = false;
  std::string recursive_read_only;
};

// containerStatuses[].user.linux: who the process started as.
struct LinuxContainerUser {
  int64_t uid = 0, gid = 0;
  std::vector<int64_t> supplemental_groups;
};

struct ContainerStatus {
  std::string name, image, image_id, container_id;
  ContainerState state, last_state;
  bool ready = false;
  std::optional<bool> started;
  int restart_count = 0;
  // The effective stop signal of its latest run (lifecycle.stopSignal, the
  // image's STOPSIGNAL or SIGTERM) by its API name; empty until it ran.
  std::string stop_signal;
  // From its first start on: what the kubelet reports of a created container.
  std::vector<VolumeMountStatus> volume_mounts;
  std::optional<LinuxContainerUser> user;
  // In-place resize (1.35): the requests the node allocated to the container
  // (allocatedResources), and the requests and limits its cgroup has now
  // (resources); unset for containers that set no resources.
  std::optional<ResourceList> allocated_resources;
  std::optional<ContainerResources> resources;
};

struct PodCondition {
  std::string type, status, reason, message, last_transition_time;
};

struct PodStatus {
  std::string phase = "Pending";
  std::vector<PodCondition> conditions;
  std::string reason, message;  // a rejected pod: OutOfcpu, ...
  std::string host_ip, pod_ip, start_time, qos_class;
  std::vector<ContainerStatus> init_container_statuses, container_statuses;
  // Never ready, never restarted; no part of the phase or the conditions.
  std::vector<ContainerStatus> ephemeral_container_statuses;
};

// The phase from the spec and the container statuses (the kubelet's getPhase,
// sidecar init containers included).
std::string podPhase(const Pod& pod, const std::vector<ContainerStatus>& init,
                     const std::vector<ContainerStatus>& regular);

// Fills phase and the five conditions. `sandbox_ready`: the pod's network and
// cgroup exist. Transition times are kept from `previous` when a condition's
// status did not change, else `now`.
void computeConditions(const Pod& pod, PodStatus& status, bool sandbox_ready,
                       const PodStatus* previous, const std::string& now);

// The pod's termination messages share 12 KiB (the kubelet's
// MaxPodTerminationMessageLogLength), split evenly over its containers and
// init containers as the status manager's normalizeStatus splits it: each
// terminated state's message (state and lastState, ephemeral containers'
// too) is cut to its first `12 KiB / containers` bytes.
constexpr size_t kMaxPodTerminationMessageLength = 12 * 1024;
void capTerminationMessages(PodStatus& status, size_t containers);

// The v1.PodStatus object, and a whole v1.Pod with the metadata and the
// containers' names and images (what `kernelet pods` reads back).
std::string podStatusJson(const PodStatus& status);
std::string podJson(const Pod& pod, const PodStatus& status, const std::string& created);

// Reads back what podJson wrote: enough for `kernelet pods`.
struct PodSummary {
  std::string name, namespace_, uid, created, node_name;
  PodStatus status;
  size_t containers = 0;
};
Result<PodSummary> parsePodJson(const std::string& json, const std::string& where);

}  // namespace kernelet::agent
