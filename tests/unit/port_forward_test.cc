// Port-forward on a Transport (agent/streams/port_forward.h), the client
// played through FakeTransport, the pod's port a loopback listener of the
// test, dialed with netns::dialLocalhost in the test's own namespace.

#include "agent/streams/port_forward.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "agent/server/query.h"
#include "agent/streams/port_forward_endpoint.h"
#include "netns/dial.h"
#include "support/fake_transport.h"
#include "support/process_util.h"

namespace kernelet::agent::streams {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using kernelet::testing::FakeTransport;
using namespace std::chrono_literals;

// What the pod's listener does with each connection it accepts.
enum class Peer : uint8_t { kEcho, kSayByeAndClose, kFlood };

// A listener on 127.0.0.1, served on the test's io_context.
class PodListener {
 public:
  PodListener(asio::io_context& ioc, Peer mode, size_t flood_bytes = 0)
      : acceptor_(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        mode_(mode),
        flood_(flood_bytes, 'f') {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  int accepted = 0;   // connections
  int peer_eofs = 0;  // connections whose other end (the agent) closed or shut down
  int shutdown_errors = 0;
  size_t flood_sent = 0;
  bool flood_done = false;

 private:
  struct Conn {
    explicit Conn(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    std::array<char, 16384> buf{};
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) {
        return;
      }
      accepted++;
      auto c = std::make_shared<Conn>(std::move(s));
      if (mode_ == Peer::kSayByeAndClose) {
        asio::async_write(c->sock, asio::buffer(std::string_view("bye")),
                          [c](boost::system::error_code, size_t) { c->sock.close(); });
      } else if (mode_ == Peer::kFlood) {
        asio::async_write(c->sock, asio::buffer(flood_), [this, c](auto ec2, size_t n) {
          flood_sent = n;
          flood_done = !ec2;
        });
        readUntilEof(c);
      } else {
        readUntilEof(c);
      }
      accept();
    });
  }

  void readUntilEof(const std::shared_ptr<Conn>& c) {
    c->sock.async_read_some(
        asio::buffer(c->buf), [this, c](boost::system::error_code ec, size_t n) {
          if (ec) {
            peer_eofs++;
            if (mode_ == Peer::kEcho) {
              boost::system::error_code ignored;
              if (c->sock.shutdown(tcp::socket::shutdown_send, ignored)) {
                shutdown_errors++;  // the agent's side was reset: nothing to shut
              }
            }
            return;
          }
          if (mode_ != Peer::kEcho) {
            return readUntilEof(c);
          }
          asio::async_write(c->sock, asio::buffer(c->buf.data(), n),
                            [this, c](boost::system::error_code ec2, size_t) {
                              if (!ec2) {
                                readUntilEof(c);
                              }
                            });
        });
  }

  tcp::acceptor acceptor_;
  Peer mode_;
  std::string flood_;
};

class PortForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The loop's own descriptors (epoll, eventfd, timerfd) come with its
    // first socket and timer: make them now, so the leak check counts ours only.
    tcp::socket s(ioc_);
    s.open(tcp::v4());
    asio::steady_timer timer(ioc_, 0ms);
    timer.wait();
    fds_before_ = kernelet::testing::countEntries("/proc/self/fd") - 1;  // less `s`
  }

  // Serves port-forward on `t` with the real loopback dialer.
  void serve(FakeTransport& t, PortForwardOptions o = {}) {
    o.pod = PodRef{"default", "web", ""};
    if (o.linger == std::chrono::seconds(1)) {
      o.linger = 50ms;
    }
    auto shared = std::shared_ptr<FakeTransport>(&t, [](FakeTransport*) {});
    servePortForward(shared, o, [this](const PodRef&, uint16_t port, const auto& done) {
      dials_++;
      done(netns::dialLocalhost({"", "sandbox-1"}, port, 2s));
    });
  }

  // Runs the loop until `done` holds; fails after 10 s (a broken forward
  // hangs rather than fails otherwise).
  bool runUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      ioc_.run_one_for(20ms);
    }
    return true;
  }

  static StreamHeaders headers(const std::string& type, uint16_t port, const std::string& rid) {
    return {type, std::to_string(port), rid};
  }
  // A pair as client-go opens it: error stream first, then data.
  static void openPair(FakeTransport& t, StreamId error, StreamId data, uint16_t port,
                       const std::string& rid) {
    t.open(error, headers("error", port, rid));
    t.halfClose(error);  // client-go closes its side of the error stream at once
    t.open(data, headers("data", port, rid));
  }

  asio::io_context ioc_;
  int dials_ = 0;
  int fds_before_ = 0;
};

