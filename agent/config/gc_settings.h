#pragma once
// Garbage collection settings (issue #20), kept apart from config.cc so the
// eviction settings beside them merge easily: image GC's KubeletConfiguration
// fields and flags (imageGCHighThresholdPercent/--image-gc-high-threshold 85,
// imageGCLowThresholdPercent/--image-gc-low-threshold 80,
// imageMinimumGCAge/--minimum-image-ttl-duration 2m, imageMaximumGCAge 0),
// and container GC's, which the kubelet has as flags only
// (--maximum-dead-containers-per-container 1, --maximum-dead-containers -1,
// --minimum-container-ttl-duration 0).

#include <cstdint>
#include <string>

#include "images/image_gc_policy.h"
#include "sys/result.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace kernelet::agent {

// The kubelet's GCPolicy of dead containers (pkg/kubelet/container/container_gc.go).
struct ContainerGcPolicy {
  // Dead runs kept per container of a pod; < 0: no limit.
  int max_per_pod_container = 1;
  // Dead runs kept on the node in all; < 0: no limit.
  int max_containers = -1;
  // A run dead for less than this is kept, whatever the limits.
  int64_t min_age_seconds = 0;
};

Result<void> validateContainerGcPolicy(const ContainerGcPolicy& p);

// The image GC fields of a KubeletConfiguration into `p`, then the
// validation; errors name the file, line and field.
Result<void> readImageGcFields(const std::string& file, const YAML::Node& root,
                               images::ImageGcPolicy& p);

}  // namespace kernelet::agent
