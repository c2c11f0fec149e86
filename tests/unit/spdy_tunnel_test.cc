// SPDY tunneled in WebSocket (agent/streams/spdy_tunnel.h), as kubectl's
// port-forward sends it first: a NodeServer in-process on loopback TLS whose
// /portForward is the agent's endpoint, dialing a loopback echo server of the
// test; the client is Beast's WebSocket client carrying SPDY frames made by
// the test's SPDY client, split across binary messages at odd places.
#include "agent/streams/spdy_tunnel.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "agent/server/server.h"
#include "agent/streams/port_forward_endpoint.h"
#include "netns/dial.h"
#include "support/spdy_client.h"
#include "support/temp_dir.h"

namespace kernelet::agent::streams {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using kernelet::testing::SpdyClient;
using namespace std::chrono_literals;

// The pod's port: a loopback listener echoing each connection until its
// EOF, then shutting its own side (threads: the test's loop is the client's).
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_, 64) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "echo server: cannot listen";
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { acceptLoop(); });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (thread_.joinable()) {
      thread_.join();
    }
    for (auto& t : conns_) {
      t.join();
    }
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void acceptLoop() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      timeval tv{20, 0};  // a connection the test forgot still ends
      (void)::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      conns_.emplace_back([c] {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(c, buf, sizeof buf)) > 0) {
          for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(c, buf + off, static_cast<size_t>(n - off));
            if (w <= 0) {
              break;
            }
            off += w;
          }
        }
        ::shutdown(c, SHUT_WR);
        ::close(c);
      });
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> conns_;  // only acceptLoop adds, joined after it
};

class SpdyTunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.stream_idle_timeout = idle_timeout_;
    c.tls.cert_dir = dir_.path() + "/pki";
    c.tls.node_name = "node-a";
    c.tls.ips = {"127.0.0.1"};
    server::Endpoints e;
    e.port_forward = portForwardHandler(
        [](const PodRef& pod) { return pod.namespace_ == "default" && pod.name == "web"; },
        [](const PodRef&, uint16_t port, const std::function<void(Result<UniqueFd>)>& done) {
          // The test's own namespace: a hostNetwork pod's dial.
          done(netns::dialLocalhost({"", "sandbox-1"}, port, 2s));
        });
    server::Security s;
    s.authn.anonymous = true;  // AlwaysAllow: the framing is under test
    auto r = server::NodeServer::start(std::move(c), std::move(e), s);
    ASSERT_TRUE(r) << r.error().message();
    server_ = std::move(*r);
  }

  using Client = websocket::stream<beast::ssl_stream<net::ip::tcp::socket>>;

  // A WebSocket offering `protocols`; the handshake's error and answer are
  // left in `ec` and `res` (a refusal's body included).
  std::unique_ptr<Client> open(const std::string& protocols, beast::error_code& ec,
                               websocket::response_type& res,
                               const std::string& target = "/portForward/default/web") {
    auto ws = std::make_unique<Client>(ioc_, tls_);
    beast::get_lowest_layer(*ws).connect(
        {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())});
    ws->next_layer().handshake(net::ssl::stream_base::client);
    ws->set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
      req.set(http::field::sec_websocket_protocol, protocols);
    }));
    ws->handshake(res, "127.0.0.1", target, ec);
    ws->binary(true);
    return ws;
  }

  // A WebSocket upgrade the server refuses: its whole HTTP answer (Beast's
  // client handshake keeps no body of a refusal).
  http::response<http::string_body> refused(const std::string& protocols) {
    Client ws(ioc_, tls_);
    beast::get_lowest_layer(ws).connect(
        {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())});
    ws.next_layer().handshake(net::ssl::stream_base::client);
    http::request<http::string_body> req{http::verb::get, "/portForward/default/web", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::sec_websocket_protocol, protocols);
    http::write(ws.next_layer(), req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(ws.next_layer(), buf, res, ec);
    EXPECT_TRUE(!ec || ec == http::error::end_of_stream) << ec.message();
    return res;
  }

  std::unique_ptr<Client> openTunnel() {
    beast::error_code ec;
    websocket::response_type res;
    auto ws = open("SPDY/3.1+portforward.k8s.io", ec, res);
    EXPECT_FALSE(ec) << ec.message() << " " << res.result_int() << " " << res.body();
    EXPECT_EQ(res[http::field::sec_websocket_protocol], "SPDY/3.1+portforward.k8s.io");
    return ws;
  }

  // The bytes as binary messages of `piece` bytes each (the last shorter).
  void sendSplit(Client& ws, const std::string& bytes, size_t piece) {
    for (size_t at = 0; at < bytes.size(); at += piece) {
      ws.write(net::buffer(bytes.substr(at, piece)));
    }
  }

  // Reads messages into `spdy` until `done` holds; false after 10 s, or if
  // the connection ended first (how, in `end`).
  bool readUntil(Client& ws, SpdyClient& spdy, const std::function<bool()>& done,
                 beast::error_code* end = nullptr) {
    return readMessages(
        ws,
        [&](const std::string& m) {
          for (auto& f : spdy.read(m)) {
            frames_.push_back(std::move(f));
          }
        },
        done, end);
  }

  // Hands each message to `on` until `done` holds; as readUntil.
  bool readMessages(Client& ws, const std::function<void(const std::string&)>& on,
                    const std::function<bool()>& done, beast::error_code* end = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      beast::flat_buffer b;
      std::optional<beast::error_code> got;
      ws.async_read(b, [&](beast::error_code e, size_t) { got = e; });
      ioc_.restart();
      ioc_.run_until(deadline);
      if (!got) {
        beast::error_code ignored;
        beast::get_lowest_layer(ws).close(ignored);
        ioc_.restart();
        ioc_.run();
        return false;
      }
      if (*got) {
        if (end != nullptr) {
          *end = *got;
        }
        return done();
      }
      EXPECT_TRUE(ws.got_binary());
      on(beast::buffers_to_string(b.data()));
    }
    return true;
  }

  // One forwarded connection's streams, error first as kubectl opens them.
  static std::string openPair(SpdyClient& spdy, uint32_t error_id, uint32_t data_id, uint16_t port,
                              const std::string& request_id) {
    std::string p = std::to_string(port);
    std::string out =
        spdy.synStream(error_id, {{"streamtype", "error"}, {"port", p}, {"requestid", request_id}});
    out +=
        spdy.synStream(data_id, {{"streamtype", "data"}, {"port", p}, {"requestid", request_id}});
    return out;
  }

  std::chrono::milliseconds idle_timeout_ = std::chrono::hours(4);  // the kubelet's default
  testing::TempDir dir_;
  EchoServer echo_;
  std::unique_ptr<server::NodeServer> server_;  // stops before the echo server goes
  net::io_context ioc_;
  net::ssl::context tls_{net::ssl::context::tls_client};
  std::vector<spdy::Frame> frames_;  // every frame readUntil saw
};

