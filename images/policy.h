#pragma once
// When to pull, and which images to remove when the disk fills: the kubelet's
// rules for imagePullPolicy and image garbage collection.

#include <cstdint>
#include <string>
#include <vector>

#include "images/image_store.h"
#include "sys/result.h"

namespace kernelet::images {

enum class PullPolicy { kAlways, kIfNotPresent, kNever };

// "Always", "IfNotPresent", "Never"; empty takes the default for `image`:
// Always for :latest or no tag (and no digest), IfNotPresent otherwise.
Result<PullPolicy> pullPolicy(const std::string& policy, const std::string& image);

enum class PullDecision { kUsePresent, kPull, kNeverPullAbsent };
PullDecision decidePull(PullPolicy policy, bool present);

struct GcThresholds {
  int high_percent = 85;  // imageGCHighThresholdPercent
  int low_percent = 80;   // imageGCLowThresholdPercent
};

// The images to remove, least recently used first, so that usage drops to the
// low threshold once it went above the high one. Images in `in_use` are kept
// whatever it costs. Sizes are the records' sizes.
std::vector<std::string> imagesToCollect(const std::vector<ImageRecord>& images,
                                         const std::vector<std::string>& in_use,
                                         uint64_t capacity_bytes, uint64_t used_bytes,
                                         const GcThresholds& thresholds = {});

}  // namespace kernelet::images
