#pragma once
// When to pull: the kubelet's rules for imagePullPolicy.

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

}  // namespace kernelet::images
