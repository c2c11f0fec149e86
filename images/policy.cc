#include "images/policy.h"

#include <algorithm>

#include "images/reference.h"

namespace kernelet::images {

Result<PullPolicy> pullPolicy(const std::string& policy, const std::string& image) {
  if (policy == "Always") {
    return PullPolicy::kAlways;
  }
  if (policy == "IfNotPresent") {
    return PullPolicy::kIfNotPresent;
  }
  if (policy == "Never") {
    return PullPolicy::kNever;
  }
  if (!policy.empty()) {
    return makeError("image pull policy", policy, "must be Always, IfNotPresent or Never");
  }
  TRY(Reference ref, parseReference(image));
  return ref.digest.empty() && ref.tag == "latest" ? PullPolicy::kAlways
                                                   : PullPolicy::kIfNotPresent;
}

PullDecision decidePull(PullPolicy policy, bool present) {
  switch (policy) {
    case PullPolicy::kAlways:
      return PullDecision::kPull;
    case PullPolicy::kIfNotPresent:
      return present ? PullDecision::kUsePresent : PullDecision::kPull;
    case PullPolicy::kNever:
      return present ? PullDecision::kUsePresent : PullDecision::kNeverPullAbsent;
  }
  return PullDecision::kPull;
}

std::vector<std::string> imagesToCollect(const std::vector<ImageRecord>& images,
                                         const std::vector<std::string>& in_use,
                                         uint64_t capacity_bytes, uint64_t used_bytes,
                                         const GcThresholds& t) {
  std::vector<std::string> out;
  if (capacity_bytes == 0 ||
      used_bytes * 100 < capacity_bytes * static_cast<uint64_t>(t.high_percent)) {
    return out;
  }
  uint64_t target = capacity_bytes * static_cast<uint64_t>(t.low_percent) / 100;
  uint64_t to_free = used_bytes > target ? used_bytes - target : 0;
  std::vector<const ImageRecord*> candidates;
  for (const auto& i : images) {
    if (std::find(in_use.begin(), in_use.end(), i.name) == in_use.end()) {
      candidates.push_back(&i);
    }
  }
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [](const ImageRecord* a, const ImageRecord* b) { return a->last_used < b->last_used; });
  uint64_t freed = 0;
  for (const ImageRecord* i : candidates) {
    if (freed >= to_free) {
      break;
    }
    out.push_back(i->name);
    freed += static_cast<uint64_t>(std::max<int64_t>(i->size, 0));
  }
  return out;
}

}  // namespace kernelet::images
