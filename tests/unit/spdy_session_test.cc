// The SPDY/3.1 server session, played by a client built from the codec:
// streams opened and answered, data and windows both ways, PING, GOAWAY, the
// stream limit with 10,000 streams, and each protocol error with the frame
// the draft asks for.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "spdy/frames.h"
#include "spdy/header_block.h"
#include "spdy/session.h"
#include "support/spdy_client.h"

namespace kernelet::spdy {
namespace {

using Kind = SessionEvent::Kind;
using testing::SpdyClient;

struct Peer {
  explicit Peer(SessionOptions o = {}) : session(o) {}
  // Feeds the client's bytes, then reads what the server answered.
  Result<void> send(const std::string& bytes) {
    auto r = session.receive(bytes);
    for (auto& e : session.takeEvents()) {
      events.push_back(std::move(e));
    }
    for (auto& f : client.read(session.takeOutput())) {
      frames.push_back(std::move(f));
    }
    return r;
  }
  void drain() {
    for (auto& f : client.read(session.takeOutput())) {
      frames.push_back(std::move(f));
    }
  }
  template <typename T>
  std::vector<T> sent() const {
    std::vector<T> out;
    for (const auto& f : frames) {
      if (auto* x = std::get_if<T>(&f)) {
        out.push_back(*x);
      }
    }
    return out;
  }
  size_t count(Kind k) const {
    return static_cast<size_t>(
        std::count_if(events.begin(), events.end(), [k](const auto& e) { return e.kind == k; }));
  }

  Session session;
  SpdyClient client;
  std::vector<SessionEvent> events;
  std::vector<Frame> frames;
};

TEST(SpdySession, StreamsAreAnsweredAndCarryTheirHeaders) {
  Peer p;
  std::string opens = p.client.synStream(1, {{"streamtype", "error"}});
  opens += p.client.synStream(3, {{"streamtype", "stdin"}});
  opens += p.client.synStream(5, {{"port", "8080"}, {"requestid", "7"}, {"streamtype", "data"}});
  ASSERT_TRUE(p.send(opens));
  auto replies = p.sent<SynReply>();
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].stream_id, 1u);
  EXPECT_EQ(replies[2].stream_id, 5u);
  EXPECT_EQ(replies[0].flags, 0) << "no FIN: the server may still send";
  EXPECT_EQ(p.client.replies[0], HeaderList{}) << "the kubelet's replies have no headers";
  ASSERT_EQ(p.events.size(), 3u);
  EXPECT_EQ(p.events[0].kind, Kind::kOpened);
  EXPECT_EQ(headerValue(p.events[0].headers, "streamtype"), "error");
  EXPECT_EQ(headerValue(p.events[2].headers, "port"), "8080");
  EXPECT_EQ(headerValue(p.events[2].headers, "requestid"), "7");
  EXPECT_EQ(p.session.streamCount(), 3u);
}

TEST(SpdySession, DataBothWaysAndTheStreamEndsWhenBothSidesFinished) {
  Peer p;
  ASSERT_TRUE(p.send(p.client.open(1, "stdin") + SpdyClient::data(1, "echo hi\n") +
                     SpdyClient::data(1, "", true)));
  ASSERT_EQ(p.events.size(), 3u);
  EXPECT_EQ(p.events[1].kind, Kind::kData);
  EXPECT_EQ(p.events[1].data, "echo hi\n");
  EXPECT_EQ(p.events[2].kind, Kind::kHalfClosed);
  EXPECT_EQ(p.session.unconsumed(), 8u);
  EXPECT_TRUE(p.session.isOpen(1)) << "half-closed: we may still send";
  ASSERT_TRUE(p.session.send(1, "out"));
  p.session.finish(1);
  EXPECT_FALSE(p.session.isOpen(1));
  EXPECT_EQ(p.session.unconsumed(), 0u) << "a closed stream's bytes are released";
  p.drain();
  EXPECT_EQ(p.client.received[1], "out");
  EXPECT_TRUE(p.client.fins[1]);
  EXPECT_FALSE(p.session.send(1, "late"));
  EXPECT_EQ(p.session.sendable(1), 0u);
}

