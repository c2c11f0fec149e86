#pragma once
// The kubelet's allocation checkpoint (allocated_pods_state and
// actuated_pods_state) for one pod: what the node allocated to each container
// of a resized pod, and what its cgroup was last given, in
// ROOT/pods/UID/allocation.json. An agent restarted in the middle of a resize
// reads it back, so it neither takes a resize it had Deferred as allocated
// nor applies one twice (agent/lifecycle/pod_resize.cc). Written by rename,
// only for pods that were resized; removed with the pod's directory.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "agent/model/qos.h"
#include "sys/result.h"

namespace kernelet::agent {

struct ContainerAllocation {
  ContainerResources allocated;
  // What the running container's cgroup has; unset when it is not running.
  std::optional<ContainerResources> actuated;
  bool operator==(const ContainerAllocation&) const = default;
};

struct PodAllocation {
  static constexpr int kVersion = 1;
  std::map<std::string, ContainerAllocation> containers;  // by container name
  bool operator==(const PodAllocation&) const = default;
};

std::string allocationPath(const std::string& root_dir, const std::string& pod_uid);
std::string toJson(const PodAllocation& a);
// Errors name `path` and the JSON path; a version other than kVersion is an error.
Result<PodAllocation> parseAllocation(std::string_view text, const std::string& path);
// nullopt when there is no file; an error when it cannot be read or parsed.
Result<std::optional<PodAllocation>> readAllocation(const std::string& path);
Result<void> writeAllocation(const std::string& path, const PodAllocation& a);

}  // namespace kernelet::agent
