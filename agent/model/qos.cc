#include "agent/model/qos.h"

#include <algorithm>

namespace kernelet::agent {

namespace {
constexpr const char* kComputeResources[] = {"cpu", "memory"};
}

const char* qosName(QosClass q) {
  switch (q) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
  }
  return "BestEffort";
}

QosClass podQos(const std::vector<ContainerResources>& containers) {
  bool any = false;
  bool guaranteed = true;
  for (const auto& c : containers) {
    for (const char* r : kComputeResources) {
      auto limit = c.limits.find(r);
      auto request = c.requests.find(r);
      bool has_limit = limit != c.limits.end() && limit->second > apiclient::Quantity::fromInt(0);
      bool has_request =
          request != c.requests.end() && request->second > apiclient::Quantity::fromInt(0);
      any = any || has_limit || has_request;
      if (!has_limit) {
        guaranteed = false;
      } else if (has_request && !(request->second == limit->second)) {
        guaranteed = false;  // an unset request defaults to the limit
      }
    }
  }
  if (!any) {
    return QosClass::kBestEffort;
  }
  return guaranteed ? QosClass::kGuaranteed : QosClass::kBurstable;
}

int oomScoreAdj(QosClass qos, const ContainerResources& c, int64_t node_memory_bytes) {
  if (qos == QosClass::kGuaranteed) {
    return -997;
  }
  if (qos == QosClass::kBestEffort) {
    return 1000;
  }
  int64_t request = 0;
  if (auto it = c.requests.find("memory"); it != c.requests.end()) {
    request = it->second.value();
  }
  int64_t adj =
      node_memory_bytes > 0
          ? 1000 - static_cast<int64_t>((static_cast<__int128>(1000) * request) / node_memory_bytes)
          : 1000;
  // Never as protected as Guaranteed (-997 + 1000 = 3), never BestEffort's 1000.
  return static_cast<int>(std::clamp<int64_t>(adj, 3, 999));
}

}  // namespace kernelet::agent
