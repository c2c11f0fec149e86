#pragma once
// The names a pod carries, checked as the API server validates them, before
// any path is built from them: the log directory is
// <namespace>_<name>_<uid>/<container>, the volumes live under pods/<uid>.
//   metadata.name       DNS subdomain (at most 253)
//   metadata.namespace  DNS label (at most 63)
//   metadata.uid        at most 128 of [A-Za-z0-9._-], without ".." (UUIDs,
//                       which the API server generates, and the static pods'
//                       hashes fit): it is one path component
//   containers' names, spec.hostname, spec.subdomain: DNS labels

#include <optional>
#include <string>

#include "agent/model/pod.h"

namespace kernelet::agent {

bool isDnsLabel(const std::string& s);
bool isDnsSubdomain(const std::string& s);

// The first name the API server would refuse, as its field error:
// `metadata.namespace: Invalid value: "../x": must be a DNS label (...)`.
std::optional<std::string> invalidPodName(const Pod& pod);

}  // namespace kernelet::agent
