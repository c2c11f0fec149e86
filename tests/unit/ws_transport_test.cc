// The WebSocket framing (agent/streams/websocket_transport.h) over real TLS
// on loopback: a NodeServer in-process whose /exec hands the connection to
// acceptWebSocket and an echo user of the Transport, driven by Beast's
// WebSocket client, by raw frames (bad masks and lengths), and once by
// python3-websocket as an independent client.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/server/server.h"
#include "agent/streams/websocket_transport.h"
#include "agent/streams/ws_channels.h"
#include "support/temp_dir.h"

namespace kernelet::agent::streams {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

const std::vector<std::string> kExecProtocols = {
    "v5.channel.k8s.io", "v4.channel.k8s.io",        "v3.channel.k8s.io",    "v2.channel.k8s.io",
    "channel.k8s.io",    "v4.base64.channel.k8s.io", "base64.channel.k8s.io"};

ChannelPlan execPlan(const std::string&) {
  ChannelPlan p;
  for (auto [id, type] : std::vector<std::pair<StreamId, std::string>>{
           {0, "stdin"}, {1, "stdout"}, {2, "stderr"}, {3, "error"}, {4, "resize"}}) {
    p.channels.push_back({id, StreamHeaders{.type = type}});
  }
  return p;
}

// What the server side saw, for the test thread.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> protocols;
  std::vector<std::string> closed;  // closed() errors
  std::vector<std::string> refused;
  size_t data_events = 0, received = 0, sent = 0, max_held = 0;

  template <typename Pred>
  bool waitFor(Pred pred, std::chrono::milliseconds d = 10s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, d, [&] { return pred(); });
  }
};

// The Transport's user: stdin (0) comes back on stdout (1), consumed only
// once written (so a client that does not read stops its own input); the
// v5 CLOSE of stdin writes "bye" on the error channel (3) and closes;
// "burst N" on resize (4) writes N messages "msg I" on stderr (2), one
// after another.
class Echo : public std::enable_shared_from_this<Echo> {
 public:
  Echo(std::shared_ptr<Transport> t, Seen& seen) : t_(std::move(t)), seen_(seen) {}

  void start() {
    auto self = shared_from_this();
    TransportEvents ev;
    ev.opened = [](StreamId, const StreamHeaders&) {};
    ev.data = [self](StreamId id, std::string_view b) { self->onData(id, b); };
    ev.half_closed = [self](StreamId id) {
      if (id == 0) {
        self->t_->write(3, "bye", [self](bool) { self->t_->close(); });
      }
    };
    ev.closed = [self](const Error& e) {
      std::lock_guard l(self->seen_.mu);
      self->seen_.closed.push_back(e.message());
      self->seen_.cv.notify_all();
    };
    t_->start(std::move(ev));
  }

 private:
  void onData(StreamId id, std::string_view b) {
    {
      std::lock_guard l(seen_.mu);
      seen_.data_events++;
      seen_.received += b.size();
      seen_.max_held = std::max(seen_.max_held, seen_.received - seen_.sent);
      seen_.cv.notify_all();
    }
    if (id == 4 && b.starts_with("burst ")) {
      burst_left_ = std::stoi(std::string(b.substr(6)));
      t_->consumed(id, b.size());
      return burst();
    }
    if (id != 0) {
      return t_->consumed(id, b.size());
    }
    pending_ += b;
    flush();
  }

  void flush() {
    if (writing_ || pending_.empty()) {
      return;
    }
    writing_ = true;
    size_t n = pending_.size();
    t_->write(1, std::move(pending_), [self = shared_from_this(), n](bool ok) {
      self->writing_ = false;
      if (!ok) {
        return;
      }
      {
        std::lock_guard l(self->seen_.mu);
        self->seen_.sent += n;
      }
      self->t_->consumed(0, n);
      self->flush();
    });
    pending_.clear();
  }

  void burst() {
    if (burst_left_ == 0) {
      return;
    }
    int i = burst_total_++;
    burst_left_--;
    t_->write(2, "msg " + std::to_string(i), [self = shared_from_this()](bool ok) {
      if (ok) {
        self->burst();
      }
    });
  }

  std::shared_ptr<Transport> t_;
  Seen& seen_;
  std::string pending_;
  bool writing_ = false;
  int burst_left_ = 0, burst_total_ = 0;
};

