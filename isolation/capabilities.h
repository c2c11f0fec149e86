#pragma once
// Capability sets by name -> the kernel's capset(2) words, built in the
// parent; the child side only makes raw system calls (libcap's cap_set_proc
// takes the cap_t's lock and, linked with libpsx, broadcasts to all threads:
// neither may happen in a child cloned from a multi-threaded agent).

#include <sys/capability.h>

#include <vector>

#include "isolation/container_spec.h"
#include "sys/result.h"

namespace kernelet::isolation {

class CapabilityPlan {
 public:
  // Unknown names are an error naming the set and the name.
  static Result<CapabilityPlan> build(const Capabilities& caps);

  // Child side, in this order: dropBounding() while still privileged, then the
  // uid switch (with PR_SET_KEEPCAPS), then applySets(). Return 0 or an errno and
  // set *op to what failed.
  int dropBounding(const char** op) const;
  int applySets(const char** op) const;

 private:
  // Effective, permitted and inheritable as capset(2) takes them: 64 bits in
  // two 32-bit words (_LINUX_CAPABILITY_VERSION_3).
  __user_cap_data_struct sets_[_LINUX_CAPABILITY_U32S_3] = {};
  std::vector<cap_value_t> drop_bounding_;
  std::vector<cap_value_t> ambient_;
};

}  // namespace kernelet::isolation
