#pragma once
// The SPDY/3.1 framing of a stream endpoint (the one every API server sends
// a kubelet): the codec is the spdy/ library; this adapts it to an upgraded
// TLS connection as a Transport.
//
// Bounds, so a client costs little whatever it does:
// - it must open its first stream within `stream_creation_timeout` of the
//   101 (30 s, the kubelet's streamCreationTimeout), or the connection is
//   closed; after that a connection without a frame either way for the
//   connection's idle_timeout (streamingConnectionIdleTimeout, 4 h) gets a
//   GOAWAY and is closed, as spdystream's idle-aware framer does;
// - reading stops while more than `max_unconsumed` bytes the consumers were
//   given are not consumed yet, or more than `max_output` bytes wait to go
//   out (a client flooding PINGs while never reading), and resumes after;
// - a write to the client goes out within the client's window once the
//   client does flow control (spdy/session.h: spdystream does not), and at
//   most one chunk per stream is queued either way.

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "agent/streams/byte_link.h"
#include "agent/streams/upgrade.h"
#include "spdy/session.h"

namespace kernelet::agent::streams {

struct SpdyTransportOptions {
  spdy::SessionOptions session;
  std::chrono::milliseconds stream_creation_timeout{30000};
  size_t max_unconsumed = 256 << 10;
  size_t max_output = 256 << 10;
};

// Answers the upgrade with 101 Switching Protocols (Connection: Upgrade,
// Upgrade: SPDY/3.1, X-Stream-Protocol-Version: the first of the client's
// X-Stream-Protocol-Version values, in its order, that `supported` has, as
// the kubelet's httpstream.Handshake picks), or with the kubelet's error:
// 400 "unable to upgrade: X-Stream-Protocol-Version is required" when the
// client offers none, 403 "unable to upgrade: unable to negotiate protocol:
// client supports [...], server accepts [...]" (with
// X-Accepted-Stream-Protocol-Versions) when no protocol is shared, 400 when
// the Connection header lacks "upgrade". `done` gets the transport, not yet
// started.
void acceptSpdy(const std::shared_ptr<UpgradedConnection>& conn,
                const std::vector<std::string>& supported, AcceptDone done,
                SpdyTransportOptions options = {});

// The SPDY transport over any link (the TLS stream as above, or a
// WebSocket tunnel: spdy_tunnel.h), not started yet.
std::shared_ptr<Transport> makeSpdyTransport(std::shared_ptr<UpgradedConnection> conn,
                                             std::unique_ptr<ByteLink> link,
                                             SpdyTransportOptions options = {});

// The protocol httpstream.Handshake picks: the first of the client's
// `offered`, in its order, that `supported` has; else the kubelet's 400
// (nothing offered) or 403 (nothing shared) with its text.
std::expected<std::string, UpgradeError> negotiateSpdy(const std::vector<std::string>& offered,
                                                       const std::vector<std::string>& supported);

// A refused SPDY upgrade as Go's http.Error answers it (text/plain, nosniff,
// one X-Accepted-Stream-Protocol-Versions header per `accepted`); the
// connection closes after it and `done` gets `err`.
void refuseSpdyUpgrade(const std::shared_ptr<UpgradedConnection>& conn, const UpgradeError& err,
                       const std::vector<std::string>& accepted, AcceptDone done);

}  // namespace kernelet::agent::streams