class WsTransport : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.tls.cert_dir = dir_.path() + "/pki";
    c.tls.node_name = "node-a";
    c.tls.ips = {"127.0.0.1"};
    server::Security sec;
    sec.authn.anonymous = true;  // AlwaysAllow: the framing is under test, not access
    server::Endpoints e;
    e.exec = [this](server::Request, std::shared_ptr<UpgradedConnection> conn) {
      acceptWebSocket(
          std::move(conn), kExecProtocols, execPlan,
          [this](std::expected<Negotiated, UpgradeError> r) { accepted(std::move(r)); });
    };
    e.port_forward = [this](server::Request, std::shared_ptr<UpgradedConnection> conn) {
      auto plan = [](const std::string&) {
        ChannelPlan p;
        p.port_prefix = true;
        p.channels = {{0, {.type = "data", .port = "8080"}},
                      {1, {.type = "error", .port = "8080"}},
                      {2, {.type = "data", .port = "443"}},
                      {3, {.type = "error", .port = "443"}}};
        return p;
      };
      acceptWebSocket(
          std::move(conn), {"v4.channel.k8s.io", "v4.base64.channel.k8s.io"}, plan,
          [this](std::expected<Negotiated, UpgradeError> r) { accepted(std::move(r)); });
    };
    auto s = server::NodeServer::start(c, std::move(e), sec);
    ASSERT_TRUE(s) << s.error().message();
    server_ = std::move(*s);
  }

  void accepted(std::expected<Negotiated, UpgradeError> r) {
    if (!r) {
      std::lock_guard l(seen_.mu);
      seen_.refused.push_back(std::to_string(r.error().status) + " " + r.error().message);
      seen_.cv.notify_all();
      return;
    }
    {
      std::lock_guard l(seen_.mu);
      seen_.protocols.push_back(r->protocol);
    }
    std::make_shared<Echo>(r->transport, seen_)->start();
  }

  using Client = websocket::stream<beast::ssl_stream<net::ip::tcp::socket>>;

  // A TLS connection to the server, not upgraded yet.
  std::unique_ptr<Client> connect() {
    auto ws = std::make_unique<Client>(ioc_, tls_);
    beast::get_lowest_layer(*ws).connect(
        {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())});
    ws->next_layer().handshake(net::ssl::stream_base::client);
    return ws;
  }

  // Upgraded with `protocols` offered (empty: no Sec-WebSocket-Protocol).
  std::unique_ptr<Client> open(const std::string& protocols,
                               websocket::response_type* res = nullptr,
                               const std::string& target = "/exec/default/pod/c?command=cat") {
    auto ws = connect();
    ws->set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
      if (!protocols.empty()) {
        req.set(http::field::sec_websocket_protocol, protocols);
      }
    }));
    websocket::response_type r;
    ws->handshake(r, "127.0.0.1", target);
    if (res != nullptr) {
      *res = r;
    }
    return ws;
  }

  // The next message, or "" and a failure after 10 s (a test never hangs
  // on a server that does not answer). `ec` gets how the read ended.
  std::string readMessage(Client& ws, beast::error_code* ec = nullptr) {
    beast::flat_buffer b;
    std::optional<beast::error_code> got;
    ws.async_read(b, [&](beast::error_code e, size_t) { got = e; });
    ioc_.restart();
    ioc_.run_for(10s);
    if (!got) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws).close(ignored);
      ioc_.restart();
      ioc_.run();
      ADD_FAILURE() << "no message in 10 s";
      return "";
    }
    if (ec != nullptr) {
      *ec = *got;
    } else {
      EXPECT_FALSE(*got) << got->message();
    }
    return beast::buffers_to_string(b.data());
  }

  testing::TempDir dir_;
  // Before the server: its stop runs the closed connections' handlers, which
  // still write here.
  Seen seen_;
  std::unique_ptr<server::NodeServer> server_;
  net::io_context ioc_;
  net::ssl::context tls_{net::ssl::context::tls_client};
};

TEST_F(WsTransport, NegotiatesOurFirstProtocolTheClientOffersAndEchoes) {
  websocket::response_type res;
  auto ws = open("v2.channel.k8s.io, v5.channel.k8s.io,v4.channel.k8s.io", &res);
  EXPECT_EQ(res[http::field::sec_websocket_protocol], "v5.channel.k8s.io");
  ws->binary(true);
  ws->write(net::buffer(std::string("\x00hello", 6)));
  EXPECT_EQ(readMessage(*ws), std::string("\x01hello", 6));
  EXPECT_TRUE(ws->got_binary());
  ws->close(websocket::close_code::normal);
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.closed.size() == 1; }));
  EXPECT_EQ(seen_.protocols, std::vector<std::string>{"v5.channel.k8s.io"});
  EXPECT_NE(seen_.closed[0].find("closed by the client"), std::string::npos) << seen_.closed[0];
}

