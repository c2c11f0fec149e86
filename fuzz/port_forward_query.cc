// The `port` query of a WebSocket port-forward (agent/streams/port_forward_endpoint.h),
// as the kubelet's NewV4Options reads it, and the channel plan made from it.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/server/query.h"
#include "agent/streams/port_forward.h"
#include "agent/streams/port_forward_endpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace streams = kernelet::agent::streams;
  std::string raw(reinterpret_cast<const char*>(data), size);
  auto q = kernelet::agent::server::Query::parse(raw);
  if (!q) {
    return 0;
  }
  auto ports = streams::parsePortQuery(*q);
  if (!ports) {
    return 0;
  }
  if (ports->empty() || ports->size() > streams::kMaxForwardedPorts) {
    std::abort();
  }
  streams::ChannelPlan plan = streams::portForwardChannels(*ports);
  for (const auto& [id, h] : plan.channels) {
    if (id > 255 || h.port == "0") {  // a channel is one byte; port 0 is refused
      std::abort();
    }
  }
  return 0;
}
