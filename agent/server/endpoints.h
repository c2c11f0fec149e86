#pragma once
// The node server's endpoints, by what they serve. The server
// (agent/server/server.h) owns the paths, their authorization attributes and
// the parsing; each module fills the handlers of what it owns:
//   agent/server: pods, configz, run          (server/node_endpoints.h)
//   agent/logs:   container_logs              (logs/logs_endpoint.h: addLogEndpoints)
//   agent/stats:  stats_summary, metrics_*    (stats/stats_endpoints.h: addStatsEndpoints)
//   agent/streams: exec, attach, port_forward (streams/*_endpoint.h), which
//                  take the connection over (streams/upgrade.h)
// /healthz is the server's own. A handler left empty answers 404.

#include "agent/server/handler.h"
#include "agent/streams/upgrade.h"

namespace kernelet::agent::server {

struct Endpoints {
  Handler pods;            // GET /pods: a v1 PodList
  Handler configz;         // GET /configz: {"kubeletconfig": {...}}
  Handler run;             // POST /run/NS/POD/[UID/]CONTAINER?cmd=...
  Handler container_logs;  // GET /containerLogs/NS/POD/CONTAINER
  Handler stats_summary;   // GET /stats/summary
  Handler metrics;         // GET /metrics (the agent's own)
  Handler metrics_resource, metrics_cadvisor, metrics_probes;  // GET /metrics/...
  // /exec/NS/POD/[UID/]CONTAINER, /attach/..., /portForward/NS/POD[/UID]:
  // upgraded connections. Empty: 501 "not implemented".
  streams::UpgradeHandler exec, attach, port_forward;
};

}  // namespace kernelet::agent::server