TEST_F(WsTransport, Base64ProtocolSpeaksTextBothWays) {
  websocket::response_type res;
  auto ws = open("base64.channel.k8s.io", &res);
  EXPECT_EQ(res[http::field::sec_websocket_protocol], "base64.channel.k8s.io");
  ws->text(true);
  ws->write(net::buffer(std::string("0Zm9vCg==")));  // "foo\n" on stdin
  EXPECT_EQ(readMessage(*ws), "1Zm9vCg==");
  EXPECT_TRUE(ws->got_text());
  // Not base64: the connection ends with 1007 and the reason.
  ws->write(net::buffer(std::string("0Zm9v!g==")));
  beast::error_code ec;
  readMessage(*ws, &ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws->reason().code, websocket::close_code::bad_payload);
  EXPECT_NE(std::string(ws->reason().reason.data(), ws->reason().reason.size()).find("base64"),
            std::string::npos);
}

TEST_F(WsTransport, AClientOfferingNoProtocolGetsBinaryChannelsAndNoProtocolHeader) {
  websocket::response_type res;
  auto ws = open("", &res);
  EXPECT_EQ(res.count(http::field::sec_websocket_protocol), 0u);
  ws->binary(true);
  ws->write(net::buffer(std::string("\x00x", 2)));
  EXPECT_EQ(readMessage(*ws), std::string("\x01x", 2));
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.protocols.size() == 1; }));
  EXPECT_EQ(seen_.protocols[0], "");
}

TEST_F(WsTransport, V5CloseSignalHalfClosesStdinAndTheServerClosesCleanly) {
  auto ws = open("v5.channel.k8s.io");
  ws->binary(true);
  ws->write(net::buffer(std::string("\x00last words", 11)));
  EXPECT_EQ(readMessage(*ws), std::string("\x01last words", 11));
  ws->write(net::buffer(std::string("\xff\x00", 2)));  // CLOSE stdin
  EXPECT_EQ(readMessage(*ws),
            "\x03"
            "bye");
  beast::error_code ec;
  readMessage(*ws, &ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws->reason().code, websocket::close_code::normal);
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.closed.size() == 1; }));
  EXPECT_NE(seen_.closed[0].find("closed by the server"), std::string::npos) << seen_.closed[0];
}

TEST_F(WsTransport, UnknownChannelsAreDroppedAndTheStreamGoesOn) {
  auto ws = open("v4.channel.k8s.io");
  ws->binary(true);
  ws->write(net::buffer(std::string("\x09ignored", 8)));
  ws->write(net::buffer(std::string("\xff\x00", 2)));  // before v5: channel 255 is no signal
  ws->write(net::buffer(std::string("\x00still here", 11)));
  EXPECT_EQ(readMessage(*ws), std::string("\x01still here", 11));
}

TEST_F(WsTransport, PortForwardChannelsStartWithTheirPortLittleEndian) {
  websocket::response_type res;
  auto ws = open("v4.channel.k8s.io", &res, "/portForward/default/pod?ports=8080,443");
  EXPECT_EQ(res[http::field::sec_websocket_protocol], "v4.channel.k8s.io");
  std::vector<std::string> first;
  for (int i = 0; i < 4; i++) {
    first.push_back(readMessage(*ws));
  }
  EXPECT_EQ(first, (std::vector<std::string>{
                       std::string("\x00\x90\x1f", 3), std::string("\x01\x90\x1f", 3),
                       std::string("\x02\xbb\x01", 3), std::string("\x03\xbb\x01", 3)}));
}

TEST_F(WsTransport, AThousandMessagesEachWay) {
  auto ws = open("v5.channel.k8s.io");
  ws->binary(true);
  for (int i = 0; i < 1000; i++) {
    ws->write(
        net::buffer("\x04"
                    "x" +
                    std::to_string(i)));  // resize: consumed, not echoed
  }
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.data_events == 1000; }))
      << "the server saw " << seen_.data_events << " messages";
  ws->write(
      net::buffer(std::string("\x04"
                              "burst 1000")));
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(readMessage(*ws), "\x02msg " + std::to_string(i));
  }
}