TEST_F(PortForwardTest, CopiesBothWaysAndEndsOnBothFins) {
  PodListener pod(ioc_, Peer::kEcho);
  {
    FakeTransport t(ioc_);
    serve(t);
    ASSERT_TRUE(t.started);
    openPair(t, 1, 3, pod.port(), "0");
    t.send(3, "hello ");
    t.send(3, "pod");
    ASSERT_TRUE(runUntil([&] { return t.written[3] == "hello pod"; })) << t.written[3];
    EXPECT_EQ(t.consumed_bytes[3], 9u);  // consumed once written to the socket
    EXPECT_FALSE(t.finished[3]);
    t.halfClose(3);  // the echo peer sees EOF, shuts down its side: both ways over
    ASSERT_TRUE(runUntil([&] { return t.finished[3] && t.finished[1]; }));
    EXPECT_EQ(pod.peer_eofs, 1);
    EXPECT_EQ(t.written[1], "");  // no error
    EXPECT_TRUE(t.resets.empty());
    EXPECT_EQ(t.close_calls, 0);  // SPDY: the connection stays for more pairs
    t.clientGone("test over");
    ioc_.poll();
  }
}

TEST_F(PortForwardTest, DataStreamFirstAndBufferedUntilDialed) {
  PodListener pod(ioc_, Peer::kEcho);
  FakeTransport t(ioc_);
  serve(t);
  t.open(7, headers("data", pod.port(), "x"));
  t.send(7, "early");  // before the pair is complete: kept, not consumed
  EXPECT_EQ(dials_, 0);
  EXPECT_EQ(t.consumed_bytes[7], 0u);
  t.open(5, headers("error", pod.port(), "x"));
  ASSERT_TRUE(runUntil([&] { return t.written[7] == "early"; }));
  EXPECT_EQ(dials_, 1);
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, TwentyConcurrentConnections) {
  PodListener pod(ioc_, Peer::kEcho);
  FakeTransport t(ioc_);
  serve(t);
  constexpr int kConns = 24;
  std::vector<std::string> payload(kConns);
  for (int i = 0; i < kConns; i++) {
    payload[i] = std::string(100000 + i * 1000, static_cast<char>('a' + i));
    openPair(t, 4 * i + 1, 4 * i + 3, pod.port(), std::to_string(i));
  }
  for (int i = 0; i < kConns; i++) {
    for (size_t off = 0; off < payload[i].size(); off += 8192) {
      t.send(4 * i + 3, std::string_view(payload[i]).substr(off, 8192));
    }
    t.halfClose(4 * i + 3);
  }
  ASSERT_TRUE(runUntil([&] {
    for (int i = 0; i < kConns; i++) {
      if (!t.finished[4 * i + 1]) {
        return false;
      }
    }
    return true;
  }));
  EXPECT_EQ(pod.accepted, kConns);
  for (int i = 0; i < kConns; i++) {
    EXPECT_EQ(t.written[4 * i + 3], payload[i]) << "connection " << i;
    EXPECT_EQ(t.consumed_bytes[4 * i + 3], payload[i].size());
    EXPECT_EQ(t.written[4 * i + 1], "");
  }
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, RefusedPortIsReportedOnTheErrorStream) {
  // Bound, not listening: a connect is refused.
  tcp::socket closed(ioc_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  uint16_t port = closed.local_endpoint().port();
  FakeTransport t(ioc_);
  serve(t);
  openPair(t, 1, 3, port, "0");
  ASSERT_TRUE(runUntil([&] { return t.finished[1]; }));
  std::string p = std::to_string(port);
  std::string want =
      "error forwarding port " + p +
      " to pod default/web, uid : failed to execute portforward in network namespace "
      "\"host\": failed to connect to localhost:" +
      p + " inside namespace \"sandbox-1\", IPv4: dial tcp4 127.0.0.1:" + p +
      ": connect: connection refused IPv6 dial tcp6 [::1]:" + p + ": ";
  EXPECT_EQ(t.written[1].substr(0, want.size()), want) << t.written[1];
  EXPECT_TRUE(t.finished[3]);
  EXPECT_EQ(t.written[3], "");
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, ClientResetDropsThePairAndClosesTheSocket) {
  PodListener pod(ioc_, Peer::kEcho);
  FakeTransport t(ioc_);
  serve(t);
  openPair(t, 1, 3, pod.port(), "0");
  t.send(3, "ping");
  ASSERT_TRUE(runUntil([&] { return t.written[3] == "ping"; }));
  t.clientReset(3);
  EXPECT_TRUE(t.resets[1]);   // the pair's other stream goes too
  EXPECT_FALSE(t.resets[3]);  // the client's own reset is not answered
  ASSERT_TRUE(runUntil([&] { return pod.peer_eofs == 1; }));  // the pod sees the close
  t.send(3, "late");                                          // after the reset: dropped
  ioc_.poll();
  EXPECT_EQ(t.written[3], "ping");
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, PodClosingFinishesTheDataStreamThenThePair) {
  PodListener pod(ioc_, Peer::kSayByeAndClose);
  FakeTransport t(ioc_);
  serve(t);
  openPair(t, 1, 3, pod.port(), "0");
  ASSERT_TRUE(runUntil([&] { return t.finished[3]; }));
  EXPECT_EQ(t.written[3], "bye");
  // The client never half-closes: the pair ends after the linger.
  ASSERT_TRUE(runUntil([&] { return t.finished[1]; }));
  EXPECT_EQ(t.written[1], "");
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, ClientThatNeverReadsBoundsWhatIsRead) {
  constexpr size_t kFlood = 8 << 20;
  PodListener pod(ioc_, Peer::kFlood, kFlood);
  FakeTransport t(ioc_);
  t.hold_writes = true;  // the client reads nothing
  PortForwardOptions o;
  o.read_chunk = 16384;
  serve(t, o);
  openPair(t, 1, 3, pod.port(), "0");
  ASSERT_TRUE(runUntil([&] { return t.writes == 1; }));
  ioc_.run_for(300ms);  // time for a broken forward to read more
  EXPECT_EQ(t.writes, 1);
  EXPECT_LE(t.written[3].size(), o.read_chunk);
  EXPECT_FALSE(pod.flood_done);  // the pod's writer is held back by TCP
  // Once the client reads, everything arrives, in order.
  ASSERT_TRUE(runUntil([&] {
    t.releaseWrites();
    return t.written[3].size() == kFlood;
  }));
  EXPECT_EQ(t.written[3], std::string(kFlood, 'f'));
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, StreamCreationTimeout) {
  FakeTransport t(ioc_);
  PortForwardOptions o;
  o.stream_creation_timeout = 50ms;
  serve(t, o);
  t.open(1, headers("error", 80, "lonely-error"));
  t.open(3, headers("data", 80, "lonely-data"));
  ASSERT_TRUE(runUntil([&] { return t.finished[1] && t.resets[3]; }));
  EXPECT_NE(t.written[1].find(", request=lonely-error) timed out waiting for streams"),
            std::string::npos)
      << t.written[1];
  EXPECT_EQ(dials_, 0);
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, BadStreamsAreResetOthersGoOn) {
  PodListener pod(ioc_, Peer::kEcho);
  FakeTransport t(ioc_);
  PortForwardOptions o;
  o.stream_creation_timeout = 100ms;
  serve(t, o);
  t.open(1, headers("stdin", pod.port(), "a"));
  t.open(3, {"data", "0", "a"});
  t.open(5, {"data", "70000", "a"});
  t.open(7, {"data", "http", "a"});
  t.open(9, {"data", "", "a"});
  for (StreamId id : {1u, 3u, 5u, 7u, 9u}) {
    EXPECT_TRUE(t.resets[id]) << id;
  }
  openPair(t, 11, 13, pod.port(), "a");
  // As the kubelet: a complete pair is no longer looked up, so a third
  // stream of "a" starts a new pair, which times out alone.
  t.open(15, headers("data", pod.port(), "a"));
  EXPECT_FALSE(t.resets[15]);
  t.send(13, "ok");
  ASSERT_TRUE(runUntil([&] { return t.written[13] == "ok" && t.resets[15]; }));
  EXPECT_EQ(t.written[11], "");
  EXPECT_FALSE(t.resets[11] || t.resets[13]);
  EXPECT_EQ(dials_, 1);
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, DuplicateBeforePairingIsReportedOnTheErrorStream) {
  FakeTransport t(ioc_);
  serve(t);
  t.open(1, headers("error", 80, "r"));
  t.open(3, headers("error", 80, "r"));
  EXPECT_TRUE(t.resets[3]);
  ASSERT_TRUE(runUntil([&] { return !t.written[1].empty(); }));
  EXPECT_EQ(t.written[1], "error processing stream for request r: error stream already assigned");
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, OldClientWithoutRequestIdPairsByStreamIds) {
  PodListener pod(ioc_, Peer::kEcho);
  FakeTransport t(ioc_);
  serve(t);
  t.open(5, headers("error", pod.port(), ""));
  t.open(7, headers("data", pod.port(), ""));
  t.send(7, "x");
  ASSERT_TRUE(runUntil([&] { return t.written[7] == "x"; }));
  t.clientGone("test over");
  ioc_.poll();
}

TEST_F(PortForwardTest, ConnectionGoneClosesEverySocketAndLeaksNoFd) {
  {
    PodListener pod(ioc_, Peer::kEcho);
    FakeTransport t(ioc_);
    serve(t);
    for (int i = 0; i < 5; i++) {
      openPair(t, 4 * i + 1, 4 * i + 3, pod.port(), std::to_string(i));
      t.send(4 * i + 3, "x");
    }
    ASSERT_TRUE(runUntil([&] { return t.written[19] == "x"; }));
    t.clientGone("client went");
    ASSERT_TRUE(runUntil([&] { return pod.peer_eofs == 5; }));
    EXPECT_TRUE(t.resets.empty());  // nothing more is said on a closed connection
    ioc_.poll();
  }
  ioc_.restart();
  ioc_.poll();
  EXPECT_EQ(kernelet::testing::countEntries("/proc/self/fd"), fds_before_);
}

TEST_F(PortForwardTest, WebSocketChannelsOnePairPerPortThenTheConnectionCloses) {
  PodListener pod(ioc_, Peer::kSayByeAndClose);
  tcp::socket closed(ioc_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  uint16_t refused = closed.local_endpoint().port();
  ChannelPlan plan = portForwardChannels({pod.port(), refused});
  ASSERT_EQ(plan.channels.size(), 4u);
  EXPECT_TRUE(plan.port_prefix);
  EXPECT_EQ(plan.channels[2].first, 2u);
  EXPECT_EQ(plan.channels[2].second.type, "data");
  EXPECT_EQ(plan.channels[3].second.type, "error");
  EXPECT_EQ(plan.channels[3].second.port, std::to_string(refused));

  FakeTransport t(ioc_);
  PortForwardOptions o;
  o.channels = true;
  serve(t, o);
  for (auto& [id, h] : plan.channels) {  // what the WebSocket framing's start() reports
    t.open(id, h);
  }
  EXPECT_EQ(dials_, 2);
  ASSERT_TRUE(runUntil([&] { return t.close_calls == 1; }));
  EXPECT_EQ(t.written[0], "bye");
  EXPECT_EQ(t.written[1], "");
  EXPECT_NE(t.written[3].find("error forwarding port " + std::to_string(refused) +
                              " to pod default/web, uid : failed to execute portforward in network "
                              "namespace \"host\": failed to connect to localhost:"),
            std::string::npos)
      << t.written[3];
  ioc_.poll();
}

TEST(PortQueryTest, KubeletAnswers) {
  auto parse = [](const std::string& raw) -> Result<std::vector<uint16_t>> {
    auto q = server::Query::parse(raw);
    if (!q) {
      return std::unexpected(q.error());
    }
    return parsePortQuery(*q);
  };
  auto ok = parse("port=80,8080&port=53");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(*ok, (std::vector<uint16_t>{80, 8080, 53}));
  auto err = [&](const std::string& raw) { return parse(raw).error().detail; };
  EXPECT_EQ(err(""), "query parameter \"port\" is required");
  EXPECT_EQ(err("port="), "query parameter \"port\" cannot be empty");
  EXPECT_EQ(err("port=80,x"),
            "unable to parse \"80,x\" as a port: strconv.ParseUint: parsing \"x\": invalid syntax");
  EXPECT_EQ(err("port=65536"),
            "unable to parse \"65536\" as a port: strconv.ParseUint: parsing "
            "\"65536\": value out of range");
  EXPECT_EQ(err("port=80,"),
            "unable to parse \"80,\" as a port: strconv.ParseUint: parsing \"\": invalid syntax");
  EXPECT_EQ(err("port=0"), "port \"0\" must be > 0");
  std::string many = "port=1";
  for (int i = 2; i <= 129; i++) {
    many += "," + std::to_string(i);
  }
  EXPECT_EQ(err(many), "too many ports: at most 128");
}

}  // namespace
}  // namespace kernelet::agent::streams