template <typename T>
bool saw(const std::vector<spdy::Frame>& frames) {
  for (const auto& f : frames) {
    if (std::holds_alternative<T>(f)) {
      return true;
    }
  }
  return false;
}

TEST_F(SpdyTunnelTest, ForwardsBothWaysOnConcurrentStreamsWhateverTheMessageSplit) {
  auto ws = openTunnel();
  SpdyClient spdy;
  // Three connections opened and written at once, the frames cut into
  // 7-byte messages: message boundaries fall inside frame headers.
  std::string out;
  for (uint32_t i = 0; i < 3; i++) {
    out += openPair(spdy, 1 + 4 * i, 3 + 4 * i, echo_.port(), std::to_string(i));
  }
  for (uint32_t i = 0; i < 3; i++) {
    out += SpdyClient::data(3 + 4 * i, "hello-" + std::to_string(i));
  }
  sendSplit(*ws, out, 7);
  ASSERT_TRUE(readUntil(*ws, spdy, [&] {
    return spdy.received[3] == "hello-0" && spdy.received[7] == "hello-1" &&
           spdy.received[11] == "hello-2";
  })) << spdy.error;
  EXPECT_EQ(spdy.replies.size(), 6u);  // every stream answered
  // More on one of them, in one message with a FIN: the echo ends, and so
  // does the data stream, without touching the others.
  sendSplit(*ws, SpdyClient::data(7, " and more", true), 1 << 20);
  ASSERT_TRUE(readUntil(*ws, spdy, [&] { return spdy.fins[7]; })) << spdy.error;
  EXPECT_EQ(spdy.received[7], "hello-1 and more");
  EXPECT_FALSE(spdy.fins[3]);
  EXPECT_TRUE(spdy.error.empty()) << spdy.error;
  ws->close(websocket::close_code::normal);
}

