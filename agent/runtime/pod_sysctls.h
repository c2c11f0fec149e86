#pragma once
// A pod's spec.securityContext.sysctls, written once into the namespaces its
// containers share (what a CRI runtime does to the pod sandbox), so that every
// container sees them and the node's values stay as they were.

#include <string>
#include <vector>

#include "agent/model/pod.h"
#include "sys/result.h"

namespace kernelet::agent {

// Writes each sysctl through /proc/sys from a thread of ours that joined the
// IPC namespace held at `ipc_ns` and the network namespace held at `net_ns`
// (empty: the node's, which then takes no net.* one). Each name, in either
// form, is checked first as `kernelet oci` checks a container's
// (isolation::validateSysctl): admission already allowed it, but what is
// written here must never reach a namespace of the node.
Result<void> writePodSysctls(const std::vector<Sysctl>& sysctls, const std::string& ipc_ns,
                             const std::string& net_ns);

// "net.ipv4.ip_local_port_range" (or "net/ipv4/ip_local_port_range") ->
// "net/ipv4/ip_local_port_range", the path under /proc/sys.
std::string sysctlProcPath(const std::string& name);

}  // namespace kernelet::agent
