#include "agent/stats/instrumentation.h"

#include "apiclient/request_observer.h"

namespace kernelet::agent::stats {

void installApiRequestMetrics(KubeletMetrics& metrics) {
  apiclient::setRequestObserver([&metrics](const apiclient::RequestObservation& o) {
    std::string code = o.code == 0 ? "<error>" : std::to_string(o.code);
    metrics.rest_client_requests.add({code, o.host, o.method});
  });
}

void uninstallApiRequestMetrics() { apiclient::setRequestObserver(nullptr); }

}  // namespace kernelet::agent::stats
