#pragma once
// Where the agent's own metrics are counted from outside agent/: the API
// client reports its requests through apiclient's observer hook (apiclient
// must not depend on agent). The lead's start-up code calls this once.

#include "agent/stats/metrics.h"

namespace kernelet::agent::stats {

// Counts every API request in `metrics.rest_client_requests`
// {code ("<error>" when no answer came, as client-go), host, method}.
void installApiRequestMetrics(KubeletMetrics& metrics = kubeletMetrics());
// Takes the observer away again (tests; shutdown).
void uninstallApiRequestMetrics();

}  // namespace kernelet::agent::stats