TEST(SpdySession, WindowUpdatesFollowWhatIsConsumed) {
  Peer p;
  ASSERT_TRUE(p.send(p.client.open(1, "stdin") + SpdyClient::data(1, std::string(40000, 'x'))));
  EXPECT_TRUE(p.sent<WindowUpdate>().empty()) << "nothing consumed yet";
  p.session.consumed(1, 20000);
  p.drain();
  EXPECT_TRUE(p.sent<WindowUpdate>().empty()) << "under half a window";
  p.session.consumed(1, 20000);
  p.drain();
  auto updates = p.sent<WindowUpdate>();
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[0], (WindowUpdate{.stream_id = 1, .delta = 40000}));
  EXPECT_EQ(updates[1], (WindowUpdate{.stream_id = 0, .delta = 40000}))
      << "SPDY/3.1: the session's";
  EXPECT_EQ(p.session.unconsumed(), 0u);
}

TEST(SpdySession, OurWritesStayInTheClientsWindowOnceItDoesFlowControl) {
  Peer p;
  ASSERT_TRUE(p.send(p.client.opens({{1, "stdout"}, {3, "stderr"}})));
  // spdystream never sends WINDOW_UPDATE: no window binds us then.
  EXPECT_FALSE(p.session.flowControlled());
  EXPECT_GT(p.session.sendable(1), size_t{1} << 30);
  // A client that does flow control: its windows bind (64 KiB each at first).
  ASSERT_TRUE(
      p.send(SpdyClient::frame(Settings{.entries = {{0, kSettingsInitialWindowSize, 1000}}})));
  EXPECT_TRUE(p.session.flowControlled());
  EXPECT_EQ(p.session.sendable(1), 1000u);
  ASSERT_TRUE(p.session.send(1, std::string(1000, 'a')));
  EXPECT_EQ(p.session.sendable(1), 0u);
  EXPECT_EQ(p.session.sendable(3), 1000u);
  ASSERT_TRUE(p.send(SpdyClient::frame(WindowUpdate{.stream_id = 1, .delta = 500})));
  EXPECT_EQ(p.session.sendable(1), 500u);
  EXPECT_EQ(p.count(Kind::kWritable), 2u);
  // The session's window (64 KiB) binds every stream together.
  ASSERT_TRUE(p.send(SpdyClient::frame(WindowUpdate{.stream_id = 1, .delta = 100000}) +
                     SpdyClient::frame(WindowUpdate{.stream_id = 3, .delta = 100000})));
  EXPECT_EQ(p.session.sendable(1), 65536u - 1000u);
  ASSERT_TRUE(p.session.send(3, std::string(65536 - 1000, 'b')));
  EXPECT_EQ(p.session.sendable(1), 0u);
  ASSERT_TRUE(p.send(SpdyClient::frame(WindowUpdate{.stream_id = 0, .delta = 10})));
  EXPECT_EQ(p.session.sendable(1), 10u);
  // Frames are split at max_data_frame (64 KiB).
  p.drain();
  for (const auto& d : p.sent<DataFrame>()) {
    EXPECT_LE(d.data.size(), 65536u);
  }
}

TEST(SpdySession, DataPastOurWindowResetsTheStreamOfAFlowControlledClient) {
  Peer p(SessionOptions{.peer_flow_control = PeerFlowControl::kOn});
  ASSERT_TRUE(p.send(p.client.opens({{1, "stdin"}, {3, "resize"}})));
  ASSERT_TRUE(p.send(SpdyClient::data(1, std::string(65536, 'x'))));
  EXPECT_TRUE(p.sent<RstStream>().empty());
  ASSERT_TRUE(p.send(SpdyClient::data(1, "y")));
  auto rst = p.sent<RstStream>();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0], (RstStream{.stream_id = 1, .status = 7})) << "FLOW_CONTROL_ERROR";
  EXPECT_FALSE(p.session.isOpen(1));
  EXPECT_TRUE(p.session.isOpen(3)) << "the other stream goes on";
  EXPECT_EQ(p.session.unconsumed(), 0u);
}

