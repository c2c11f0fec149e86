#pragma once
// Who a container's process is when it starts (containerStatuses[].user):
// what the runtime reports, records for the next agent, and the status shows.

#include <cstdint>
#include <vector>

namespace kernelet::agent::runtime {

// `groups`: its supplementary groups, the primary gid first, as the CRI
// reports them (the kubelet shows them as user.linux.supplementalGroups).
struct ProcessUser {
  int64_t uid = 0, gid = 0;
  std::vector<int64_t> groups;
};

}  // namespace kernelet::agent::runtime
