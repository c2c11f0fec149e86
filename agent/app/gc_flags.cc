#include "agent/app/gc_flags.h"

#include <CLI/CLI.hpp>

namespace kernelet::agent {

void addGcFlags(CLI::App* run, GcFlags& f) {
  run->add_option("--image-gc-high-threshold", f.image_gc_high,
                  "percent of the image filesystem used at which image garbage collection "
                  "always runs (imageGCHighThresholdPercent; 0-100)")
      ->capture_default_str();
  run->add_option("--image-gc-low-threshold", f.image_gc_low,
                  "percent used that image garbage collection frees down to, never run below "
                  "it (imageGCLowThresholdPercent; less than the high threshold)")
      ->capture_default_str();
  run->add_option("--minimum-image-ttl-duration", f.minimum_image_ttl,
                  "minimum age of an unused image before it is garbage collected, e.g. 2m "
                  "(imageMinimumGCAge; default 2m)");
  run->add_option("--maximum-dead-containers-per-container", f.max_per_container,
                  "dead runs of a container kept (their logs); < 0: no limit (deprecated in "
                  "the kubelet, kept for its users)")
      ->capture_default_str();
  run->add_option("--maximum-dead-containers", f.max_containers,
                  "dead container runs kept on the node in all; < 0: no limit")
      ->capture_default_str();
  run->add_option("--minimum-container-ttl-duration", f.minimum_container_ttl,
                  "minimum age of a dead container run before it is garbage collected "
                  "(default 0)");
}

Result<void> applyGcFlags(CLI::App* run, const GcFlags& f, AgentConfig& config) {
  auto given = [run](const char* name) { return run->count(name) > 0; };
  images::ImageGcPolicy& image = config.image_gc;
  if (given("--image-gc-high-threshold")) {
    image.high_threshold_percent = f.image_gc_high;
  }
  if (given("--image-gc-low-threshold")) {
    image.low_threshold_percent = f.image_gc_low;
  }
  if (given("--minimum-image-ttl-duration")) {
    TRY(image.min_age_seconds,
        parseDurationSeconds(f.minimum_image_ttl, "--minimum-image-ttl-duration"));
  }
  ContainerGcPolicy& container = config.container_gc;
  if (given("--maximum-dead-containers-per-container")) {
    container.max_per_pod_container = f.max_per_container;
  }
  if (given("--maximum-dead-containers")) {
    container.max_containers = f.max_containers;
  }
  if (given("--minimum-container-ttl-duration")) {
    TRY(container.min_age_seconds,
        parseDurationSeconds(f.minimum_container_ttl, "--minimum-container-ttl-duration"));
  }
  TRY_VOID(images::validateImageGcPolicy(image));
  return validateContainerGcPolicy(container);
}

}  // namespace kernelet::agent
