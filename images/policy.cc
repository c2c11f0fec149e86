#include "images/policy.h"

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

}  // namespace kernelet::images
