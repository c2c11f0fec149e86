#include "agent/events/field_path.h"

namespace kernelet::agent {

namespace {

template <typename List>
bool has(const List& list, const std::string& name) {
  for (const auto& c : list) {
    if (c.name == name) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string containerFieldPath(const Pod& pod, const std::string& container) {
  if (container.empty()) {
    return "";
  }
  // Names are unique across the three lists (the API and the decoder refuse
  // a repeat), so the order only matters as the kubelet's does.
  if (has(pod.containers, container)) {
    return "spec.containers{" + container + "}";
  }
  if (has(pod.init_containers, container)) {
    return "spec.initContainers{" + container + "}";
  }
  if (has(pod.ephemeral_containers, container)) {
    return "spec.ephemeralContainers{" + container + "}";
  }
  return "";
}

}  // namespace kernelet::agent