namespace kernelet::agent::streams {
namespace {

// Review (issue #18): a dial still in flight when the node server stops.
// The agent destroys the server (its io_context) before its Dialer, whose
// threads then run `done`: the callback posts to the executor of the
// destroyed io_context, and dropping it destroys the Pair's steady_timer
// after its io_context. Run under valgrind to see the invalid accesses.
TEST(PortForwardReviewTest, DialOutlivingTheServersIoContext) {
  std::function<void(Result<UniqueFd>)> held;  // the dial thread's callback
  {
    auto ioc = std::make_unique<asio::io_context>();
    {
      auto t = std::make_shared<FakeTransport>(*ioc);
      PortForwardOptions o;
      o.pod = PodRef{"default", "web", ""};
      servePortForward(t, o, [&held](const PodRef&, uint16_t, auto done) { held = done; });
      t->open(1, StreamHeaders{"error", "80", "0"});
      t->halfClose(1);
      t->open(3, StreamHeaders{"data", "80", "0"});
      ASSERT_TRUE(held);
      t->clientGone("server stopping");  // closeSessions() closes the upgraded socket
      ioc->restart();
      ioc->poll();
    }
    ioc.reset();  // NodeServer::stop(): ioc_.reset()
  }
  // ~Agent: dialer_ joins its threads after server_.reset(); one finishes now.
  held(makeError("dial", "", "connection timed out"));
  held = nullptr;
  SUCCEED();
}

}  // namespace
}  // namespace kernelet::agent::streams

