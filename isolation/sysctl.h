#pragma once
// Which sysctls a container may set. A sysctl is written through /proc/sys in
// the container's namespaces while it still holds every capability, so only
// the ones the kernel keeps per namespace are safe: anything else (say
// kernel.core_pattern) would change the whole host. The rules are runc's and
// crun's: IPC ones need a private IPC namespace, net.* a private network
// namespace, kernel.hostname and kernel.domainname a private UTS namespace.

#include <string>

#include "sys/result.h"

namespace kernelet::isolation {

// An error (op "sysctl", path NAME, detail the reason) unless NAME may be set in
// a container with those private namespaces. The name must be in dotted form
// ("net.ipv4.ip_forward"): it becomes a /proc/sys path, so "/", NUL and empty
// components (hence "..") are refused.
Result<void> validateSysctl(const std::string& name, bool private_net, bool private_uts,
                            bool private_ipc);

}  // namespace kernelet::isolation
