#pragma once
// Capability sets by name -> libcap state, built in the parent; the child side
// only applies it (no allocation after clone).

#include <sys/capability.h>

#include <utility>
#include <vector>

#include "isolation/container_spec.h"
#include "sys/result.h"

namespace kernelet::isolation {

class CapabilityPlan {
 public:
  CapabilityPlan() = default;
  CapabilityPlan(CapabilityPlan&& o) noexcept
      : state_(std::exchange(o.state_, nullptr)),
        drop_bounding_(std::move(o.drop_bounding_)),
        ambient_(std::move(o.ambient_)) {}
  CapabilityPlan& operator=(CapabilityPlan&& o) noexcept {
    std::swap(state_, o.state_);
    drop_bounding_ = std::move(o.drop_bounding_);
    ambient_ = std::move(o.ambient_);
    return *this;
  }
  ~CapabilityPlan() {
    if (state_ != nullptr) {
      cap_free(state_);
    }
  }

  // Unknown names are an error naming the set and the name.
  static Result<CapabilityPlan> build(const Capabilities& caps);

  // Child side, in this order: dropBounding() while still privileged, then the
  // uid switch (with PR_SET_KEEPCAPS), then applySets(). Return 0 or an errno and
  // set *op to what failed.
  int dropBounding(const char** op) const;
  int applySets(const char** op) const;

 private:
  cap_t state_ = nullptr;  // effective, permitted, inheritable
  std::vector<cap_value_t> drop_bounding_;
  std::vector<cap_value_t> ambient_;
};

}  // namespace kernelet::isolation
