#include "agent/streams/ws_channels.h"

#include <array>

namespace kernelet::agent::streams {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for the alphabet, -1 for anything else.
constexpr std::array<int8_t, 256> decodeTable() {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (size_t i = 0; i < kAlphabet.size(); i++) {
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return t;
}
constexpr std::array<int8_t, 256> kDecode = decodeTable();

}  // namespace

std::optional<ChannelProtocol> channelProtocol(std::string_view name) {
  static constexpr std::array<ChannelProtocol, 8> kKnown{{
      {"v5.channel.k8s.io", false, true},
      {"v4.channel.k8s.io", false, false},
      {"v3.channel.k8s.io", false, false},
      {"v2.channel.k8s.io", false, false},
      {"channel.k8s.io", false, false},
      {"", false, false},
      {"v4.base64.channel.k8s.io", true, false},
      {"base64.channel.k8s.io", true, false},
  }};
  for (const auto& p : kKnown) {
    if (p.name == name) {
      return p;
    }
  }
  return std::nullopt;
}

std::string base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                 static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) {
      v |= static_cast<uint8_t>(in[i + 1]) << 8;
    }
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int have = 0;     // sextets in acc
  int padding = 0;  // '=' seen; nothing but more '=' (and line breaks) may follow
  for (char c : in) {
    if (c == '\r' || c == '\n') {
      continue;
    }
    if (c == '=') {
      // Padding completes a quantum of 2 or 3 sextets, to 4.
      if (have + padding < 2 || have + padding >= 4) {
        return std::nullopt;
      }
      padding++;
      continue;
    }
    int8_t d = kDecode[static_cast<unsigned char>(c)];
    if (d < 0 || padding > 0) {
      return std::nullopt;
    }
    acc = acc << 6 | static_cast<uint32_t>(d);
    if (++have == 4) {
      out += static_cast<char>(acc >> 16 & 0xff);
      out += static_cast<char>(acc >> 8 & 0xff);
      out += static_cast<char>(acc & 0xff);
      acc = 0;
      have = 0;
    }
  }
  if (have == 0) {
    return padding == 0 ? std::optional(out) : std::nullopt;
  }
  // A partial quantum must be padded to 4, and the bits it does not use must
  // be zero (Go's strict decoding refuses "QR==" for "QQ==").
  if (have + padding != 4) {
    return std::nullopt;
  }
  if (have == 2) {
    if ((acc & 0xf) != 0) {
      return std::nullopt;
    }
    out += static_cast<char>(acc >> 4 & 0xff);
  } else {  // 3
    if ((acc & 0x3) != 0) {
      return std::nullopt;
    }
    out += static_cast<char>(acc >> 10 & 0xff);
    out += static_cast<char>(acc >> 2 & 0xff);
  }
  return out;
}

Result<ChannelMessage> decodeChannelMessage(const ChannelProtocol& p, std::string_view message) {
  ChannelMessage m;
  if (message.empty()) {
    return m;  // kEmpty
  }
  // base64: the channel is a digit; a byte below '0' wraps as the kubelet's
  // byte arithmetic does, and lands on a channel no plan has.
  m.channel = p.base64 ? static_cast<uint8_t>(message[0] - '0') : static_cast<uint8_t>(message[0]);
  std::string_view rest = message.substr(1);
  if (p.close_signal && m.channel == kCloseChannel) {
    if (rest.size() != 1) {
      return makeError("decode websocket message", std::string(p.name),
                       "the CLOSE signal (channel 255) must carry exactly one channel byte, got " +
                           std::to_string(rest.size()));
    }
    m.kind = ChannelMessage::Kind::kClose;
    m.channel = static_cast<uint8_t>(rest[0]);
    return m;
  }
  m.kind = ChannelMessage::Kind::kData;
  if (!p.base64) {
    m.payload = rest;
    return m;
  }
  auto decoded = base64Decode(rest);
  if (!decoded) {
    return makeError("decode websocket message", std::string(p.name),
                     "channel " + std::to_string(m.channel) + ": payload is not valid base64");
  }
  m.payload = std::move(*decoded);
  return m;
}

std::string encodeChannelMessage(const ChannelProtocol& p, uint8_t channel,
                                 std::string_view payload) {
  if (p.base64) {
    std::string out(1, static_cast<char>('0' + channel));
    out += base64Encode(payload);
    return out;
  }
  std::string out;
  out.reserve(payload.size() + 1);
  out += static_cast<char>(channel);
  out += payload;
  return out;
}

}  // namespace kernelet::agent::streams
