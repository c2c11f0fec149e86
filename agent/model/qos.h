#pragma once
// The kubelet's resource arithmetic for a pod: its QoS class and each
// container's oom_score_adj.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "apiclient/quantity.h"

namespace kernelet::agent {

using ResourceList = std::map<std::string, apiclient::Quantity>;  // "cpu", "memory", ...

struct ContainerResources {
  ResourceList requests;
  ResourceList limits;
  bool operator==(const ContainerResources&) const = default;
};

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };
const char* qosName(QosClass q);  // "Guaranteed", "Burstable", "BestEffort"

// As the kubelet's GetPodQOS: BestEffort when no container (init included) sets
// a cpu or memory request or limit; Guaranteed when every container limits cpu
// and memory and requests (defaulted to the limits) equal them; else Burstable.
QosClass podQos(const std::vector<ContainerResources>& containers);

// As GetContainerOOMScoreAdjust: Guaranteed -997, BestEffort 1000, Burstable
// 1000 - 1000 * memory request / node memory, kept within [3, 999].
int oomScoreAdj(QosClass qos, const ContainerResources& c, int64_t node_memory_bytes);

}  // namespace kernelet::agent
