#include "isolation/capabilities.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

namespace kernelet::isolation {

namespace {

Result<std::vector<cap_value_t>> resolve(const std::vector<std::string>& names,
                                         const std::string& set) {
  std::vector<cap_value_t> out;
  for (const std::string& n : names) {
    cap_value_t v;
    // capset(2) takes 64 bits: a number beyond them is no capability.
    if (cap_from_name(n.c_str(), &v) != 0 || v < 0 || v >= 32 * _LINUX_CAPABILITY_U32S_3) {
      return makeError("capabilities", set, "unknown capability \"" + n + "\"");
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace

Result<CapabilityPlan> CapabilityPlan::build(const Capabilities& caps) {
  CapabilityPlan p;
  TRY(auto bounding, resolve(caps.bounding, "bounding"));
  TRY(auto effective, resolve(caps.effective, "effective"));
  TRY(auto permitted, resolve(caps.permitted, "permitted"));
  TRY(auto inheritable, resolve(caps.inheritable, "inheritable"));
  TRY(auto ambient, resolve(caps.ambient, "ambient"));
  // The kernel admits an ambient capability only if it is permitted and
  // inheritable; crun and runc skip the others (`crun spec` lists ambient
  // capabilities with an empty inheritable set), and so do we.
  for (cap_value_t c : ambient) {
    if (std::ranges::count(permitted, c) > 0 && std::ranges::count(inheritable, c) > 0) {
      p.ambient_.push_back(c);
    }
  }

  std::set<cap_value_t> keep(bounding.begin(), bounding.end());
  for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
    if (!keep.contains(c)) {
      p.drop_bounding_.push_back(c);
    }
  }
  auto set = [&](__u32 __user_cap_data_struct::*field, const std::vector<cap_value_t>& v) {
    for (cap_value_t c : v) {
      p.sets_[CAP_TO_INDEX(c)].*field |= CAP_TO_MASK(c);
    }
  };
  set(&__user_cap_data_struct::effective, effective);
  set(&__user_cap_data_struct::permitted, permitted);
  set(&__user_cap_data_struct::inheritable, inheritable);
  return p;
}

int CapabilityPlan::dropBounding(const char** op) const {
  for (cap_value_t c : drop_bounding_) {
    // EINVAL: a capability this kernel does not know; nothing to drop.
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
      *op = "prctl PR_CAPBSET_DROP";
      return errno;
    }
  }
  return 0;
}

int CapabilityPlan::applySets(const char** op) const {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  if (::syscall(SYS_capset, &header, sets_) != 0) {
    *op = "capset";
    return errno;
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    *op = "prctl PR_CAP_AMBIENT_CLEAR_ALL";
    return errno;
  }
  for (cap_value_t c : ambient_) {
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0) {
      *op = "prctl PR_CAP_AMBIENT_RAISE";
      return errno;
    }
  }
  return 0;
}

}  // namespace kernelet::isolation
