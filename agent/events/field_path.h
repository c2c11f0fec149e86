#pragma once
// Which part of a pod an Event is about: involvedObject.fieldPath for a
// container, as the kubelet's GenerateContainerRef writes it, so that
// `kubectl describe pod` and event filters (`--field-selector
// involvedObject.fieldPath=...`) see the same strings on a kernelet node.

#include <string>

#include "agent/model/pod.h"

namespace kernelet::agent {

// "spec.containers{NAME}", "spec.initContainers{NAME}" or
// "spec.ephemeralContainers{NAME}", looked up in that order (the kubelet's).
// Empty for no container (an event about the pod itself) and for a name the
// pod does not have: the kubelet makes no reference then.
std::string containerFieldPath(const Pod& pod, const std::string& container);

}  // namespace kernelet::agent
