#pragma once
// A connection of the node server taken over by a stream endpoint (/exec,
// /attach, /portForward) after its request was routed, authenticated and
// authorized: the server hands the TLS stream, what it read past the request
// headers, and the request itself to the endpoint and forgets it. The
// endpoint then answers the upgrade (SPDY/3.1 or WebSocket, chosen by the
// request's Upgrade header) or an HTTP error, and owns the connection until
// it ends.

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/server/handler.h"
#include "agent/streams/transport.h"

namespace kernelet::agent::streams {

struct UpgradedConnection {
  // Keeps the server's io_context alive as long as the socket that uses it
  // (a connection may be let go of on another thread after the server stopped).
  std::shared_ptr<boost::asio::io_context> ioc;
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream;
  boost::beast::flat_buffer buffer;  // bytes read past the request's headers: the framing's first
  boost::beast::http::request<boost::beast::http::string_body> request;
  // Counts the connection against the server's max_connections while held.
  std::shared_ptr<void> slot;
  // streamingConnectionIdleTimeout: the framing closes the connection after
  // this long without traffic either way (a frame or message read or
  // written); 0: never.
  std::chrono::milliseconds idle_timeout{0};
  // Framings keep this object (shared) and use `stream` in place (Beast's
  // websocket::stream over a reference), so the server can close the socket
  // of every live connection when it stops.
};

// Closes the socket under the TLS stream, ending whatever is pending on it.
// One closed already is the state wanted, so an error is no news.
void closeSocket(boost::beast::ssl_stream<boost::beast::tcp_stream>& stream);

// Called on the server thread; the handler owns the connection from then on.
using UpgradeHandler = std::function<void(server::Request, std::shared_ptr<UpgradedConnection>)>;

// The framing's answer to an upgrade: the transport, started by nobody yet,
// and the protocol the client and we agreed on ("v4.channel.k8s.io",
// "portforward.k8s.io", "v5.channel.k8s.io", ...).
struct Negotiated {
  std::shared_ptr<Transport> transport;
  std::string protocol;
};

// An upgrade that failed before the framing started: the HTTP status and the
// message that went (or would go) to the client.
struct UpgradeError {
  int status = 400;
  std::string message;
};

using AcceptDone = std::function<void(std::expected<Negotiated, UpgradeError>)>;

}  // namespace kernelet::agent::streams

namespace kernelet::agent::streams {

// What an endpoint speaks, by framing, best first. SPDY takes the first the
// client offers that we speak (the client's order, as the kubelet's
// httpstream.Handshake); WebSocket the first of ours the client offers.
struct Protocols {
  std::vector<std::string> spdy;       // X-Stream-Protocol-Version values
  std::vector<std::string> websocket;  // Sec-WebSocket-Protocol values
  // A WebSocket upgrade offering "SPDY/3.1+..." gets SPDY tunneled in
  // WebSocket (spdy_tunnel.h) with the `spdy` protocols (port-forward).
  bool spdy_tunnel = false;
};

// Answers the upgrade by the request's Upgrade header: "SPDY/3.1"
// (spdy_transport.h) or "websocket" (websocket_transport.h); anything else
// gets 400 "Upgrade request required", as the kubelet. On an error the
// client has been answered and the connection closed; `done` says why.
// `plan` says what channels a WebSocket protocol has (see websocket_transport.h).
struct ChannelPlan;
using PlanFor = std::function<ChannelPlan(const std::string& protocol)>;
void acceptUpgrade(std::shared_ptr<UpgradedConnection> conn, const Protocols& protocols,
                   PlanFor plan, AcceptDone done);

}  // namespace kernelet::agent::streams