TEST_F(SpdyTunnelTest, RefusedPortIsReportedOnTheErrorStream) {
  // Bound, not listening: a connect is refused.
  net::ip::tcp::socket closed(ioc_, net::ip::tcp::endpoint(net::ip::address_v4::loopback(), 0));
  uint16_t port = closed.local_endpoint().port();
  auto ws = openTunnel();
  SpdyClient spdy;
  sendSplit(*ws, openPair(spdy, 1, 3, port, "0"), 1 << 20);
  ASSERT_TRUE(readUntil(*ws, spdy, [&] { return spdy.fins[1]; })) << spdy.error;
  std::string p = std::to_string(port);
  EXPECT_EQ(spdy.received[1].rfind("error forwarding port " + p + " to pod default/web, uid : ", 0),
            0u)
      << spdy.received[1];
  EXPECT_NE(spdy.received[1].find("dial tcp4 127.0.0.1:" + p + ": connect: connection refused"),
            std::string::npos)
      << spdy.received[1];
}

TEST_F(SpdyTunnelTest, NoTunnelingProtocolIs400AndNoSharedOneIs403) {
  // "SPDY/3.1+" asks for the tunnel, but names no Kubernetes protocol.
  auto res = refused("SPDY/3.1+foo");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res.body(), "unable to upgrade: no tunneling spdy protocols provided\n");
  auto res2 = refused("SPDY/3.1+v9.portforward.k8s.io");
  EXPECT_EQ(res2.result_int(), 403u);
  EXPECT_EQ(res2.body(),
            "unable to upgrade: unable to negotiate protocol: client supports "
            "[v9.portforward.k8s.io], server accepts [portforward.k8s.io]\n");
  EXPECT_EQ(res2["X-Accepted-Stream-Protocol-Versions"], "portforward.k8s.io");
  // Channel port-forward is still there beside it, with its `port` query.
  auto res3 = refused("v4.channel.k8s.io");
  EXPECT_EQ(res3.result_int(), 400u);
  EXPECT_EQ(res3.body(), "query parameter \"port\" is required\n");
}

TEST_F(SpdyTunnelTest, TextMessageEndsTheConnection) {
  auto ws = openTunnel();
  SpdyClient spdy;
  ws->text(true);
  ws->write(net::buffer(std::string("not binary")));
  beast::error_code end;
  EXPECT_FALSE(readUntil(
      *ws, spdy, [] { return false; }, &end));
  EXPECT_TRUE(end) << "the connection stayed open";
  EXPECT_TRUE(spdy.replies.empty());
}

TEST_F(SpdyTunnelTest, MalformedSpdyGetsGoAwayAndACloseFrame) {
  auto ws = openTunnel();
  SpdyClient spdy;
  // A control frame of SPDY version 2, cut across messages.
  sendSplit(*ws, std::string("\x80\x02\x00\x01\x00\x00\x00\x00", 8), 3);
  beast::error_code end;
  EXPECT_FALSE(readUntil(
      *ws, spdy, [] { return false; }, &end));
  EXPECT_TRUE(saw<spdy::GoAway>(frames_)) << "no GOAWAY before the end";
  EXPECT_EQ(end, websocket::error::closed) << end.message();
  EXPECT_EQ(ws->reason().code, websocket::close_code::normal);
}

TEST_F(SpdyTunnelTest, UnmaskedFrameIsAProtocolError) {
  auto ws = openTunnel();
  SpdyClient spdy;
  // A binary frame without the mask bit: a client must mask (RFC 6455 5.1).
  net::write(ws->next_layer(), net::buffer(std::string("\x82\x03"
                                                       "abc",
                                                       5)));
  beast::error_code end;
  EXPECT_FALSE(readUntil(
      *ws, spdy, [] { return false; }, &end));
  EXPECT_EQ(end, websocket::error::closed) << end.message();
  EXPECT_EQ(ws->reason().code, websocket::close_code::protocol_error);
}

TEST_F(SpdyTunnelTest, PingsAreAnsweredInBothLayers) {
  auto ws = openTunnel();
  SpdyClient spdy;
  bool pong = false;
  ws->control_callback([&](websocket::frame_type kind, beast::string_view) {
    pong = pong || kind == websocket::frame_type::pong;
  });
  ws->ping({});
  // spdystream's keepalive: a PING with an odd id, echoed by the server.
  sendSplit(*ws, SpdyClient::frame(spdy::Ping{.id = 1}), 5);
  EXPECT_TRUE(readUntil(*ws, spdy, [&] { return pong && saw<spdy::Ping>(frames_); }))
      << "pong " << pong << ", SPDY PING back " << saw<spdy::Ping>(frames_);
  ws->close(websocket::close_code::normal);
}

