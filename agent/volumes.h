#pragma once
// A pod's volumes on the host, laid out as the kubelet lays them out under
// ROOT/pods/<uid>/volumes/<plugin>/<name>: emptyDir (a directory, or tmpfs for
// medium Memory with sizeLimit), hostPath with its type checks, downwardAPI
// files written with the kubelet's ..data symlink swap.

#include <map>
#include <optional>
#include <string>

#include "agent/field_refs.h"
#include "agent/pod.h"
#include "sys/result.h"

namespace kernelet::agent {

class PodVolumes {
 public:
  // All or nothing: on failure what was made is taken down again. Errors name
  // the volume, e.g. volume "data": hostPath `/srv/x`: type Directory: not a directory.
  static Result<PodVolumes> setUp(const Pod& pod, const std::string& pod_dir,
                                  const PodRuntimeInfo& info);
  // Unmounts tmpfs volumes and deletes the pod's volume dirs (hostPath is left alone).
  Result<void> tearDown();

  // The host path a volume mount binds, or nothing for an unknown volume.
  std::optional<std::string> hostPath(const std::string& volume) const;

 private:
  std::string dir_;  // ROOT/pods/<uid>/volumes
  std::map<std::string, std::string> paths_;
  std::vector<std::string> tmpfs_;
};

}  // namespace kernelet::agent