// Raw frames a Beast client would never send: the upgrade by hand, then bytes.
class WsTransportRaw : public WsTransport {
 protected:
  using Tls = beast::ssl_stream<net::ip::tcp::socket>;
  std::unique_ptr<Tls> upgraded() {
    auto s = std::make_unique<Tls>(ioc_, tls_);
    s->next_layer().connect(
        {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())});
    s->handshake(net::ssl::stream_base::client);
    std::string req =
        "GET /exec/default/pod/c?command=cat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n";
    net::write(*s, net::buffer(req));
    http::response<http::empty_body> res;
    http::response_parser<http::empty_body> p;
    p.skip(true);  // a 101 has no body
    http::read_header(*s, buf_, p);
    EXPECT_EQ(p.get().result_int(), 101u);
    return s;
  }
  // An upgrade request by hand (`extra` headers, then `early` bytes right
  // after it) and the server's answer, when it is not a 101.
  http::response<http::string_body> request(const std::string& extra,
                                            const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==",
                                            const std::string& version = "13",
                                            const std::string& early = "") {
    Tls s(ioc_, tls_);
    s.next_layer().connect(
        {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server_->port())});
    s.handshake(net::ssl::stream_base::client);
    std::string req =
        "GET /exec/default/pod/c?command=cat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n" +
        (key.empty() ? "" : "Sec-WebSocket-Key: " + key + "\r\n") +
        "Sec-WebSocket-Version: " + version + "\r\n" + extra + "\r\n" + early;
    net::write(s, net::buffer(req));
    http::response<http::string_body> res;
    beast::flat_buffer b;
    beast::error_code ec;
    http::read(s, b, res, ec);
    EXPECT_FALSE(ec) << ec.message();
    return res;
  }
  // The close code of the close frame the server sends, 0 if none came.
  int closeCode(Tls& s) {
    beast::error_code ec;
    std::string got = beast::buffers_to_string(buf_.data());
    char tmp[256];
    while (got.size() < 4) {
      size_t n = s.read_some(net::buffer(tmp), ec);
      if (ec) {
        break;
      }
      got.append(tmp, n);
    }
    // The client answers the server's TLS close_notify and leaves, so the
    // server's teardown completes now (without the answer, Beast 1.74
    // reports the truncation instead of the protocol error, after 30 s).
    s.shutdown(ec);
    s.next_layer().close(ec);
    if (got.size() < 4 || static_cast<uint8_t>(got[0]) != 0x88) {
      return 0;
    }
    return static_cast<uint8_t>(got[2]) << 8 | static_cast<uint8_t>(got[3]);
  }
  beast::flat_buffer buf_;
};

TEST_F(WsTransportRaw, AnUnmaskedClientFrameCloses1002) {
  auto s = upgraded();
  net::write(*s, net::buffer(std::string("\x82\x03\x00hi", 5)));  // no mask bit
  EXPECT_EQ(closeCode(*s), 1002);
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.closed.size() == 1; }));
  EXPECT_EQ(seen_.data_events, 0u);
}

// Only the frame's header: the server refuses by the length it announces,
// before reading the payload (so the test never races the server's close
// against a client still writing).
TEST_F(WsTransportRaw, AMessageOverTheLimitCloses1009AndOnlyThatConnection) {
  auto other = open("v5.channel.k8s.io");
  other->binary(true);
  auto s = upgraded();
  uint64_t len = kWebSocketMessageMax + 1;
  std::string frame("\x82\xff", 2);
  for (int i = 7; i >= 0; i--) {
    frame += static_cast<char>(len >> (8 * i) & 0xff);
  }
  frame += "mask";
  frame += std::string(100, '\0');
  net::write(*s, net::buffer(frame));
  EXPECT_EQ(closeCode(*s), 1009);
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.closed.size() == 1; }));
  EXPECT_NE(seen_.closed[0].find("exceeded the locally configured limit"), std::string::npos)
      << seen_.closed[0];
  EXPECT_EQ(seen_.data_events, 0u);
  // The other connection is untouched, and a message of exactly the limit
  // goes through it.
  other->write(net::buffer(std::string("\x00ok", 3)));
  EXPECT_EQ(readMessage(*other), std::string("\x01ok", 3));
  std::string max(kWebSocketMessageMax, 'b');
  max[0] = '\x04';
  other->write(net::buffer(max));
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.received == 2 + max.size() - 1; }));
}

TEST_F(WsTransportRaw, ImpossibleLengthsClose1002Or1009) {
  // A 64-bit length with its top bit set (RFC 6455 forbids it).
  auto a = upgraded();
  net::write(*a, net::buffer(std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01mask", 14)));
  int code = closeCode(*a);
  EXPECT_TRUE(code == 1002 || code == 1009) << code;
  // A ping (control frame) longer than 125 bytes.
  buf_.clear();
  auto b = upgraded();
  net::write(*b, net::buffer(std::string("\x89\xfe\x00\x80mask", 8) + std::string(128, 'p')));
  EXPECT_EQ(closeCode(*b), 1002);
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.closed.size() == 2; }));
}