TEST(SpdySession, PingsAreEchoedAndGoAwayNoted) {
  Peer p;
  ASSERT_TRUE(p.send(SpdyClient::frame(Ping{.id = 1}) + SpdyClient::frame(Ping{.id = 2})));
  auto pings = p.sent<Ping>();
  ASSERT_EQ(pings.size(), 1u) << "only the client's (odd) ids are echoed";
  EXPECT_EQ(pings[0].id, 1u);
  ASSERT_TRUE(p.send(SpdyClient::frame(GoAway{.last_good_stream_id = 0, .status = 0})));
  EXPECT_TRUE(p.session.peerWentAway());
}

TEST(SpdySession, TenThousandStreams) {
  // At once: 1,000 are served, the rest refused, the connection goes on.
  Peer p;
  std::string burst;
  for (uint32_t i = 0; i < 10000; i++) {
    burst += p.client.open(2 * i + 1, "data");
  }
  ASSERT_TRUE(p.send(burst));
  EXPECT_EQ(p.session.streamCount(), 1000u);
  EXPECT_EQ(p.count(Kind::kOpened), 1000u);
  auto rst = p.sent<RstStream>();
  ASSERT_EQ(rst.size(), 9000u);
  EXPECT_EQ(rst[0], (RstStream{.stream_id = 2001, .status = 3})) << "REFUSED_STREAM";
  // One after another, each ended by both sides: all served.
  Peer q;
  for (uint32_t i = 0; i < 10000; i++) {
    uint32_t id = 2 * i + 1;
    ASSERT_TRUE(q.send(q.client.open(id, "data") + SpdyClient::data(id, "x", true)));
    q.session.consumed(id, 1);
    q.session.finish(id);
    q.drain();
    ASSERT_EQ(q.session.streamCount(), 0u);
  }
  EXPECT_EQ(q.count(Kind::kOpened), 10000u);
  EXPECT_TRUE(q.sent<RstStream>().empty());
  EXPECT_TRUE(q.sent<GoAway>().empty());
}

TEST(SpdySession, StreamErrorsResetThatStreamOnly) {
  Peer p;
  ASSERT_TRUE(p.send(p.client.open(1, "stdin")));
  // An even id is the server's to open.
  ASSERT_TRUE(p.send(p.client.open(2, "stdin")));
  // A malformed header block (upper-case name): the stream only.
  ASSERT_TRUE(p.send(p.client.synStream(3, {{"StreamType", "stdin"}})));
  // DATA for a stream never opened.
  ASSERT_TRUE(p.send(SpdyClient::data(99, "x")));
  // DATA after the client's FIN.
  ASSERT_TRUE(p.send(SpdyClient::data(1, "a", true) + SpdyClient::data(1, "b")));
  auto rst = p.sent<RstStream>();
  ASSERT_EQ(rst.size(), 4u);
  EXPECT_EQ(rst[0], (RstStream{.stream_id = 2, .status = 1})) << "PROTOCOL_ERROR";
  EXPECT_EQ(rst[1], (RstStream{.stream_id = 3, .status = 1})) << "PROTOCOL_ERROR";
  EXPECT_EQ(rst[2], (RstStream{.stream_id = 99, .status = 2})) << "INVALID_STREAM";
  EXPECT_EQ(rst[3], (RstStream{.stream_id = 1, .status = 9})) << "STREAM_ALREADY_CLOSED";
  EXPECT_EQ(p.count(Kind::kReset), 1u);
  EXPECT_TRUE(p.sent<GoAway>().empty());
  // Still fine for new streams: the zlib context stayed in step.
  ASSERT_TRUE(p.send(p.client.open(5, "stdout")));
  EXPECT_TRUE(p.session.isOpen(5));
  // The client resets a stream.
  ASSERT_TRUE(p.send(SpdyClient::frame(RstStream{.stream_id = 5, .status = 5})));
  EXPECT_FALSE(p.session.isOpen(5));
  EXPECT_EQ(p.count(Kind::kReset), 2u);
}

