// The SPDY/3.1 framing on a real node server over TLS on loopback:
// /exec upgrades, negotiates the protocol as the kubelet does, and a tiny
// Transport user echoes stdin to stdout. The client is built from the spdy/
// codec and talks over a blocking TLS socket: the 101 and its headers, the
// echo of 1 MiB (with and without client flow control, the client's window
// never overrun), the kubelet's refusals, a malformed frame (GOAWAY, then
// the connection ends), a client that never opens a stream, and the server
// stopping under a live connection.
#include "agent/streams/spdy_transport.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/server/server.h"
#include "support/spdy_client.h"
#include "support/temp_dir.h"

namespace kernelet::agent::streams {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using testing::SpdyClient;

// What the server side saw, read from the test thread.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> closed;  // the Error of each closed() event
  std::vector<std::string> types;   // streamType of each opened stream
  void add(std::vector<std::string>& to, std::string s) {
    std::lock_guard lock(mu);
    to.push_back(std::move(s));
    cv.notify_all();
  }
  bool waitClosed(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return closed.size() >= n; });
  }
};

// Echoes stdin to stdout; at stdin's end finishes stdout and error, then
// closes the connection, as exec ends.
class Echo : public std::enable_shared_from_this<Echo> {
 public:
  Echo(std::shared_ptr<Transport> t, Seen& seen) : t_(std::move(t)), seen_(seen) {}
  void start() {
    auto self = shared_from_this();
    t_->start(TransportEvents{
        .opened =
            [self](StreamId id, const StreamHeaders& h) {
              self->ids_[h.type] = id;
              self->seen_.add(self->seen_.types, h.type);
            },
        .data =
            [self](StreamId id, std::string_view bytes) {
              self->stdin_ = id;
              self->buf_ += bytes;
              self->pump();
            },
        .half_closed =
            [self](StreamId) {
              self->eof_ = true;
              self->pump();
            },
        .reset = [](StreamId) {},
        .closed = [self](const Error& e) { self->seen_.add(self->seen_.closed, e.message()); },
    });
  }

 private:
  // One write at a time; what arrives meanwhile waits (bounded: the
  // transport stops reading while bytes are unconsumed).
  void pump() {
    if (writing_ || ended_) {
      return;
    }
    if (buf_.empty()) {
      if (eof_) {
        ended_ = true;
        end();
      }
      return;
    }
    writing_ = true;
    size_t n = buf_.size();
    auto self = shared_from_this();
    t_->write(ids_["stdout"], std::exchange(buf_, {}), [self, n](bool ok) {
      self->writing_ = false;
      if (ok) {
        self->t_->consumed(self->stdin_, n);
        self->pump();
      }
    });
  }
  void end() {
    t_->finish(ids_["stdout"]);
    t_->finish(ids_["error"]);
    t_->close();
  }
  std::shared_ptr<Transport> t_;
  Seen& seen_;
  std::map<std::string, StreamId> ids_;
  std::string buf_;
  StreamId stdin_ = 0;
  bool writing_ = false, eof_ = false, ended_ = false;
};

// Takes stdin and never consumes it, as a process that does not read.
class Sink : public std::enable_shared_from_this<Sink> {
 public:
  explicit Sink(std::shared_ptr<Transport> t) : t_(std::move(t)) {}
  void start() {
    auto self = shared_from_this();
    t_->start(TransportEvents{.opened = [](StreamId, const StreamHeaders&) {},
                              .data = [self](StreamId, std::string_view b) { given += b.size(); },
                              .half_closed = [](StreamId) {},
                              .reset = [](StreamId) {},
                              .closed = [self](const Error&) { self->t_.reset(); }});
  }
  static inline std::atomic<size_t> given{0};

 private:
  std::shared_ptr<Transport> t_;
};

