#pragma once
// A pod's volumes on the host, laid out as the kubelet lays them out under
// ROOT/pods/<uid>/volumes/<plugin>/<name>: emptyDir (a directory, or tmpfs for
// medium Memory with sizeLimit), hostPath with its type checks, and the
// projected kinds - downwardAPI, configMap, secret, projected (tokens too) -
// written with the kubelet's ..data symlink swap and rewritten when their
// sources change. secret, projected and downwardAPI volumes are tmpfs, so
// their contents never reach a disk.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/field_refs.h"
#include "agent/model/pod.h"
#include "agent/sources/pod_objects.h"
#include "sys/result.h"

namespace kernelet::agent {

class PodVolumes {
 public:
  // All or nothing: on failure what was made is taken down again. Errors name
  // the volume, e.g. volume "data": hostPath `/srv/x`: type Directory: not a directory.
  // `objects` is null without an API server (configMap, secret and token sources fail).
  static Result<PodVolumes> setUp(const Pod& pod, const std::string& pod_dir,
                                  const PodRuntimeInfo& info, PodObjects* objects);
  // Rewrites the projected kinds whose sources changed; true when a file changed.
  // On an error (a ConfigMap deleted) the volume keeps its files.
  Result<bool> refresh(const Pod& pod, const PodRuntimeInfo& info, PodObjects* objects);
  // Unmounts tmpfs volumes and deletes the pod's volume dirs (hostPath is left alone).
  Result<void> tearDown();

  // What setUp made, as a previous agent recorded it (run_records.h): nothing
  // is mounted or written again.
  struct Layout {
    std::string dir;
    std::map<std::string, std::string> paths;
    std::vector<std::string> tmpfs, projected;
  };
  Layout layout() const { return {dir_, paths_, tmpfs_, projected_}; }
  static PodVolumes adopt(Layout layout);

  // The host path a volume mount binds, or nothing for an unknown volume.
  std::optional<std::string> hostPath(const std::string& volume) const;

 private:
  std::string dir_;  // ROOT/pods/<uid>/volumes
  std::map<std::string, std::string> paths_;
  std::vector<std::string> tmpfs_;
  std::vector<std::string> projected_;  // names of volumes written by the atomic writer
};

}  // namespace kernelet::agent
