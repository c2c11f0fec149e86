#pragma once
// The server's own endpoints beside /healthz: /pods (a v1 PodList of the
// pods this node runs, from the read-only snapshot: each pod's metadata, its
// spec as its source gave it, and its status) and /configz (the settings in
// effect, with KubeletConfiguration v1beta1's field names). Both answer on
// the server's thread from data that is never changed under them.

#include <functional>
#include <memory>
#include <string>

#include "agent/config/config.h"
#include "agent/server/endpoints.h"
#include "agent/status/snapshot.h"

namespace kernelet::agent::server {

// The PodList of a snapshot.
std::string podListJson(const NodeSnapshot& snapshot);
// {"kubeletconfig": {...}}
std::string configzJson(const AgentConfig& config);
// A Go duration as Go prints it: 120 -> "2m0s", 30 -> "30s", 3600 -> "1h0m0s".
std::string goDuration(int64_t seconds);

// Fills endpoints.pods and endpoints.configz. `snapshots` must outlive the server.
void addNodeEndpoints(Endpoints& endpoints, const SnapshotPublisher& snapshots,
                      const AgentConfig& config);

}  // namespace kernelet::agent::server
