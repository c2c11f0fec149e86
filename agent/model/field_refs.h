#pragma once
// The downward API: values of fieldRef and resourceFieldRef for env vars and
// downwardAPI volume files, and $(VAR) expansion in env, command and args.

#include <cstdint>
#include <map>
#include <string>

#include "agent/model/pod.h"
#include "sys/result.h"

namespace kernelet::agent {

struct PodRuntimeInfo {
  std::string pod_ip, host_ip;
  int64_t node_milli_cpu = 0, node_memory = 0;  // allocatable: the default for unset limits
};

// metadata.name, .namespace, .uid, .labels['k'], .annotations['k'], spec.nodeName,
// spec.serviceAccountName, status.podIP(s), status.hostIP(s); `whole_maps` also
// allows metadata.labels and metadata.annotations (volume files only).
Result<std::string> fieldRefValue(const Pod& pod, const std::string& path,
                                  const PodRuntimeInfo& info, bool whole_maps = false);

// limits.cpu (whole cores, rounded up), limits.memory, requests.cpu, requests.memory
// of `container` (the one named, else the one asking); unset limits are the node's.
Result<std::string> resourceFieldValue(const Pod& pod, const std::string& container,
                                       const std::string& resource, const PodRuntimeInfo& info);

// Kubernetes' $(VAR) expansion: known names are replaced, unknown references
// stay as written, $$ is a literal $.
std::string expandVars(const std::string& s, const std::map<std::string, std::string>& vars);

}  // namespace kernelet::agent
