#pragma once
// The kubelet's garbage collection flags of `kernelet run` (issue #20), over
// what the config file says: --image-gc-high-threshold,
// --image-gc-low-threshold, --minimum-image-ttl-duration and the deprecated
// container GC ones, --maximum-dead-containers-per-container,
// --maximum-dead-containers, --minimum-container-ttl-duration.

#include <string>

#include "agent/config/config.h"
#include "sys/result.h"

namespace CLI {
class App;
}  // namespace CLI

namespace kernelet::agent {

struct GcFlags {
  int image_gc_high = 85, image_gc_low = 80;
  std::string minimum_image_ttl, minimum_container_ttl;  // Go durations
  int max_per_container = 1, max_containers = -1;
};

void addGcFlags(CLI::App* run, GcFlags& f);
// The flags given on the command line, over `config`, then the validation
// of both policies; errors name the flag (and field).
Result<void> applyGcFlags(CLI::App* run, const GcFlags& f, AgentConfig& config);

}  // namespace kernelet::agent
