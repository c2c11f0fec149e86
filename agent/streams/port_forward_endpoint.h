#pragma once
// /portForward/NAMESPACE/POD[/UID] on the node's server: checks the request
// as the kubelet does (the WebSocket `port` query, then the pod), answers the
// upgrade (SPDY portforward.k8s.io; WebSocket v4.channel.k8s.io /
// v4.base64.channel.k8s.io; or SPDY tunneled in WebSocket,
// SPDY/3.1+portforward.k8s.io, which kubectl tries first: spdy_tunnel.h),
// then serves port-forward (port_forward.h). The protocol a connection got
// is logged at -v=2.
//
// The kubelet's answers before any upgrade:
//   400 query parameter "port" is required        (WebSocket channels only)
//   400 unable to parse "x" as a port: strconv.ParseUint: parsing "x": invalid syntax
//   400 port "0" must be > 0
//   404 pod does not exist                        (no such pod on this node)
//   404 pod not found                             (the path's UID is not the pod's)

#include <cstdint>
#include <string>
#include <vector>

#include "agent/server/query.h"
#include "agent/streams/pod_access.h"
#include "agent/streams/port_forward.h"
#include "agent/streams/upgrade.h"

namespace kernelet::agent::streams {

// `base` sets the timeouts and chunk size (its pod and channels are filled
// in per request).
UpgradeHandler portForwardHandler(PodExists pod_exists, PortDialer dialer,
                                  PortForwardOptions base = {});

// The WebSocket request's ports, from every `port` value, each a
// comma-separated list (kubelet's NewV4Options); the error is the 400's text.
Result<std::vector<uint16_t>> parsePortQuery(const server::Query& query);

// At most this many ports per WebSocket session: port i uses channels 2i and
// 2i+1, and a channel is one byte.
constexpr size_t kMaxForwardedPorts = 128;

}  // namespace kernelet::agent::streams