TEST(SpdySession, ConnectionErrorsSendGoAway) {
  struct Case {
    std::string name;
    std::function<std::string(SpdyClient&)> bytes;
    std::string error;
  };
  std::vector<Case> cases = {
      {"ids going down",
       [](SpdyClient& c) {
         return c.opens({{5, "stdin"}, {3, "stdout"}});
       },
       "SYN_STREAM for stream 3, not above the last one (5)"},
      {"a broken frame",
       [](SpdyClient&) {
         return std::string("\x80\x03\x00\x06\x00\x00\x00\x05\x00\x00\x00\x00\x00", 13);
       },
       "PING of length 5 (must be 4)"},
      {"a header block that is not zlib",
       [](SpdyClient&) {
         return SpdyClient::frame(SynStream{.stream_id = 1, .header_block = "garbage"});
       },
       "SYN_STREAM: not a zlib stream: incorrect header check"},
      {"a session window of 0",
       [](SpdyClient&) { return SpdyClient::frame(WindowUpdate{.stream_id = 0, .delta = 0}); },
       "WINDOW_UPDATE of 0 for the session"},
  };
  for (auto& c : cases) {
    Peer p;
    auto r = p.send(c.bytes(p.client));
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().message(), "spdy session: " + c.error) << c.name;
    auto goaway = p.sent<GoAway>();
    ASSERT_EQ(goaway.size(), 1u) << c.name;
    EXPECT_EQ(goaway[0].status, 1u) << c.name << ": PROTOCOL_ERROR";
    EXPECT_FALSE(p.send(p.client.open(101, "stdin"))) << c.name << ": stays failed";
  }
}

TEST(SpdySession, OurGoAwayNamesTheLastStreamAndRefusesNewOnes) {
  Peer p;
  ASSERT_TRUE(p.send(p.client.opens({{1, "error"}, {3, "stdout"}})));
  p.session.goAway();
  ASSERT_TRUE(p.send(p.client.open(5, "stdin")));
  auto goaway = p.sent<GoAway>();
  ASSERT_EQ(goaway.size(), 1u);
  EXPECT_EQ(goaway[0], (GoAway{.last_good_stream_id = 3, .status = 0}));
  EXPECT_FALSE(p.session.isOpen(5));
  ASSERT_EQ(p.sent<RstStream>().size(), 1u);
  EXPECT_EQ(p.sent<RstStream>()[0].status, 3u) << "REFUSED_STREAM";
}

}  // namespace
}  // namespace kernelet::spdy

namespace kernelet::spdy {
namespace {

// Review (issue #18): HEADERS frames for an open stream are inflated (they
// must be: the zlib context is shared) and then ignored; 72 KB on the wire
// inflated to 60 MB, ~140 ms of the node server's only thread. The
// connection ends once its blocks pass the budget.
TEST(SpdySessionReviewTest, HeaderBlocksPastTheBudgetEndTheConnection) {
  Session s;
  HeaderDeflater d;
  std::string wire =
      serialize(SynStream{.stream_id = 1, .header_block = *d.compress({{"streamtype", "error"}})});
  for (int i = 0; i < 240; i++) {
    wire += serialize(HeadersFrame{
        .stream_id = 1,
        .header_block = *d.compress({{"x" + std::to_string(i), std::string(250 << 10, 'a')}})});
  }
  auto r = s.receive(wire);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("over the connection's budget"), std::string::npos)
      << r.error().message();
  EXPECT_FALSE(s.takeOutput().empty());  // the GOAWAY
}

// kubectl's streams stay far under it: 1000 streams with ordinary headers.
TEST(SpdySessionReviewTest, OrdinaryHeadersOfManyStreamsFitTheBudget) {
  Session s;
  HeaderDeflater d;
  std::string wire;
  for (uint32_t id = 1; id < 2000; id += 2) {
    wire +=
        serialize(SynStream{.stream_id = id,
                            .header_block = *d.compress({{"streamtype", "data"},
                                                         {"port", "8080"},
                                                         {"requestid", std::to_string(id)},
                                                         {"x-padding", std::string(1000, 'p')}})});
  }
  auto r = s.receive(wire);
  EXPECT_TRUE(r) << r.error().message();
}

}  // namespace
}  // namespace kernelet::spdy
