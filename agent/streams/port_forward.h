#pragma once
// Port-forward on an upgraded connection (a Transport), as the kubelet's
// pkg/kubelet/cri/streaming/portforward serves it:
// - SPDY (portforward.k8s.io): per forwarded connection the client opens an
//   "error" and a "data" stream carrying the same `port` and `requestID`
//   headers, in either order; both must be there within the stream creation
//   timeout (the kubelet's 30 s), else the error stream says "timed out
//   waiting for streams". Once paired, the port is dialed in the pod; bytes
//   are copied both ways; a dial failure is written on the error stream
//   ("error forwarding port 8080 to pod NS/NAME, uid UID: failed to connect
//   to localhost:8080 inside namespace ..."). Many pairs run at once.
// - WebSocket channels (v4.channel.k8s.io): the ports are fixed by the
//   request's `port` query; port i has data channel 2i and error channel
//   2i+1 (the framing sends each channel's 2-byte port prefix); every port
//   is dialed once at the start, and the connection ends when all are done.
//
// Flow control: bytes from the client are consumed() once they reached the
// socket; the socket is read again only after the previous chunk was sent,
// so neither a slow pod nor a slow client makes the agent buffer more than
// a chunk per connection.
//
// A forwarded connection ends when both directions have ended (client FIN ->
// shutdown(SHUT_WR) on the socket; socket EOF -> finish() on the data
// stream), or `linger` after the first did (containerd's 1 s: a peer that
// stopped sending is not waited on forever), or when the client resets
// either stream (the other is reset too), or the connection goes.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/streams/pod_access.h"
#include "agent/streams/transport.h"
#include "agent/streams/websocket_transport.h"

namespace kernelet::agent::streams {

struct PortForwardOptions {
  PodRef pod;
  // WebSocket channels (see above) instead of SPDY stream pairs.
  bool channels = false;
  std::chrono::milliseconds stream_creation_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds linger = std::chrono::seconds(1);
  size_t read_chunk = 64 * 1024;  // bytes read from a socket per write to the client
};

// Starts the transport and serves port-forward on it until the connection
// ends. Call on the transport's executor; owns itself from then on.
void servePortForward(std::shared_ptr<Transport> transport, PortForwardOptions options,
                      PortDialer dialer);

// The channels of WebSocket port-forward for `ports` (the `port` query, in
// order): data 2i, error 2i+1, each with its port; request_id "i" pairs them.
ChannelPlan portForwardChannels(const std::vector<uint16_t>& ports);

}  // namespace kernelet::agent::streams
