#pragma once
// Which spec.securityContext.sysctls a pod may set on this node: the kubelet's
// admission (pkg/kubelet/sysctl). The safe set is always allowed; the
// allowedUnsafeSysctls patterns (--allowed-unsafe-sysctls) add more, each a
// name or a prefix ending in '*', and only ones the kernel keeps per IPC or
// network namespace: anything else would change the whole node. A pod that
// shares the node's network (hostNetwork) may set no net.* one, as it would
// be the node's. A pod that sets another is rejected with SysctlForbidden.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace kernelet::agent {

// The kubelet's admission reason for a forbidden sysctl.
constexpr std::string_view kSysctlForbidden = "SysctlForbidden";

// The kubelet's safe sysctls for a kernel of that release (uname -r, "6.1.0-18-amd64"):
// the ones every kubelet has allowed, plus those namespaced only since a
// kernel version when the running one is at least that. An unreadable release
// gets the first list only, as the kubelet does.
std::vector<std::string> safeSysctls(std::string_view kernel_release);
// The same for the running kernel.
std::vector<std::string> safeSysctls();

class SysctlAllowlist {
 public:
  // Allows nothing (a node without the safe set: tests).
  SysctlAllowlist() = default;
  // The kubelet's NewAllowlist over `patterns` (the safe set and
  // allowedUnsafeSysctls). Fails, as the kubelet fails to start, on a pattern
  // that is not in the sysctl grammar or not known to be namespaced.
  static Result<SysctlAllowlist> create(const std::vector<std::string>& patterns);
  // The safe set of the running kernel and `unsafe`.
  static Result<SysctlAllowlist> forNode(const std::vector<std::string>& unsafe);

  // nullopt when the pod may set NAME (either form: "net/ipv4/x" is
  // "net.ipv4.x"); else why not, as the kubelet words it:
  // `"kernel.msgmax" not allowlisted`, `"net.ipv4.tcp_syncookies" not allowed
  // with host net enabled`.
  std::optional<std::string> check(const std::string& name, bool host_net, bool host_ipc) const;

 private:
  std::map<std::string, std::string> sysctls_, prefixes_;  // name or prefix -> "net", "ipc"
};

// The kernel namespace the kernel keeps NAME (dotted) in: "ipc", "net", or
// "" when it is not known to be namespaced (the kubelet's NamespacedBy).
std::string sysctlNamespace(const std::string& name);

}  // namespace kernelet::agent
