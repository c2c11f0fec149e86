#pragma once
// The WebSocket framing of a stream endpoint (RFC 6455 over Beast): each
// message starts with its channel byte (base64.channel.k8s.io: a channel
// digit and base64 text), and v5.channel.k8s.io adds the CLOSE signal
// (channel 255, payload: the channel the client half-closes). The codec is
// ws_channels.h; this adapts it to an upgraded TLS connection as a Transport.
//
// On the wire, for a Transport's calls:
// - write(id, data): one message, channel id's byte first. An empty `data`
//   is a message of the channel byte alone (the kubelet's "connection is
//   ready" signal on the lowest writable channel).
// - finish(id): nothing; a WebSocket channel has no end but the connection's.
// - reset(id): nothing on the wire; what the client sends on `id` later is
//   dropped.
// - close(): once the queued writes went out, a close frame (1000); closed()
//   follows the client's answer (or 30 s without one).
// No message either way for the connection's idle_timeout
// (streamingConnectionIdleTimeout; the kubelet's wsstream deadline): close().
// From the client: data() per message of a channel of the plan; a message
// for a channel the plan lacks is dropped (logged at -v=4), as the kubelet
// does. Protocol errors (an unmasked frame, a bad length, a message over
// kWebSocketMessageMax, bad base64, a malformed CLOSE signal) close that
// connection with the matching close code, a log line, and closed().

#include <cstddef>
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

// The largest message a client may send (bigger: close 1009, "message too big").
inline constexpr size_t kWebSocketMessageMax = 1 << 20;
// Per channel, the bytes data() gave that were not consumed() yet, at which
// the transport stops reading the socket until the consumer catches up (the
// client's TCP window then fills and it waits). At most one message more
// than this is ever buffered per channel.
inline constexpr size_t kWebSocketUnconsumedMax = 256 << 10;

// Answers the upgrade: 101 with the first of `supported` the client's
// Sec-WebSocket-Protocol offers (a client offering none gets
// channel.k8s.io's binary framing and protocol "", as from the kubelet);
// none shared: 403 "requested protocol(s) are not supported", the
// kubelet's. A name in `supported` that is no channel protocol
// (ws_channels.h) is never chosen. `done` gets the transport, not yet
// started; start() reports every channel of `plan(protocol)` as opened.
void acceptWebSocket(std::shared_ptr<UpgradedConnection> conn,
                     const std::vector<std::string>& supported, PlanFor plan, AcceptDone done);

// The client's Sec-WebSocket-Protocol offers, in its order (one header or
// several, comma separated, blanks around items dropped).
std::vector<std::string> webSocketOffers(
    const boost::beast::http::request<boost::beast::http::string_body>& req);

}  // namespace kernelet::agent::streams
