#pragma once
// Where a request of the node server goes, and what the authorizer is asked
// about it, from its method and raw target alone (no I/O): the path is split
// from the query, each segment percent-decoded on its own and refused if it
// is empty, "." or "..", or decodes to a '/', a NUL or invalid UTF-8; the
// names in it (namespace, pod, uid, container) are checked as the API server
// checks them, before any module builds a path from them.
//
// Authorization attributes follow the kubelet (KUBELET-SERVER.md): resource
// nodes, subresource from the path, verb from the method; stricter than the
// kubelet, every path that runs something in a container (/exec, /attach,
// /portForward, /run) is verb "create" whatever the method, so a WebSocket
// upgrade (a GET) by a user allowed only "get nodes/proxy" runs nothing.

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "agent/server/query.h"

namespace kernelet::agent::server {

enum class Endpoint {
  kNotFound,  // no such path: 404 once authorized (as proxy), as the kubelet
  kHealthz,
  kPods,
  kConfigz,
  kRun,
  kExec,
  kAttach,
  kPortForward,
  kContainerLogs,
  kStatsSummary,
  kMetrics,
  kMetricsResource,
  kMetricsCadvisor,
  kMetricsProbes,
};

// What the authorizer is asked: verb on nodes/NODE/SUBRESOURCE. The
// subresources are tried in order until one is allowed (the kubelet's
// fine-grained healthz/pods/configz fall back to proxy).
struct AccessAttributes {
  std::string verb;
  std::vector<std::string> subresources;
};

struct Route {
  Endpoint endpoint = Endpoint::kNotFound;
  std::string path;                 // decoded
  std::vector<std::string> params;  // NS, POD, [UID,] CONTAINER
  Query query;
  AccessAttributes access;
};

// A request refused before authentication: 400 (bad path or query), 405.
struct RouteError {
  int status = 400;
  std::string message;
};

std::expected<Route, RouteError> route(std::string_view method, std::string_view target);

// The kubelet's verb for an HTTP method; empty for a method it has none for.
std::string verbFor(std::string_view method);

bool isValidUtf8(std::string_view s);

}  // namespace kernelet::agent::server
