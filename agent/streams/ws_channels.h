#pragma once
// The Kubernetes channel protocols over WebSocket, without I/O (so the codec
// is fuzzed alone): each message carries one channel's bytes, the channel
// first.
//   binary: "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
//           "v2.channel.k8s.io", "channel.k8s.io", and "" (a client that
//           offers no protocol gets channel.k8s.io's framing, as from the
//           kubelet): first byte the channel, the rest the payload.
//   base64: "base64.channel.k8s.io", "v4.base64.channel.k8s.io" (the
//           kubelet's exec and port-forward accept both): text, first char
//           '0' + channel, the rest standard base64 of the payload.
//   v5.channel.k8s.io adds the CLOSE signal: channel 255 with one byte of
//   payload, the channel the client sends no more on (stdin's EOF).
// Not here: "v2.portforward.k8s.io", which is SPDY/3.1 carried in binary
// messages (client-go's tunneling), not channels; see websocket_transport.cc.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::agent::streams {

struct ChannelProtocol {
  std::string_view name;
  bool base64 = false;        // text messages, base64 payloads
  bool close_signal = false;  // v5: channel 255 half-closes a channel
};

// The protocol called `name`, or nullopt when it is not a channel protocol.
std::optional<ChannelProtocol> channelProtocol(std::string_view name);

// Channel 255 is reserved: in v5 it carries the CLOSE signal.
inline constexpr uint8_t kCloseChannel = 255;

struct ChannelMessage {
  enum class Kind {
    kEmpty,  // nothing at all: skipped, as the kubelet does
    kData,   // `payload` for `channel`
    kClose,  // v5: the client half-closes `channel`; payload empty
  };
  Kind kind = Kind::kEmpty;
  uint8_t channel = 0;
  std::string payload;
};

// One message from the client. Errors (a base64 payload that is not base64,
// a CLOSE signal without exactly one channel byte) name the protocol.
// Whether `channel` exists is the caller's question (the plan's).
Result<ChannelMessage> decodeChannelMessage(const ChannelProtocol& p, std::string_view message);

// One message to the client: `channel`'s byte (or digit) and the payload.
std::string encodeChannelMessage(const ChannelProtocol& p, uint8_t channel,
                                 std::string_view payload);

// Standard base64 with padding, as Go's base64.StdEncoding: decoding skips
// '\r' and '\n' and refuses anything else outside the alphabet, bad padding
// and bits left over.
std::string base64Encode(std::string_view in);
std::optional<std::string> base64Decode(std::string_view in);

}  // namespace kernelet::agent::streams