TEST_F(WsTransportRaw, NoSharedProtocolIs403AsTheKubelet) {
  auto res = request("Sec-WebSocket-Protocol: v2.portforward.k8s.io, v9.channel.k8s.io\r\n");
  EXPECT_EQ(res.result_int(), 403u);
  EXPECT_NE(res.body().find("requested protocol(s) are not supported: [v2.portforward.k8s.io "
                            "v9.channel.k8s.io]; supports [v5.channel.k8s.io"),
            std::string::npos)
      << res.body();
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.refused.size() == 1; }));
  EXPECT_EQ(seen_.refused[0].substr(0, 4), "403 ");
}

TEST_F(WsTransportRaw, ABrokenHandshakeGetsBeastsAnswer) {
  auto res = request("", "dGhlIHNhbXBsZSBub25jZQ==", "8");  // RFC 6455 is version 13
  EXPECT_EQ(res.result_int(), 426u);
  EXPECT_EQ(res[http::field::sec_websocket_version], "13");
  auto nokey = request("", "");
  EXPECT_EQ(nokey.result_int(), 400u);
  ASSERT_TRUE(seen_.waitFor([&] { return seen_.refused.size() == 2; }));
  EXPECT_EQ(seen_.refused[0].substr(0, 4), "426 ");
}

TEST_F(WsTransportRaw, BytesBeforeTheHandshakesAnswerAreRefused) {
  auto res =
      request("", "dGhlIHNhbXBsZSBub25jZQ==", "13", std::string("\x82\x83mask\x01\x02\x03", 9));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find("sent 9 bytes before the handshake"), std::string::npos) << res.body();
}

// A client that writes and never reads: the server's writes stall, it stops
// reading at its bound, and nothing grows; once the client reads, every
// byte comes back.
TEST_F(WsTransport, AClientThatNeverReadsIsPushedBackNotBuffered) {
  auto ws = open("v5.channel.k8s.io");
  ws->binary(true);
  const size_t chunk = 64 << 10, total = 64 << 20;
  std::string msg(chunk + 1, 'z');
  msg[0] = '\0';
  size_t written = 0;
  std::function<void()> next = [&] {
    if (written >= total) {
      return;
    }
    ws->async_write(net::buffer(msg), [&](beast::error_code ec, size_t) {
      if (!ec) {
        written += chunk;
        next();
      }
    });
  };
  next();
  // Writes go while the kernel's socket buffers fill; then they stall.
  size_t before = SIZE_MAX;
  while (written != before && written < total) {
    before = written;
    ioc_.restart();
    ioc_.run_for(500ms);
  }
  EXPECT_LT(written, total) << "64 MiB went in without the client reading a byte";
  size_t held;
  {
    std::lock_guard l(seen_.mu);
    held = seen_.max_held;
  }
  EXPECT_LE(held, kWebSocketUnconsumedMax + chunk)
      << "the server held more than its bound of what it could not write";
  // Now read: everything written comes back, in order, and the rest goes in.
  size_t echoed = 0;
  beast::flat_buffer b;
  std::function<void()> read = [&] {
    ws->async_read(b, [&](beast::error_code ec, size_t) {
      ASSERT_FALSE(ec) << ec.message();
      echoed += b.size() - 1;
      b.consume(b.size());
      if (echoed < total) {
        read();
      }
    });
  };
  read();
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       echoed < total && std::chrono::steady_clock::now() < deadline;) {
    ioc_.restart();
    ioc_.run_for(100ms);
  }
  EXPECT_EQ(written, total);
  EXPECT_EQ(echoed, total);
}

TEST_F(WsTransport, PythonWebsocketClientAgrees) {
  if (std::system("/usr/bin/python3 -c 'import websocket' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-websocket is not installed (scripts/install-deps installs it)";
  }
  std::string cmd = "/usr/bin/python3 " KERNELET_TEST_DATA "/ws_client.py " +
                    std::to_string(server_->port()) + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, f)) {
    out.append(buf, n);
  }
  int rc = pclose(f);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("protocol v5.channel.k8s.io"), std::string::npos) << out;
  EXPECT_NE(out.find("echo ok"), std::string::npos) << out;
  EXPECT_NE(out.find("error channel: bye"), std::string::npos) << out;
  EXPECT_NE(out.find("close 1000"), std::string::npos) << out;
}

}  // namespace
}  // namespace kernelet::agent::streams
