// What the test API server does with pods/exec, pods/attach and
// pods/portforward, as the real one: it authorizes the user, finds the pod's
// node, sends the upgrade to the node's kubelet (here the fake kubelet,
// tests/support/fake_kubelet.py, which upgrades and echoes) with its kubelet
// client certificate and the client's upgrade headers as they came, answers
// with the kubelet's 101 (or its refusal) and then relays the bytes both ways
// until one side closes. Its own refusals (no such pod, no node, a container
// the pod lacks, a user without create) are worded as the real server's.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "support/api_server.h"
#include "support/fake_kubelet.h"
#include "sys/fileio.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
using namespace std::chrono;

bool haveKubectl() {
  return ::access("/usr/bin/kubectl", X_OK) == 0 || ::access("/usr/local/bin/kubectl", X_OK) == 0;
}

// One raw HTTPS connection to the API server: a request's head written as
// given, the answer's head read, then bytes either way. Reads time out
// after 10 s (a relay that hangs fails the test instead of hanging it).
class RawConnection {
 public:
  explicit RawConnection(int port) : stream_(io_, ctx_) {
    try {
      stream_.next_layer().connect(
          {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
      // Without the timeout a hung relay hangs the test instead of failing it;
      // on a connected loopback socket it does not fail.
      timeval tv{10, 0};
      (void)::setsockopt(stream_.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv,
                         sizeof tv);
      stream_.handshake(net::ssl::stream_base::client);
    } catch (const boost::system::system_error& e) {
      error_ = std::string("connect/handshake: ") + e.what();
    }
  }
  const std::string& error() const { return error_; }

  bool write(const std::string& bytes) {
    boost::system::error_code ec;
    net::write(stream_, net::buffer(bytes), ec);
    return !ec;
  }
  // The answer's status line and headers (through the blank line).
  std::string head() {
    while (buffered_.find("\r\n\r\n") == std::string::npos) {
      if (!fill()) {
        return "<EOF before the head>: " + buffered_;
      }
    }
    size_t end = buffered_.find("\r\n\r\n") + 4;
    std::string h = buffered_.substr(0, end);
    buffered_.erase(0, end);
    return h;
  }
  // Exactly n bytes (fewer at EOF or timeout).
  std::string read(size_t n) {
    while (buffered_.size() < n && fill()) {
    }
    std::string out = buffered_.substr(0, std::min(n, buffered_.size()));
    buffered_.erase(0, out.size());
    return out;
  }
  // A whole answer that did not upgrade: its head and its Content-Length's bytes.
  std::string response() {
    std::string h = head();
    std::smatch m;
    if (!std::regex_search(h, m,
                           std::regex("\r\nContent-Length: *([0-9]+)\r\n", std::regex::icase))) {
      return h + "<no Content-Length>";
    }
    return h + read(std::stoul(m[1].str()));
  }
  // Everything until the other side closes (or the timeout).
  std::string readToEnd() {
    while (fill()) {
    }
    return std::exchange(buffered_, "");
  }
  void close() {
    // A FIN without close_notify: as a client that goes away. On a connected
    // socket it cannot fail; the destructor releases the descriptor.
    (void)::shutdown(stream_.next_layer().native_handle(), SHUT_RDWR);
  }

 private:
  bool fill() {
    char buf[65536];
    boost::system::error_code ec;
    size_t n = stream_.read_some(net::buffer(buf), ec);
    buffered_.append(buf, n);
    return !ec && n > 0;
  }

  net::io_context io_;
  net::ssl::context ctx_{net::ssl::context::tls_client};
  net::ssl::stream<net::ip::tcp::socket> stream_;
  std::string buffered_, error_;
};

class StreamRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveKubectl()) {
      if (std::getenv("CI") != nullptr) {
        FAIL() << "kubectl is not installed: CI runs these tests with it";
      }
      GTEST_SKIP() << "kubectl is not installed";
    }
    dir_ = "/tmp/kernelet-streamrelay-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    testing::ApiServer::Options options;
    options.users = {{.token = "exec-token", .name = "execer"},
                     {.token = "get-token", .name = "getter"}};
    options.policy = {{.user = "execer", .resource = "pods", .subresource = "exec"},
                      {.user = "getter", .verb = "get", .resource = "pods"}};
    auto s = testing::ApiServer::start(dir_, options);
    ASSERT_TRUE(s) << s.error().message();
    server_ = std::make_unique<testing::ApiServer>(std::move(*s));
    std::string error;
    int port = kubelet_.start(dir_, server_->caFile(), error);
    ASSERT_NE(port, 0) << error;
    std::ofstream(dir_ + "/objects.yaml")
        << "apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nstatus:\n"
           "  addresses: [{type: InternalIP, address: 127.0.0.1}]\n"
           "  daemonEndpoints: {kubeletEndpoint: {Port: "
        << port
        << "}}\n---\n"
           "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
           "spec: {nodeName: node1, containers: [{name: app, image: busybox}]}\n---\n"
           "apiVersion: v1\nkind: Pod\nmetadata: {name: duo}\n"
           "spec: {nodeName: node1, containers: [{name: a, image: busybox}, "
           "{name: refused, image: busybox}]}\n---\n"
           "apiVersion: v1\nkind: Pod\nmetadata: {name: pending}\n"
           "spec: {containers: [{name: app, image: busybox}]}\n";
    std::string out = server_->kubectl("create --validate=false -f " + dir_ + "/objects.yaml");
    ASSERT_NE(out.find("pod/pending created"), std::string::npos) << out;
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }

  // A connection with `method target` and the headers sent; `error` on failure.
  std::unique_ptr<RawConnection> request(const std::string& method, const std::string& target,
                                         const std::string& headers,
                                         const std::string& token = "admin-token") {
    auto c = std::make_unique<RawConnection>(server_->port());
    EXPECT_EQ(c->error(), "");
    EXPECT_TRUE(c->write(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                         "Authorization: Bearer " + token + "\r\n" + headers + "\r\n"));
    return c;
  }
  std::string kubeletRequests() { return readFile(dir_ + "/kubelet-requests.jsonl").value_or(""); }
  // Polls the fake kubelet's record for `text` (it writes when a relay ends).
  bool kubeletRecords(const std::string& text) {
    auto deadline = steady_clock::now() + seconds(10);
    while (steady_clock::now() < deadline) {
      if (kubeletRequests().find(text) != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  std::string dir_;
  std::unique_ptr<testing::ApiServer> server_;
  testing::FakeKubelet kubelet_;
};

const std::string kWebSocketHeaders =
    "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n";

TEST_F(StreamRelayTest, WebSocketExecReachesTheKubeletAndBytesGoBothWays) {
  auto c = request("GET",
                   "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=echo%20"
                   "hi&container=app&stdin=true&stdout=true&stderr=false&tty=false",
                   kWebSocketHeaders);
  std::string head = c->head();
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
  // The kubelet's own answer to the key (RFC 6455's example) and its choice.
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos)
      << head;
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"), std::string::npos) << head;
  ASSERT_TRUE(c->write("hello"));
  EXPECT_EQ(c->read(5), "hello");
  // 4 MiB in 64 KiB steps, each echoed whole before the next.
  std::string block(size_t{64} * 1024, 'x');
  for (int i = 0; i < 64; i++) {
    block[0] = static_cast<char>('a' + i % 26);
    ASSERT_TRUE(c->write(block));
    ASSERT_EQ(c->read(block.size()), block) << "block " << i;
  }
  c->close();
  // The client gone, the relay closes the kubelet's side too.
  EXPECT_TRUE(kubeletRecords(R"({"ended": "/exec/default/web/app"})")) << kubeletRequests();
  std::string seen = kubeletRequests();
  // As the real API server builds it: flags that are set, as 1; the command in order.
  EXPECT_NE(seen.find(R"("path": "/exec/default/web/app", )"
                      R"("query": "command=sh&command=-c&command=echo+hi&stdin=1&stdout=1")"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find(R"("user": "kube-apiserver-kubelet-client", "groups": ["system:masters"])"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find(R"("Sec-WebSocket-Key": ["dGhlIHNhbXBsZSBub25jZQ=="])"), std::string::npos)
      << seen;
  EXPECT_NE(seen.find(R"("Sec-WebSocket-Protocol": ["v5.channel.k8s.io, v4.channel.k8s.io"])"),
            std::string::npos)
      << seen;
}

TEST_F(StreamRelayTest, SpdyPortForwardAndAttachReachTheirKubeletPaths) {
  auto c = request("POST", "/api/v1/namespaces/default/pods/web/portforward?ports=8080",
                   "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                   "X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n");
  std::string head = c->head();
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
  EXPECT_NE(head.find("Upgrade: SPDY/3.1\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Stream-Protocol-Version: portforward.k8s.io\r\n"), std::string::npos)
      << head;
  // The kubelet ends the stream ("bye"): what it sent arrives, then the end.
  ASSERT_TRUE(c->write("frames\nbye\n"));
  EXPECT_EQ(c->readToEnd(), "frames\nbye\n");
  EXPECT_TRUE(kubeletRecords(R"({"ended": "/portForward/default/web"})")) << kubeletRequests();
  EXPECT_NE(kubeletRequests().find(R"("path": "/portForward/default/web", "query": "port=8080")"),
            std::string::npos)
      << kubeletRequests();

  auto a = request("POST",
                   "/api/v1/namespaces/default/pods/duo/attach?container=a&stdin=true&"
                   "stdout=true&tty=true",
                   "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                   "v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io\r\n"
                   "Content-Length: 0\r\n");
  head = a->head();
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
  ASSERT_TRUE(a->write("bye\n"));
  EXPECT_EQ(a->readToEnd(), "bye\n");
  std::string seen = kubeletRequests();
  EXPECT_NE(seen.find(R"("path": "/attach/default/duo/a", "query": "stdin=1&stdout=1&tty=1")"),
            std::string::npos)
      << seen;
  // Both offered versions, as the client sent them (two header lines).
  EXPECT_NE(seen.find(R"("X-Stream-Protocol-Version": ["v4.channel.k8s.io", "v3.channel.k8s.io"])"),
            std::string::npos)
      << seen;
}

TEST_F(StreamRelayTest, RefusalsAreWordedAsTheRealApiServer) {
  auto answer = [&](const std::string& target, const std::string& token = "admin-token") {
    auto c = request("POST", target,
                     "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n", token);
    return c->response();
  };
  std::string pending = answer("/api/v1/namespaces/default/pods/pending/exec?command=true");
  EXPECT_EQ(pending.rfind("HTTP/1.1 400 ", 0), 0u) << pending;
  EXPECT_NE(pending.find("pod pending does not have a host assigned"), std::string::npos)
      << pending;
  std::string ghost = answer("/api/v1/namespaces/default/pods/ghost/exec?command=true");
  EXPECT_EQ(ghost.rfind("HTTP/1.1 404 ", 0), 0u) << ghost;
  EXPECT_NE(ghost.find(R"(pods \"ghost\" not found)"), std::string::npos) << ghost;
  std::string nope = answer("/api/v1/namespaces/default/pods/web/exec?container=nope&command=true");
  EXPECT_NE(nope.find("container nope is not valid for pod web"), std::string::npos) << nope;
  std::string unnamed = answer("/api/v1/namespaces/default/pods/duo/attach?stdout=true");
  EXPECT_NE(unnamed.find("a container name must be specified for pod duo, choose one of: "
                         "[a refused]"),
            std::string::npos)
      << unnamed;
  // The kubelet's refusal comes back as it answered it.
  std::string refused =
      answer("/api/v1/namespaces/default/pods/duo/exec?container=refused&command=true");
  EXPECT_EQ(refused.rfind("HTTP/1.1 404 ", 0), 0u) << refused;
  EXPECT_NE(refused.find("\r\n\r\ncontainer not found (\"refused\")"), std::string::npos)
      << refused;
  // create on pods/exec: the exec user may, a user who may only get pods may not.
  auto allowed =
      request("POST", "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true",
              "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n", "exec-token");
  std::string head = allowed->head();
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
  std::string denied =
      answer("/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true", "get-token");
  EXPECT_EQ(denied.rfind("HTTP/1.1 403 ", 0), 0u) << denied;
  EXPECT_NE(denied.find("pods \\\"web\\\" is forbidden"), std::string::npos) << denied;
  std::string seen = kubeletRequests();
  EXPECT_EQ(seen.find("/exec/default/pending"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("/exec/default/web/nope"), std::string::npos) << seen;
}

}  // namespace
}  // namespace kernelet::apiclient
