#include "isolation/capabilities.h"

#include <sys/prctl.h>

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
    if (cap_from_name(n.c_str(), &v) != 0) {
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
  p.state_ = cap_init();
  if (p.state_ == nullptr) {
    return sysError("cap_init");
  }
  auto set = [&](cap_flag_t flag, std::vector<cap_value_t>& v) -> Result<void> {
    if (!v.empty() &&
        cap_set_flag(p.state_, flag, static_cast<int>(v.size()), v.data(), CAP_SET) != 0) {
      return sysError("cap_set_flag");
    }
    return {};
  };
  TRY_VOID(set(CAP_EFFECTIVE, effective));
  TRY_VOID(set(CAP_PERMITTED, permitted));
  TRY_VOID(set(CAP_INHERITABLE, inheritable));
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
  if (cap_set_proc(state_) != 0) {
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
