#pragma once
// Fills the stats and metrics handlers of the node server:
//   GET /stats/summary[?only_cpu_and_memory=true]   application/json
//   GET /metrics/resource, /metrics/cadvisor, /metrics/probes, /metrics
//                                                   Prometheus text 0.0.4
// Each request is answered from the StatsService's thread, never built on the
// server's; when too many wait, 503. The handlers own the service (started
// here): it lives as long as the last copy of them.

#include <memory>

#include "agent/server/endpoints.h"
#include "agent/stats/stats_service.h"

namespace kernelet::agent::stats {

// Returns the service too, for a caller that wants to look at it (tests, the
// agent's shutdown); the handlers keep it alive on their own.
std::shared_ptr<StatsService> addStatsEndpoints(server::Endpoints& endpoints,
                                                const StatsContext& ctx);

}  // namespace kernelet::agent::stats
