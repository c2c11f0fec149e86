// The WebSocket channel protocols' codec (agent/streams/ws_channels.h):
// every protocol's framing, the v5 CLOSE signal, base64 as Go's strict
// StdEncoding, and what the caller must check itself (the channel).
#include "agent/streams/ws_channels.h"

#include <gtest/gtest.h>

namespace kernelet::agent::streams {
namespace {

using Kind = ChannelMessage::Kind;

ChannelProtocol proto(std::string_view name) {
  auto p = channelProtocol(name);
  EXPECT_TRUE(p) << name;
  return p.value_or(ChannelProtocol{});
}

TEST(WsChannels, KnowsEveryChannelProtocolAndNothingElse) {
  for (std::string_view binary : {"v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                                  "v2.channel.k8s.io", "channel.k8s.io", ""}) {
    auto p = channelProtocol(binary);
    if (!p) {
      ADD_FAILURE() << "unknown: " << binary;
      continue;
    }
    EXPECT_FALSE(p->base64) << binary;
    EXPECT_EQ(p->close_signal, binary == "v5.channel.k8s.io") << binary;
  }
  for (std::string_view text : {"base64.channel.k8s.io", "v4.base64.channel.k8s.io"}) {
    auto p = channelProtocol(text);
    if (!p) {
      ADD_FAILURE() << "unknown: " << text;
      continue;
    }
    EXPECT_TRUE(p->base64) << text;
    EXPECT_FALSE(p->close_signal) << text;
  }
  // SPDY tunneled in WebSocket is no channel protocol; nor are near misses.
  for (std::string_view other : {"v2.portforward.k8s.io", "portforward.k8s.io", "v6.channel.k8s.io",
                                 "V4.CHANNEL.K8S.IO", "v5.base64.channel.k8s.io"}) {
    EXPECT_FALSE(channelProtocol(other)) << other;
  }
}

TEST(WsChannels, BinaryMessagesCarryTheChannelByteFirst) {
  for (std::string_view name : {"v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                                "v2.channel.k8s.io", "channel.k8s.io", ""}) {
    auto p = proto(name);
    auto m = decodeChannelMessage(p, std::string("\x00"
                                                 "foo\n",
                                                 5));
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->kind, Kind::kData);
    EXPECT_EQ(m->channel, 0);
    EXPECT_EQ(m->payload, "foo\n");
    // Ours: stdout "\n" is {1, 10}, as wsstream's example.
    EXPECT_EQ(encodeChannelMessage(p, 1, "\n"), std::string("\x01\n", 2)) << name;
    // Binary payloads pass untouched, NULs and 0xff included.
    std::string bin("\x02\x00\xff\x00", 4);
    auto b = decodeChannelMessage(p, bin);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->channel, 2);
    EXPECT_EQ(b->payload, std::string("\x00\xff\x00", 3));
    EXPECT_EQ(encodeChannelMessage(p, 2, b->payload), bin);
  }
}

TEST(WsChannels, Base64MessagesCarryTheChannelDigitFirst) {
  for (std::string_view name : {"base64.channel.k8s.io", "v4.base64.channel.k8s.io"}) {
    auto p = proto(name);
    // wsstream's documented example: "foo\n" on stdin is "0Zm9vCg==".
    auto m = decodeChannelMessage(p, "0Zm9vCg==");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->kind, Kind::kData);
    EXPECT_EQ(m->channel, 0);
    EXPECT_EQ(m->payload, "foo\n");
    EXPECT_EQ(encodeChannelMessage(p, 1, "\n"), "1Cg==");
    EXPECT_EQ(encodeChannelMessage(p, 3, ""), "3");
    auto empty = decodeChannelMessage(p, "2");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->kind, Kind::kData);
    EXPECT_EQ(empty->channel, 2);
    EXPECT_EQ(empty->payload, "");
  }
}

TEST(WsChannels, BadBase64IsAnErrorNamingTheProtocolAndChannel) {
  auto p = proto("base64.channel.k8s.io");
  for (std::string_view bad :
       {"0Zm9vCg", "0Zm9v!g==", "0Zg=x", "0Z===", "0Zh==", "0====", "0Zm9vCg==Zm9v"}) {
    auto m = decodeChannelMessage(p, bad);
    ASSERT_FALSE(m) << bad;
    EXPECT_NE(m.error().message().find("base64.channel.k8s.io"), std::string::npos)
        << m.error().message();
    EXPECT_NE(m.error().message().find("channel 0"), std::string::npos) << m.error().message();
  }
  // Line breaks are skipped, as Go's decoder does.
  auto m = decodeChannelMessage(p, "0Zm9v\r\nCg==");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->payload, "foo\n");
}

TEST(WsChannels, Base64RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; i++) {
    all += static_cast<char>(i);
  }
  for (size_t n = 0; n <= all.size(); n++) {
    std::string in = all.substr(0, n);
    std::string enc = base64Encode(in);
    EXPECT_EQ(enc.size() % 4, 0u);
    EXPECT_EQ(base64Decode(enc), std::optional<std::string>(in)) << enc;
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("f"), "Zg==");
}

TEST(WsChannels, V5CloseSignalHalfClosesTheNamedChannel) {
  auto p = proto("v5.channel.k8s.io");
  auto m = decodeChannelMessage(p, std::string("\xff\x00", 2));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->kind, Kind::kClose);
  EXPECT_EQ(m->channel, 0);
  EXPECT_TRUE(m->payload.empty());
  for (const std::string& bad : {std::string("\xff", 1), std::string("\xff\x00\x01", 3)}) {
    auto e = decodeChannelMessage(p, bad);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message().find("CLOSE signal"), std::string::npos) << e.error().message();
  }
}

TEST(WsChannels, BeforeV5Channel255IsPlainData) {
  // The signal is v5's: v4 and older carry channel 255 as data, for the
  // caller to drop (no plan has it).
  auto p = proto("v4.channel.k8s.io");
  auto m = decodeChannelMessage(p, std::string("\xff\x00", 2));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, Kind::kData);
  EXPECT_EQ(m->channel, kCloseChannel);
  EXPECT_EQ(m->payload, std::string("\x00", 1));
}

TEST(WsChannels, EmptyMessagesAreSkippedAndUnknownChannelsAreTheCallersToRefuse) {
  for (std::string_view name : {"v5.channel.k8s.io", "base64.channel.k8s.io"}) {
    auto m = decodeChannelMessage(proto(name), "");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, Kind::kEmpty);
  }
  auto m = decodeChannelMessage(proto("v5.channel.k8s.io"), "\x09x");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, Kind::kData);
  EXPECT_EQ(m->channel, 9);
  // base64: a byte below '0' wraps as the kubelet's byte arithmetic does.
  auto w = decodeChannelMessage(proto("base64.channel.k8s.io"), "/");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->channel, 255);
}

}  // namespace
}  // namespace kernelet::agent::streams