// A blocking TLS client: the upgrade request (with SPDY bytes right behind
// it, so the server reads some past the headers), then frames.
class Client {
 public:
  explicit Client(int port) : ctx_(net::ssl::context::tls_client), s_(ioc_, ctx_) {
    beast::error_code ec;
    s_.next_layer().connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}, ec);
    timeval tv{10, 0};
    ::setsockopt(s_.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!ec) {
      s_.handshake(net::ssl::stream_base::client, ec);
    }
    error = ec ? "connect: " + ec.message() : "";
  }

  // Sends the request and `first` in one write; reads the response head.
  http::response<http::string_body> upgrade(const std::vector<std::string>& protocols,
                                            const std::string& first = "") {
    std::string req =
        "POST /exec/default/web/app?command=cat&input=1&output=1 HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
    for (const auto& p : protocols) {
      req += "X-Stream-Protocol-Version: " + p + "\r\n";
    }
    req += "Content-Length: 0\r\n\r\n" + first;
    beast::error_code ec;
    net::write(s_, net::buffer(req), ec);
    http::response_parser<http::string_body> p;
    p.skip(false);
    http::read_header(s_, buf_, p, ec);
    if (!ec && p.get().result_int() != 101) {
      http::read(s_, buf_, p, ec);
    }
    if (ec) {
      error = "upgrade: " + ec.message();
    }
    // What came past the head is SPDY already.
    if (p.get().result_int() == 101 && buf_.size() > 0) {
      record(spdy.read(std::string(static_cast<const char*>(buf_.data().data()), buf_.size())));
      buf_.consume(buf_.size());
    }
    return p.release();
  }

  // Ends the connection under a blocked write (from another thread).
  void abort() { [[maybe_unused]] int rc = ::shutdown(s_.next_layer().native_handle(), SHUT_RDWR); }
  bool send(const std::string& bytes) {
    beast::error_code ec;
    net::write(s_, net::buffer(bytes), ec);
    return !ec;
  }

  // Reads until `done` holds or the connection ends; false on the end.
  bool readUntil(const std::function<bool()>& done) {
    while (!done()) {
      std::array<char, 16384> b{};
      beast::error_code ec;
      size_t n = s_.read_some(net::buffer(b), ec);
      if (ec) {
        ended = true;
        return false;
      }
      record(spdy.read(std::string_view(b.data(), n)));
    }
    return true;
  }

  void record(std::vector<spdy::Frame> frames) {
    for (auto& f : frames) {
      if (auto* d = std::get_if<spdy::DataFrame>(&f); d != nullptr && on_data) {
        on_data(*d);
      }
      this->frames.push_back(std::move(f));
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

  SpdyClient spdy;
  std::vector<spdy::Frame> frames;
  std::function<void(const spdy::DataFrame&)> on_data;
  std::string error;
  bool ended = false;

 private:
  net::io_context ioc_;
  net::ssl::context ctx_;
  beast::ssl_stream<net::ip::tcp::socket> s_;
  beast::flat_buffer buf_;
};

class SpdyTransportTest : public ::testing::Test {
 protected:
  void start(SpdyTransportOptions options = {}, bool sink = false) {
    server::ServerConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.tls.cert_dir = dir_.path() + "/pki";
    c.tls.node_name = "node-a";
    c.tls.ips = {"127.0.0.1"};
    server::Endpoints e;
    e.exec = [this, options, sink](const server::Request&,
                                   std::shared_ptr<UpgradedConnection> conn) {
      acceptSpdy(
          std::move(conn), {"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"},
          [this, sink](std::expected<Negotiated, UpgradeError> r) {
            if (!r) {
              seen_.add(seen_.closed, "refused: " + r.error().message);
              return;
            }
            protocol_ = r->protocol;
            if (sink) {
              std::make_shared<Sink>(r->transport)->start();
              return;
            }
            std::make_shared<Echo>(r->transport, seen_)->start();
          },
          options);
    };
    server::Security sec;
    sec.authn.anonymous = true;
    auto r = server::NodeServer::start(std::move(c), std::move(e), sec);
    ASSERT_TRUE(r) << r.error().message();
    server_ = std::move(*r);
  }

  testing::TempDir dir_;
  Seen seen_;
  std::string protocol_;  // written on the server thread before the 101 goes
  std::unique_ptr<server::NodeServer> server_;
};

// Sends `total` bytes of stdin in 16 KiB frames, reading the echo as it goes.
void echoThrough(Client& c, size_t total) {
  std::string sent;
  for (size_t i = 0; sent.size() < total; i++) {
    std::string chunk(16384, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(c.send(SpdyClient::data(3, chunk)));
    sent += chunk;
    ASSERT_TRUE(c.readUntil([&] { return c.spdy.received[5].size() >= sent.size(); }))
        << "echoed " << c.spdy.received[5].size() << " of " << sent.size();
  }
  EXPECT_EQ(c.spdy.received[5], sent);
}

TEST_F(SpdyTransportTest, EchoesStdinToStdout) {
  start();
  Client c(server_->port());
  ASSERT_EQ(c.error, "");
  // The client offers v5 (unknown to SPDY here) first: the first it offers
  // that we speak wins, as httpstream.Handshake picks.
  auto res = c.upgrade({"v5.channel.k8s.io", "v3.channel.k8s.io,v4.channel.k8s.io"},
                       c.spdy.opens({{1, "error"}, {3, "stdin"}, {5, "stdout"}}));
  ASSERT_EQ(c.error, "");
  EXPECT_EQ(res.result_int(), 101);
  EXPECT_EQ(res[http::field::upgrade], "SPDY/3.1");
  EXPECT_EQ(res[http::field::connection], "Upgrade");
  EXPECT_EQ(res["X-Stream-Protocol-Version"], "v3.channel.k8s.io");
  ASSERT_TRUE(c.readUntil([&] { return c.spdy.replies.size() == 3; }));
  echoThrough(c, 1 << 20);
  // stdin's end: stdout and error end, then GOAWAY and the connection.
  ASSERT_TRUE(c.send(SpdyClient::data(3, "", true)));
  c.readUntil([] { return false; });
  EXPECT_TRUE(c.ended);
  EXPECT_TRUE(c.spdy.fins[5]);
  EXPECT_TRUE(c.spdy.fins[1]);
  auto goaway = c.sent<spdy::GoAway>();
  ASSERT_EQ(goaway.size(), 1u);
  EXPECT_EQ(goaway[0], (spdy::GoAway{.last_good_stream_id = 5, .status = 0}));
  ASSERT_TRUE(seen_.waitClosed(1));
  EXPECT_EQ(seen_.closed[0], "spdy connection: closed by the server");
  EXPECT_EQ(seen_.types, (std::vector<std::string>{"error", "stdin", "stdout"}));
}

TEST_F(SpdyTransportTest, WritesStayInTheWindowOfAClientThatDoesFlowControl) {
  start();
  Client c(server_->port());
  ASSERT_EQ(c.error, "");
  // A small window, granted back only as the client reads: the server may
  // never have more than 4 KiB unacknowledged on a stream.
  constexpr int64_t kWindow = 4096;
  int64_t outstanding = 0, most = 0;
  c.on_data = [&](const spdy::DataFrame& d) {
    if (d.stream_id != 5 || d.data.empty()) {
      return;
    }
    // Received and not granted back: never more than the window.
    outstanding += static_cast<int64_t>(d.data.size());
    most = std::max(most, outstanding);
    if (outstanding >= kWindow / 2) {
      auto n = static_cast<uint32_t>(outstanding);
      c.send(SpdyClient::frame(spdy::WindowUpdate{.stream_id = 5, .delta = n}) +
             SpdyClient::frame(spdy::WindowUpdate{.stream_id = 0, .delta = n}));
      outstanding = 0;
    }
  };
  auto res = c.upgrade(
      {"v4.channel.k8s.io"},
      SpdyClient::frame(spdy::Settings{
          .entries = {{0, spdy::kSettingsInitialWindowSize, static_cast<uint32_t>(kWindow)}}}) +
          c.spdy.opens({{1, "error"}, {3, "stdin"}, {5, "stdout"}}));
  ASSERT_EQ(res.result_int(), 101);
  EXPECT_EQ(res["X-Stream-Protocol-Version"], "v4.channel.k8s.io");
  echoThrough(c, 256 << 10);
  EXPECT_EQ(most, kWindow) << "the server filled the window, and no more";
  for (const auto& d : c.sent<spdy::DataFrame>()) {
    EXPECT_LE(d.data.size(), static_cast<size_t>(kWindow));
  }
}

TEST_F(SpdyTransportTest, AProcessThatDoesNotReadStopsTheClientNotTheAgent) {
  // spdystream honours no window: what bounds it is that the agent stops
  // reading while 256 KiB are unconsumed, so the client's writes block.
  start({}, /*sink=*/true);
  Client c(server_->port());
  auto res = c.upgrade({"v4.channel.k8s.io"}, c.spdy.opens({{1, "error"}, {3, "stdin"}}));
  ASSERT_EQ(res.result_int(), 101);
  std::atomic<size_t> sent{0};
  const std::string chunk = SpdyClient::data(3, std::string(32 << 10, 'x'));
  std::thread writer([&] {
    while (sent < (64u << 20) && c.send(chunk)) {
      sent += chunk.size();
    }
  });
  // Blocked is the absence of progress: sample until a second passes without any.
  size_t last = SIZE_MAX;
  for (int i = 0; i < 30 && sent.load() != last; i++) {
    last = sent.load();
    std::this_thread::sleep_for(1s);
  }
  EXPECT_LT(sent.load(), 64u << 20) << "the client's writes never blocked";
  c.abort();  // unblocks the writer
  writer.join();
  // Given to the consumer: the limit, plus at most what one read brought.
  EXPECT_GE(Sink::given.load(), 256u << 10);
  EXPECT_LE(Sink::given.load(), (256u << 10) + (48u << 10));
}

TEST_F(SpdyTransportTest, RefusalsAsTheKubelet) {
  start();
  {
    Client c(server_->port());
    auto res = c.upgrade({"v9.channel.k8s.io"});
    EXPECT_EQ(res.result_int(), 403);
    EXPECT_EQ(res.body(),
              "unable to upgrade: unable to negotiate protocol: client supports "
              "[v9.channel.k8s.io], server accepts [v4.channel.k8s.io v3.channel.k8s.io "
              "v2.channel.k8s.io]\n");
    EXPECT_EQ(res["X-Accepted-Stream-Protocol-Versions"], "v4.channel.k8s.io");
    EXPECT_EQ(res[http::field::content_type], "text/plain; charset=utf-8");
  }
  {
    Client c(server_->port());
    auto res = c.upgrade({});
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(res.body(), "unable to upgrade: X-Stream-Protocol-Version is required\n");
  }
  ASSERT_TRUE(seen_.waitClosed(2));
  EXPECT_EQ(seen_.closed[0].rfind("refused: unable to upgrade", 0), 0u) << seen_.closed[0];
}

TEST_F(SpdyTransportTest, AMalformedFrameGetsGoAwayAndTheConnectionEnds) {
  start();
  Client c(server_->port());
  auto res = c.upgrade({"v4.channel.k8s.io"}, c.spdy.open(1, "error"));
  ASSERT_EQ(res.result_int(), 101);
  ASSERT_TRUE(c.send(std::string("\x80\x03\x00\x03\x00\x00\x00\x02\x00\x01", 10)));
  c.readUntil([] { return false; });
  EXPECT_TRUE(c.ended);
  auto goaway = c.sent<spdy::GoAway>();
  ASSERT_EQ(goaway.size(), 1u);
  EXPECT_EQ(goaway[0].status, 1u) << "PROTOCOL_ERROR";
  ASSERT_TRUE(seen_.waitClosed(1));
  EXPECT_EQ(seen_.closed[0], "spdy session: RST_STREAM of length 2 (must be 8)");
}

TEST_F(SpdyTransportTest, AClientThatOpensNoStreamIsClosed) {
  start(SpdyTransportOptions{.stream_creation_timeout = 200ms});
  Client c(server_->port());
  auto res = c.upgrade({"v4.channel.k8s.io"}, SpdyClient::frame(spdy::Ping{.id = 1}));
  ASSERT_EQ(res.result_int(), 101);
  auto started = std::chrono::steady_clock::now();
  c.readUntil([] { return false; });
  EXPECT_TRUE(c.ended);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(c.sent<spdy::Ping>().size(), 1u) << "the PING was answered meanwhile";
  ASSERT_TRUE(seen_.waitClosed(1));
  EXPECT_EQ(seen_.closed[0], "spdy connection: no stream opened within 200 ms of the upgrade");
}

TEST_F(SpdyTransportTest, StoppingTheServerEndsLiveConnections) {
  start();
  Client c(server_->port());
  auto res =
      c.upgrade({"v4.channel.k8s.io"}, c.spdy.opens({{1, "error"}, {3, "stdin"}, {5, "stdout"}}));
  ASSERT_EQ(res.result_int(), 101);
  ASSERT_TRUE(c.readUntil([&] { return c.spdy.replies.size() == 3; }));
  auto started = std::chrono::steady_clock::now();
  server_->stop();
  // The client sees the end at once (not its 10 s read timeout). The
  // transport's closed() does not run: stop() stops the io_context, so the
  // aborted read's handler never runs (agent/server/server.cc).
  c.readUntil([] { return false; });
  EXPECT_TRUE(c.ended);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

}  // namespace
}  // namespace kernelet::agent::streams
