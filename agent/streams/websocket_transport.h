#pragma once
// The WebSocket framing of a stream endpoint (RFC 6455 over Beast): each
// message starts with its channel byte (base64.channel.k8s.io: a channel
// digit and base64 text), and v5.channel.k8s.io adds the CLOSE signal
// (channel 255, payload: the channel the client half-closes).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/streams/upgrade.h"

namespace kernelet::agent::streams {

// The channels a negotiated protocol has, fixed at the upgrade (WebSocket
// has no stream creation): for exec, stdin 0, stdout 1, stderr 2, error 3,
// resize 4 as the query asked for them; for port-forward, per port a data
// and an error channel.
struct ChannelPlan {
  std::vector<std::pair<StreamId, StreamHeaders>> channels;
  // Port-forward: each channel's first message to the client starts with
  // its port, two bytes little-endian, as the kubelet sends them.
  bool port_prefix = false;
};

// Answers the upgrade (101 with the first of `supported` the client's
// Sec-WebSocket-Protocol offers), or the kubelet's error. `done` gets the
// transport, not yet started; start() reports every channel of
// `plan(protocol)` as opened.
void acceptWebSocket(std::shared_ptr<UpgradedConnection> conn,
                     const std::vector<std::string>& supported, PlanFor plan, AcceptDone done);

}  // namespace kernelet::agent::streams
