// /portForward on the node server (loopback, real TLS, anonymous and
// AlwaysAllow): the kubelet's answers before any upgrade, checked on the wire.
#include "agent/streams/port_forward_endpoint.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>

#include "agent/server/server.h"
#include "support/temp_dir.h"

namespace kernelet::agent::streams {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Reply {
  int status = 0;
  std::string body;
  std::string error;
};

// One upgrade request on a new TLS connection (the server's certificate is
// not checked: the test made it), bounded by a 10 s receive timeout.
Reply request(int port, const std::string& target, const std::string& upgrade,
              const std::string& connection = "Upgrade") {
  Reply out;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  beast::ssl_stream<net::ip::tcp::socket> s(ioc, ctx);
  beast::error_code ec;
  if (s.next_layer().connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)},
                             ec)) {
    out.error = "connect: " + ec.message();
    return out;
  }
  timeval tv{10, 0};
  if (::setsockopt(s.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    out.error = "setsockopt SO_RCVTIMEO failed";
    return out;
  }
  s.handshake(net::ssl::stream_base::client, ec);
  if (ec) {
    out.error = "handshake: " + ec.message();
    return out;
  }
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::connection, connection);
  req.set(http::field::upgrade, upgrade);
  if (upgrade == "websocket") {
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::sec_websocket_protocol, "v4.channel.k8s.io");
  } else {
    req.set("X-Stream-Protocol-Version", "portforward.k8s.io");
  }
  http::write(s, req, ec);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.skip(false);
  if (!ec) {
    http::read_header(s, buf, p, ec);
  }
  if (!ec && p.get().result_int() != 101) {
    http::read(s, buf, p, ec);
  }
  if (ec) {
    out.error = "exchange: " + ec.message();
    return out;
  }
  out.status = static_cast<int>(p.get().result_int());
  out.body = p.get().body();
  return out;
}

class PortForwardEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.tls.cert_dir = dir_.path() + "/pki";
    c.tls.node_name = "node-a";
    c.tls.ips = {"127.0.0.1"};
    server::Endpoints e;
    e.port_forward = portForwardHandler(
        [this](const PodRef& pod) {
          std::lock_guard lock(mu_);
          asked_.push_back(pod.namespace_ + "/" + pod.name + "/" + pod.uid);
          return pod.namespace_ == "default" && pod.name == "web" &&
                 (pod.uid.empty() || pod.uid == "1234");
        },
        [this](const PodRef&, uint16_t, const std::function<void(Result<UniqueFd>)>& done) {
          std::lock_guard lock(mu_);
          dials_++;
          done(makeError("dial", "", "not in this test"));
        });
    server::Security s;
    s.authn.anonymous = true;  // and no reviewer: AlwaysAllow
    auto r = server::NodeServer::start(std::move(c), std::move(e), s);
    ASSERT_TRUE(r) << r.error().message();
    server_ = std::move(*r);
  }

  std::vector<std::string> asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }

  testing::TempDir dir_;
  std::mutex mu_;
  std::vector<std::string> asked_;
  int dials_ = 0;
  // Last: stopped before what its handlers write to goes.
  std::unique_ptr<server::NodeServer> server_;
};

TEST_F(PortForwardEndpointTest, WebSocketPortsAreCheckedBeforeThePod) {
  Reply none = request(server_->port(), "/portForward/default/gone", "websocket");
  EXPECT_EQ(none.status, 400) << none.error;
  EXPECT_EQ(none.body, "query parameter \"port\" is required\n");
  Reply bad = request(server_->port(), "/portForward/default/web?port=80,http", "websocket");
  EXPECT_EQ(bad.status, 400) << bad.error;
  EXPECT_EQ(bad.body,
            "unable to parse \"80,http\" as a port: strconv.ParseUint: parsing \"http\": invalid "
            "syntax\n");
  Reply zero = request(server_->port(), "/portForward/default/web?port=0", "websocket");
  EXPECT_EQ(zero.status, 400) << zero.error;
  EXPECT_EQ(zero.body, "port \"0\" must be > 0\n");
  EXPECT_TRUE(asked().empty());  // the kubelet's order: no pod lookup for a bad query
}

TEST_F(PortForwardEndpointTest, UnknownPodsAndUidsAre404) {
  Reply gone = request(server_->port(), "/portForward/default/gone", "SPDY/3.1");
  EXPECT_EQ(gone.status, 404) << gone.error;
  EXPECT_EQ(gone.body, "pod does not exist\n");
  Reply ws = request(server_->port(), "/portForward/default/gone?port=80", "websocket");
  EXPECT_EQ(ws.status, 404) << ws.error;
  EXPECT_EQ(ws.body, "pod does not exist\n");
  Reply uid = request(server_->port(), "/portForward/default/web/9999", "SPDY/3.1");
  EXPECT_EQ(uid.status, 404) << uid.error;
  EXPECT_EQ(uid.body, "pod not found\n");
  EXPECT_EQ(asked(), (std::vector<std::string>{"default/gone/", "default/gone/", "default/web/",
                                               "default/web/9999"}));
}

TEST_F(PortForwardEndpointTest, AKnownPodGoesOnToTheUpgrade) {
  // Past the pod checks the framing answers (101 once it is written; until
  // then main's placeholder answers 501): never the endpoint's 400 or 404.
  Reply spdy = request(server_->port(), "/portForward/default/web/1234", "SPDY/3.1");
  EXPECT_TRUE(spdy.error.empty()) << spdy.error;
  EXPECT_NE(spdy.status, 404);
  EXPECT_NE(spdy.status, 400);
  Reply ws = request(server_->port(), "/portForward/default/web?port=8080", "websocket");
  EXPECT_TRUE(ws.error.empty()) << ws.error;
  EXPECT_NE(ws.status, 404);
  EXPECT_NE(ws.status, 400);
  EXPECT_EQ(asked(),
            (std::vector<std::string>{"default/web/", "default/web/1234", "default/web/"}));
}

// Review (issue #18): isWebSocketRequest ran std::regex "(^|.*,\\s*)upgrade..."
// over the Connection header; libstdc++'s regex recurses per character, and
// a 40000-byte header (the limit is 64 KiB) overflowed the server thread's
// stack: the agent died (SIGSEGV) on one request.
TEST_F(PortForwardEndpointTest, LongConnectionHeaderDoesNotCrashTheServer) {
  Reply r = request(server_->port(), "/portForward/default/web?port=80", "websocket",
                    std::string(40000, 'a') + ", upgrade");
  EXPECT_TRUE(r.error.empty()) << r.error;
  Reply after = request(server_->port(), "/portForward/default/gone", "SPDY/3.1");
  EXPECT_EQ(after.status, 404) << after.error;
}

}  // namespace
}  // namespace kernelet::agent::streams