namespace kernelet::agent::streams {
namespace {

long rssKiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

// Review (issue #18): a request id is kept whole (pairing_ key and
// Pair::request_id) for each unpaired stream until the creation timeout.
// SPDY lets a header block inflate to 256 KiB and 1000 streams be open, and
// 256 KiB of one byte deflates to ~260 bytes: ~260 KB on the wire holds
// ~500 MiB in the agent per connection, for 1024 connections.
TEST(PortForwardReviewTest, HugeRequestIdsAreKeptPerUnpairedStream) {
  asio::io_context ioc;
  auto t = std::make_shared<FakeTransport>(ioc);
  PortForwardOptions o;
  o.pod = PodRef{"default", "web", ""};
  servePortForward(t, o, [](const PodRef&, uint16_t, auto) {});
  long before = rssKiB();
  for (uint32_t i = 0; i < 1000; i++) {
    std::string rid(250 << 10, 'a');
    rid += std::to_string(i);
    t->open(2 * i + 1, StreamHeaders{"data", "80", rid});
  }
  long grown = rssKiB() - before;
  std::printf("RSS grew by %ld MiB for 1000 data streams\n", grown >> 10);
  EXPECT_LT(grown, 64L << 10) << "unbounded request ids";
  t->clientGone("done");
  ioc.poll();
}

}  // namespace
}  // namespace kernelet::agent::streams
