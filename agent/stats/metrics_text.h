#pragma once
// The Prometheus pages of the node server, from a Summary or a snapshot:
//   /metrics/resource  what metrics-server reads (the kubelet's resource_metrics.go names)
//   /metrics/cadvisor  container_* per cgroup, with cadvisor's labels
//   /metrics           the agent's own: running pods and containers, the
//                      KubeletMetrics registry, process_*
// Families are written sorted by name, as client_golang's Gather does.

#include <string>

#include "agent/stats/metrics.h"
#include "agent/stats/summary.h"
#include "agent/status/snapshot.h"

namespace kernelet::agent::stats {

// `scrape_error`: 1 if the summary could not be read completely.
std::string resourceMetricsText(const Summary& summary, bool scrape_error);

// Pod-level rows (network, and the pod group's cpu and memory) have
// container="" and the pod group as id, as cadvisor shows the pod's own cgroup.
// The pod groups' paths come from `snapshot`.
std::string cadvisorMetricsText(const Summary& summary, const NodeSnapshot& snapshot);

// kubelet_running_pods, kubelet_running_containers, then `registry`, then
// process_* of this process read from `proc` (/proc).
std::string agentMetricsText(const NodeSnapshot& snapshot, const Registry& registry,
                             const std::string& proc = "/proc");

}  // namespace kernelet::agent::stats
