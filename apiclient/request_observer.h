#pragma once
// A hook for counting the API client's requests (rest_client_requests_total)
// without apiclient knowing who counts: the agent sets one observer at
// start-up (agent/stats: installApiRequestMetrics) and every answered or
// failed request is reported to it, from whichever thread made it.

#include <functional>
#include <string>

namespace kernelet::apiclient {

struct RequestObservation {
  std::string method;  // GET, POST, ...
  std::string host;    // the server's host:port, as client-go's label
  int code = 0;        // the HTTP status; 0: no answer (client-go's "<error>")
};

using RequestObserver = std::function<void(const RequestObservation&)>;

// Replaces the observer (nullptr: none). Safe at any time, from any thread.
void setRequestObserver(RequestObserver observer);
// Reports one request to the observer, if any.
void observeRequest(const RequestObservation& observation);

}  // namespace kernelet::apiclient
