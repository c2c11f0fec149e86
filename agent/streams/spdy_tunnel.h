#pragma once
// SPDY tunneled in WebSocket binary messages: what kubectl's port-forward
// sends first since 1.30 (client-go's portforward tunneling,
// KUBECTL_PORT_FORWARD_WEBSOCKETS on by default). The API server turns it
// into a plain SPDY upgrade toward the kubelet (apimachinery's
// TunnelingHandler); a relay that passes the upgrade through brings it here,
// and we answer as that handler answers kubectl:
// - the client offers Sec-WebSocket-Protocol values "SPDY/3.1+" followed by
//   a SPDY protocol ending in ".k8s.io" ("SPDY/3.1+portforward.k8s.io");
//   the SPDY protocol is chosen among them as the SPDY handshake chooses
//   (spdy_transport.h), and the 101 names "SPDY/3.1+" and the chosen one;
// - after the 101 the SPDY bytes ride in binary messages split anywhere: a
//   message boundary means nothing (client-go writes one message per
//   Write of spdystream, we one per flush of the session's output);
// - a text message ends the connection (client-go: "invalid message type
//   received"), a close frame ends the byte stream, WebSocket pings are
//   answered by Beast and SPDY PINGs by the session.
// Refusals: no tunneling protocol offered -> 400 "unable to upgrade: no
// tunneling spdy protocols provided" (the API server's text); none shared ->
// the SPDY handshake's 403. The SPDY bounds (spdy_transport.h) hold as over
// TLS: reading the socket stops while the consumers lag, so a client cannot
// make the agent buffer more by splitting or growing its messages.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/streams/spdy_transport.h"
#include "agent/streams/upgrade.h"

namespace kernelet::agent::streams {

inline constexpr std::string_view kSpdyTunnelPrefix = "SPDY/3.1+";

// The SPDY protocols of a client's WebSocket offers: those with the prefix
// and the ".k8s.io" suffix, prefix removed, in the client's order.
std::vector<std::string> tunneledSpdyProtocols(const std::vector<std::string>& offers);

// A WebSocket upgrade asking for the tunnel: one offer has the prefix (as
// wsstream.IsWebSocketRequestWithTunnelingProtocol decides on the API server).
bool isSpdyTunnelRequest(
    const boost::beast::http::request<boost::beast::http::string_body>& request);

// Answers the WebSocket upgrade with the tunnel (or a refusal, see above);
// `supported` are SPDY protocols ("portforward.k8s.io"). The Negotiated
// protocol is the WebSocket one ("SPDY/3.1+portforward.k8s.io"); its
// transport is SPDY's, not started yet.
void acceptSpdyTunnel(const std::shared_ptr<UpgradedConnection>& conn,
                      const std::vector<std::string>& supported, AcceptDone done,
                      SpdyTransportOptions options = {});

// The tunnel's WebSocket settings, one place for the agent and the fuzz
// target: binary, one frame per message, no size limit on a message (its
// bytes are streamed into the session, never gathered whole), no idle
// timeout or pings of ours (a connection is idle only by the stream idle
// timeout), `handshake` for the opening and the closing handshakes.
template <class NextLayer>
void configureTunnel(boost::beast::websocket::stream<NextLayer>& ws,
                     std::chrono::seconds handshake = std::chrono::seconds(30)) {
  boost::beast::websocket::stream_base::timeout t{};
  t.handshake_timeout = handshake;
  t.idle_timeout = boost::beast::websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws.set_option(t);
  ws.read_message_max(0);
  ws.auto_fragment(false);
  ws.binary(true);
}

}  // namespace kernelet::agent::streams