// streamingConnectionIdleTimeout, short: a connection without traffic either
// way is closed, in both framings; one with traffic is not.
class StreamIdleTimeoutTest : public SpdyTunnelTest {
 protected:
  void SetUp() override {
    idle_timeout_ = 600ms;
    SpdyTunnelTest::SetUp();
  }
};

TEST_F(StreamIdleTimeoutTest, AnIdleSpdyConnectionGetsGoAwayAndIsClosed) {
  auto ws = openTunnel();
  SpdyClient spdy;
  sendSplit(*ws, openPair(spdy, 1, 3, echo_.port(), "0") + SpdyClient::data(3, "once"), 64);
  ASSERT_TRUE(readUntil(*ws, spdy, [&] { return spdy.received[3] == "once"; })) << spdy.error;
  auto quiet = std::chrono::steady_clock::now();
  beast::error_code end;
  EXPECT_FALSE(readUntil(
      *ws, spdy, [] { return false; }, &end));
  auto waited = std::chrono::steady_clock::now() - quiet;
  EXPECT_TRUE(saw<spdy::GoAway>(frames_));
  EXPECT_EQ(end, websocket::error::closed) << end.message();
  EXPECT_GE(waited, 500ms);
  EXPECT_LT(waited, 5s);
}

TEST_F(StreamIdleTimeoutTest, ASpdyConnectionWithTrafficStaysOpen) {
  auto ws = openTunnel();
  SpdyClient spdy;
  sendSplit(*ws, openPair(spdy, 1, 3, echo_.port(), "0"), 64);
  // 2.4 s of echoes, one every 300 ms: four idle timeouts' worth.
  std::string want;
  for (int i = 0; i < 8; i++) {
    std::string piece = "tick" + std::to_string(i) + ";";
    want += piece;
    sendSplit(*ws, SpdyClient::data(3, piece), 1 << 20);
    ASSERT_TRUE(readUntil(*ws, spdy, [&] { return spdy.received[3] == want; })) << i;
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_FALSE(saw<spdy::GoAway>(frames_));
  ws->close(websocket::close_code::normal);
}

TEST_F(StreamIdleTimeoutTest, AnIdleWebSocketConnectionIsClosedAndABusyOneIsNot) {
  beast::error_code ec;
  websocket::response_type res;
  std::string target = "/portForward/default/web?port=" + std::to_string(echo_.port());
  auto busy = open("v4.channel.k8s.io", ec, res, target);
  ASSERT_FALSE(ec) << ec.message() << " " << res.body();
  auto idle = open("v4.channel.k8s.io", ec, res, target);
  ASSERT_FALSE(ec) << ec.message() << " " << res.body();
  auto start = std::chrono::steady_clock::now();
  // The busy one: data on channel 0 every 300 ms for 2.4 s, echoed on it.
  std::string echoed;
  for (int i = 0; i < 8; i++) {
    std::string piece = "tick" + std::to_string(i) + ";";
    busy->write(net::buffer(std::string(1, '\0') + piece));
    std::string want = echoed + piece;
    ASSERT_TRUE(readMessages(
        *busy,
        [&](const std::string& m) {
          // Each channel's first message is its port (2 bytes): not data.
          if (m.size() > 1 && m[0] == '\0' && m.size() != 3) {
            echoed += m.substr(1);
          }
        },
        [&] { return echoed == want; }))
        << i;
    std::this_thread::sleep_for(300ms);
  }
  // The idle one went meanwhile, with a close frame.
  beast::error_code end;
  EXPECT_FALSE(readMessages(
      *idle, [](const std::string&) {}, [] { return false; }, &end));
  EXPECT_EQ(end, websocket::error::closed) << end.message();
  EXPECT_EQ(idle->reason().code, websocket::close_code::normal);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 500ms);
  busy->close(websocket::close_code::normal);
}

TEST(SpdyTunnelProtocols, OnlyPrefixedKubernetesProtocolsCount) {
  EXPECT_EQ(tunneledSpdyProtocols({"v4.channel.k8s.io", "SPDY/3.1+portforward.k8s.io",
                                   "SPDY/3.1+x.example.com", "spdy/3.1+a.k8s.io",
                                   "SPDY/3.1+v2.portforward.k8s.io"}),
            (std::vector<std::string>{"portforward.k8s.io", "v2.portforward.k8s.io"}));
  EXPECT_TRUE(tunneledSpdyProtocols({}).empty());
}

}  // namespace
}  // namespace kernelet::agent::streams
