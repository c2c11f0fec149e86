#pragma once
// The pods' statuses as the previous agent last wrote them
// (ROOT/pods/<uid>/status.json, see status/status_files.h), read once at start
// before anything removes or rewrites them. An adopted container keeps its
// `ready` from there until its readiness probe says otherwise
// (lifecycle/adoption.cc), so restarting the agent does not flap Ready.

#include <map>
#include <string>
#include <vector>

#include "agent/status/pod_status.h"

namespace kernelet::agent {

struct LastStatuses {
  std::map<std::string, PodStatus> by_uid;
  // One per file that could not be read or parsed, naming it: reported, and
  // the pod is adopted without (its containers start not ready).
  std::vector<std::string> errors;
};

// `pods_dir` is ROOT/pods; a missing directory is no error. A file whose pod
// uid is not its directory's name is refused (it would be another pod's).
LastStatuses readLastStatuses(const std::string& pods_dir);

}  // namespace kernelet::agent
