// Client messages of the Kubernetes WebSocket channel protocols
// (agent/streams/ws_channels.h): the first input byte picks the protocol,
// the rest is one message. What decodes must re-encode to an equal message,
// and base64 payloads must round-trip.

#include "agent/streams/ws_channels.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace kernelet::agent::streams;

constexpr std::string_view kProtocols[] = {
    "v5.channel.k8s.io",     "v4.channel.k8s.io",        "v3.channel.k8s.io",
    "v2.channel.k8s.io",     "channel.k8s.io",           "",
    "base64.channel.k8s.io", "v4.base64.channel.k8s.io",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  auto p = channelProtocol(kProtocols[data[0] % std::size(kProtocols)]);
  if (!p) {
    std::abort();  // every name above is a channel protocol
  }
  std::string_view message(reinterpret_cast<const char*>(data + 1), size - 1);
  auto m = decodeChannelMessage(*p, message);
  if (!m) {
    if (m.error().message().empty()) {
      std::abort();
    }
    return 0;
  }
  if (m->kind == ChannelMessage::Kind::kEmpty) {
    if (!message.empty()) {
      std::abort();
    }
    return 0;
  }
  if (m->kind == ChannelMessage::Kind::kClose) {
    if (!p->close_signal || message.size() != 2 || !m->payload.empty()) {
      std::abort();
    }
    return 0;
  }
  // Data: encoding what was decoded gives a message that decodes the same.
  std::string again = encodeChannelMessage(*p, m->channel, m->payload);
  auto m2 = decodeChannelMessage(*p, again);
  if (!m2 || m2->channel != m->channel || m2->payload != m->payload) {
    std::abort();
  }
  if (!p->base64 && again != message) {
    std::abort();  // binary framing is the identity on the payload
  }
  auto round = base64Decode(base64Encode(message));
  if (!round || *round != message) {
    std::abort();
  }
  return 0;
}
