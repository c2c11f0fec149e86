#pragma once
// GET /containerLogs/NS/POD/CONTAINER: a container's log over the node
// server, as the kubelet serves it to `kubectl logs` (through the API
// server's pods/log). The pod and its container statuses come from the
// agent's published snapshot; the body is a LogStream (log_stream.h), so a
// 100 MiB log or a followed one costs the server constant memory.
//
// Answers: 404 `pod "p" does not exist` / `container "c" not found in pod
// "p"` (not in the spec); 400 for bad options (naming the parameter) and for
// a container with no log to show (the kubelet's "is waiting to start: ...",
// "previous terminated container ... not found"); 200 text/plain with the
// log otherwise. A followed log ends when the container's run stops.

#include <string>

#include "agent/server/endpoints.h"
#include "agent/status/snapshot.h"

namespace kernelet::agent::logs {

// Fills `endpoints.container_logs`. `pods` must outlive the handler and the
// streams it returns (the agent owns both).
void addLogEndpoints(server::Endpoints& endpoints, const SnapshotPublisher& pods,
                     std::string pod_log_dir);

}  // namespace kernelet::agent::logs
