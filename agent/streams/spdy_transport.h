#pragma once
// The SPDY/3.1 framing of a stream endpoint (the one every API server sends
// a kubelet): the codec is the spdy/ library; this adapts it to an upgraded
// TLS connection as a Transport.

#include <memory>
#include <string>
#include <vector>

#include "agent/streams/upgrade.h"

namespace kernelet::agent::streams {

// Answers the upgrade with 101 Switching Protocols (Upgrade: SPDY/3.1,
// X-Stream-Protocol-Version: the first of `supported` that the client's
// X-Stream-Protocol-Version headers offer; none offered: the first of
// `supported`, as the kubelet's legacy clients expect), or with the
// kubelet's error (403 when no protocol is shared). `done` gets the
// transport, not yet started.
void acceptSpdy(std::shared_ptr<UpgradedConnection> conn, const std::vector<std::string>& supported,
                AcceptDone done);

}  // namespace kernelet::agent::streams
