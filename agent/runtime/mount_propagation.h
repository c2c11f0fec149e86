#pragma once
// volumeMounts[].mountPropagation needs the node's side to propagate: a
// HostToContainer source must be on a shared or slave mount, a Bidirectional
// one on a shared mount, as containerd checks before it creates the container
// (its ensureShared / ensureSharedOrSlave, with its messages). kernelet's
// mounts in the agent's namespace are what it checks.

#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::agent {

// The propagation of the mount `path` lies on, from a mountinfo text: the
// last listed mount whose mount point is `path` or one of its parents, the
// longest first. "shared" (a shared:N field), "slave" (master:N only),
// "private"; empty when no mount covers it. `path` must be absolute and
// without symlinks.
std::string mountPropagationIn(std::string_view mountinfo, const std::string& path);

// Checks `source` (a volume's host path) for the `mode` of a volume mount
// ("None" passes without a look) against /proc/self/mountinfo.
Result<void> checkPropagationSource(const std::string& source, const std::string& mode);

}  // namespace kernelet::agent
