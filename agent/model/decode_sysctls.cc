// spec.securityContext.sysctls, checked as the API server validates them
// (validateSysctls): a name is required, in the sysctl grammar, and given
// once; a value is required. Whether the node allows one is admission's
// question (agent/lifecycle/sysctl_allowlist.h), as it is the kubelet's.

#include <set>

#include "agent/model/decode.h"
#include "agent/model/pod_names.h"

namespace kernelet::agent::decode {

Result<std::vector<Sysctl>> sysctls(const Ctx& c, const YAML::Node& list) {
  std::vector<Sysctl> out;
  std::set<std::string> names;
  auto entry = [&](const YAML::Node& s, const std::string& at) -> Result<void> {
    Sysctl k;
    TRY(k.name, str(c, s, "name", at));
    if (k.name.empty()) {
      return c.error(s, at + ".name", "Required value");
    }
    if (!isSysctlName(k.name)) {
      return c.error(s["name"], at + ".name",
                     "Invalid value: \"" + k.name +
                         "\": must have at most 253 characters and match regex "
                         "([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?");
    }
    if (!names.insert(k.name).second) {
      return c.error(s["name"], at + ".name", "Duplicate value: \"" + k.name + "\"");
    }
    TRY(auto value, opt<std::string>(c, s, "value", at));
    if (!value) {
      return c.error(s, at + ".value", "Required value");
    }
    k.value = *value;
    out.push_back(std::move(k));
    return {};
  };
  TRY_VOID(forEachEntry(c, list, "spec.securityContext.sysctls", entry));
  return out;
}

}  // namespace kernelet::agent::decode
