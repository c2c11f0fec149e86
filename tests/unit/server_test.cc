// The node server on loopback with real TLS, through a Beast client:
// the self-signed certificate kept and reused, client certificates from the
// right and the wrong CA, tokens, a denying authorizer, and hostile clients
// (a 1 MiB header, a slow client, 1,000 idle connections, too many
// connections), and a streamed body arriving in chunks.
#include "agent/server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/temp_dir.h"
#include "sys/fileio.h"
#include "sys/open_files.h"

namespace kernelet::agent::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

std::string readAll(const std::string& path) {
  auto r = readFile(path);
  return r ? *r : "";
}

struct Cert {
  std::string cert, key;
};

// A CA and a client certificate it signed (O=system:masters, O=ops, CN=admin),
// and another CA's client certificate, made once with the openssl tool.
class Pki {
 public:
  Pki() {
    const std::string d = dir_.path();
    auto run = [](const std::string& cmd) {
      return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
    };
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    ok_ = run("openssl req -x509" + ec + " -keyout " + d + "/ca.key -out " + d +
              "/ca.crt -days 2 -subj /CN=test-ca") &&
          run("openssl req -x509" + ec + " -keyout " + d + "/other-ca.key -out " + d +
              "/other-ca.crt -days 2 -subj /CN=other-ca");
    for (auto [name, ca] : {std::pair{"client", "ca"}, std::pair{"stranger", "other-ca"}}) {
      std::string base = d + "/" + name;
      ok_ = ok_ &&
            run("openssl req" + ec + " -keyout " + base + ".key -out " + base +
                ".csr -subj /O=system:masters/O=ops/CN=admin") &&
            run("openssl x509 -req -in " + base + ".csr -CA " + d + "/" + ca + ".crt -CAkey " + d +
                "/" + ca + ".key -CAcreateserial -out " + base + ".crt -days 2");
    }
  }
  bool ok() const { return ok_; }
  std::string ca() const { return dir_.path() + "/ca.crt"; }
  Cert client() const { return {dir_.path() + "/client.crt", dir_.path() + "/client.key"}; }
  Cert stranger() const { return {dir_.path() + "/stranger.crt", dir_.path() + "/stranger.key"}; }

 private:
  testing::TempDir dir_;
  bool ok_ = false;
};

const Pki& pki() {
  static Pki p;
  return p;
}

struct Reply {
  int status = 0;
  std::string body;
  int chunks = 0;
  std::string error;
};

struct Options {
  const Cert* cert = nullptr;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string verify_with;            // the server's cert: checked, with IP 127.0.0.1
  std::function<void(int)> on_chunk;  // called with the chunk's number
};

// One request on a new connection, bounded by a 10 s receive timeout.
Reply fetch(int port, http::verb method, const std::string& target, const Options& o = {}) {
  Reply out;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  if (o.cert != nullptr) {
    ctx.use_certificate_chain_file(o.cert->cert);
    ctx.use_private_key_file(o.cert->key, net::ssl::context::pem);
  }
  beast::ssl_stream<net::ip::tcp::socket> s(ioc, ctx);
  if (!o.verify_with.empty()) {
    ctx.load_verify_file(o.verify_with);
    s.set_verify_mode(net::ssl::verify_peer);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s.native_handle()), "127.0.0.1");
  }
  beast::error_code ec;
  s.next_layer().connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}, ec);
  timeval tv{10, 0};
  ::setsockopt(s.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!ec) {
    s.handshake(net::ssl::stream_base::client, ec);
  }
  if (ec) {
    out.error = "connect/handshake: " + ec.message();
    return out;
  }
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (auto& [k, v] : o.headers) {
    req.set(k, v);
  }
  http::write(s, req, ec);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.body_limit(64 << 20);
  std::function<size_t(uint64_t, beast::string_view, beast::error_code&)> chunk =
      [&](uint64_t, beast::string_view body, beast::error_code&) {
        out.chunks++;
        out.body.append(body.data(), body.size());
        if (o.on_chunk) {
          o.on_chunk(out.chunks);
        }
        return body.size();
      };
  p.on_chunk_body(chunk);
  if (!ec) {
    http::read(s, buf, p, ec);
  }
  if (ec) {
    out.error = "exchange: " + ec.message();
    return out;
  }
  out.status = static_cast<int>(p.get().result_int());
  if (out.chunks == 0) {
    out.body = p.get().body();
  }
  return out;
}

// Denies everything but what `allowed` lists ("user verb subresource").
class FakeAccess : public AccessReviewer {
 public:
  std::set<std::string> allowed;
  void review(const AccessRequest& r, std::function<void(Result<AccessAnswer>)> done) override {
    done(AccessAnswer{allowed.contains(r.user.name + " " + r.verb + " " + r.subresource), ""});
  }
};

class FakeTokens : public TokenReviewer {
 public:
  void review(const std::string& token, std::function<void(Result<TokenAnswer>)> done) override {
    // From another thread, as the API client's network thread answers.
    std::thread([token, done] {
      done(token == "good-token" ? TokenAnswer{true, {"viewer", {"g"}}, ""}
                                 : TokenAnswer{false, {}, "unknown token"});
    }).detach();
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pki().ok()) << "openssl could not make the test PKI"; }

  ServerConfig config() {
    ServerConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.tls.cert_dir = dir_.path() + "/pki";
    c.tls.node_name = "node-a";
    c.tls.ips = {"127.0.0.1"};
    c.tls.client_ca_file = pki().ca();
    return c;
  }
  std::unique_ptr<NodeServer> start(ServerConfig c, Endpoints e = {}, Security s = {}) {
    if (s.authn.tokens == nullptr) {
      s.authn.x509 = true;
    }
    auto r = NodeServer::start(std::move(c), std::move(e), s);
    EXPECT_TRUE(r) << r.error().message();
    return r ? std::move(*r) : nullptr;
  }

  testing::TempDir dir_;
};

TEST_F(ServerTest, SelfSignedCertificateIsWrittenForTheNodeAndReused) {
  auto server = start(config());
  ASSERT_TRUE(server);
  std::string crt = dir_.path() + "/pki/kubelet.crt", key = dir_.path() + "/pki/kubelet.key";
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Verified against itself, for the node's IP: the SAN is right.
  Cert client = pki().client();
  Reply r =
      fetch(server->port(), http::verb::get, "/healthz", {.cert = &client, .verify_with = crt});
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "ok");
  std::string first = readAll(crt);
  server->stop();
  server = start(config());
  ASSERT_TRUE(server);
  EXPECT_EQ(readAll(crt), first) << "a restart must reuse the pair";
  server.reset();
  // A pair that does not match (or is gone) is made again.
  std::filesystem::remove(key);
  server = start(config());
  ASSERT_TRUE(server);
  EXPECT_NE(readAll(crt), first);
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/healthz", {.cert = &client}).status, 200);
}

TEST_F(ServerTest, ClientCertificatesFromTheCaOnly) {
  auto server = start(config());
  ASSERT_TRUE(server);
  Cert client = pki().client(), stranger = pki().stranger();
  Reply none = fetch(server->port(), http::verb::get, "/healthz");
  EXPECT_EQ(none.status, 401) << none.error;
  EXPECT_EQ(none.body, "Unauthorized\n");
  Reply other = fetch(server->port(), http::verb::get, "/healthz", {.cert = &stranger});
  EXPECT_EQ(other.status, 401) << other.error;
  Reply good = fetch(server->port(), http::verb::get, "/healthz", {.cert = &client});
  EXPECT_EQ(good.status, 200) << good.error;
  // Unknown paths: 404 once authenticated; exec: routed, not yet served.
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/nope", {.cert = &client}).status, 404);
  EXPECT_EQ(
      fetch(server->port(), http::verb::post, "/exec/ns/p/c?command=id", {.cert = &client}).status,
      501);
  // Bad paths and methods: 400 and 405 to an authenticated client; a client
  // without credentials gets 401 for them too, learning nothing.
  for (const Cert* c : {static_cast<const Cert*>(nullptr), static_cast<const Cert*>(&stranger)}) {
    Options o{.cert = c};
    EXPECT_EQ(fetch(server->port(), http::verb::get, "/containerLogs/ns/%2e%2e/c", o).status, 401);
    EXPECT_EQ(fetch(server->port(), http::verb::get, "/healthz%00", o).status, 401);
    EXPECT_EQ(fetch(server->port(), http::verb::get, "/p\xff\xfe", o).status, 401);
    EXPECT_EQ(fetch(server->port(), http::verb::get, "/nope", o).status, 401);
    EXPECT_EQ(fetch(server->port(), http::verb::get, "/run/ns/p/c?cmd=id", o).status, 401);
  }
  Options ok{.cert = &client};
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/containerLogs/ns/%2e%2e/c", ok).status, 400);
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/healthz%00", ok).status, 400);
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/p\xff\xfe", ok).status, 400);
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/run/ns/p/c?cmd=id", ok).status, 405);
}

TEST_F(ServerTest, TokensAndADenyingAuthorizer) {
  FakeTokens tokens;
  FakeAccess access;
  access.allowed = {"viewer get proxy"};
  Security sec;
  sec.authn.tokens = &tokens;
  sec.authz.reviewer = &access;
  std::atomic<int> pods_calls{0};
  Endpoints e;
  e.pods = [&](Request req, Responder respond) {
    pods_calls++;
    // Answered from another thread, as an endpoint that works elsewhere would.
    std::thread([req, respond] {
      respond(Response::json(200, "{\"user\":\"" + req.user + "\"}"));
    }).detach();
  };
  auto server = start(config(), e, sec);
  ASSERT_TRUE(server);
  Options good{.headers = {{"Authorization", "Bearer good-token"}}};
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/healthz", good).status, 200);
  Reply pods = fetch(server->port(), http::verb::get, "/pods", good);
  EXPECT_EQ(pods.status, 200);
  EXPECT_EQ(pods.body, "{\"user\":\"viewer\"}");
  // exec by POST, and by a GET asking for a WebSocket upgrade: create, denied.
  for (auto verb : {http::verb::post, http::verb::get}) {
    Options upgrade = good;
    if (verb == http::verb::get) {
      upgrade.headers.push_back({"Connection", "Upgrade"});
      upgrade.headers.push_back({"Upgrade", "websocket"});
      upgrade.headers.push_back({"Sec-WebSocket-Protocol", "v5.channel.k8s.io"});
    }
    Reply r = fetch(server->port(), verb, "/exec/default/web/app?command=sh", upgrade);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body,
              "Forbidden (user=viewer, verb=create, resource=nodes, subresource(s)=[proxy])\n");
  }
  Reply stats = fetch(server->port(), http::verb::get, "/stats/summary", good);
  EXPECT_EQ(stats.status, 403);
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/healthz",
                  {.headers = {{"Authorization", "Bearer wrong"}}})
                .status,
            401);
  EXPECT_EQ(pods_calls, 1);
}

TEST_F(ServerTest, AHandlerThatDropsItsResponderAnswers500) {
  Endpoints e;
  e.configz = [](Request, Responder) {};
  auto server = start(config(), e);
  ASSERT_TRUE(server);
  Cert client = pki().client();
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/configz", {.cert = &client}).status, 500);
}

TEST_F(ServerTest, AOneMebibyteHeaderGets431) {
  auto server = start(config());
  ASSERT_TRUE(server);
  // Written and read at once (async): the server answers before it has read it all.
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  beast::ssl_stream<beast::tcp_stream> s(ioc, ctx);
  beast::error_code ec;
  beast::get_lowest_layer(s).connect(
      {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server->port())}, ec);
  ASSERT_FALSE(ec);
  s.handshake(net::ssl::stream_base::client, ec);
  ASSERT_FALSE(ec) << ec.message();
  http::request<http::string_body> req{http::verb::get, "/healthz", 11};
  for (int i = 0; i < 128; i++) {  // 1 MiB in all
    req.set("X-Big-" + std::to_string(i), std::string(8 << 10, 'a'));
  }
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  bool read_done = false;
  http::async_write(s, req, [](beast::error_code, size_t) {});
  http::async_read(s, buf, res, [&](beast::error_code e, size_t) {
    read_done = true;
    ec = e;
    beast::get_lowest_layer(s).close();
  });
  ioc.run_for(20s);
  ASSERT_TRUE(read_done);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 431u);
}

// A raw TCP connection to the server (no TLS), or -1.
int rawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits (bounded) until the server counts `n` connections.
bool awaitConnections(const NodeServer& s, size_t n) {
  for (int i = 0; i < 2000 && s.connections() != n; i++) {
    std::this_thread::sleep_for(5ms);
  }
  return s.connections() == n;
}

TEST_F(ServerTest, ASlowClientIsClosedAfterTheHeaderTimeout) {
  ServerConfig c = config();
  c.header_timeout = 500ms;
  auto server = start(c);
  ASSERT_TRUE(server);
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  Cert client = pki().client();
  ctx.use_certificate_chain_file(client.cert);
  ctx.use_private_key_file(client.key, net::ssl::context::pem);
  beast::ssl_stream<net::ip::tcp::socket> s(ioc, ctx);
  s.next_layer().connect(
      {net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(server->port())});
  s.handshake(net::ssl::stream_base::client);
  // A byte every 100 ms: the whole request would take 2.5 s.
  std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  auto begun = std::chrono::steady_clock::now();
  beast::error_code ec;
  for (char ch : request) {
    net::write(s, net::buffer(&ch, 1), ec);
    if (ec) {
      break;
    }
    std::this_thread::sleep_for(100ms);
    if (server->connections() == 0) {
      break;  // closed by the server
    }
  }
  EXPECT_EQ(server->connections(), 0u) << "the slow client is still connected";
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 2s);
  char b;
  size_t n = s.read_some(net::buffer(&b, 1), ec);
  EXPECT_EQ(n, 0u) << "no answer was due";
  // A raw connection that never starts TLS goes the same way.
  int fd = rawConnect(server->port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(awaitConnections(*server, 1));
  EXPECT_TRUE(awaitConnections(*server, 0));
  ::close(fd);
}

long rssKiB() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

TEST_F(ServerTest, AThousandIdleConnectionsThenANormalRequest) {
  ASSERT_TRUE(raiseOpenFileLimit());
  ServerConfig c = config();
  c.header_timeout = 60s;  // they stay for the test
  auto server = start(c);
  ASSERT_TRUE(server);
  Cert client = pki().client();
  ASSERT_EQ(fetch(server->port(), http::verb::get, "/healthz", {.cert = &client}).status, 200);
  long before = rssKiB();
  std::vector<int> fds;
  for (int i = 0; i < 1000; i++) {
    int fd = rawConnect(server->port());
    ASSERT_GE(fd, 0) << "connection " << i;
    fds.push_back(fd);
  }
  ASSERT_TRUE(awaitConnections(*server, 1000));
  Reply r = fetch(server->port(), http::verb::get, "/healthz", {.cert = &client});
  EXPECT_EQ(r.status, 200) << r.error;
  long grown = rssKiB() - before;
  std::printf("RSS grew %ld KiB for 1000 idle connections\n", grown);
  EXPECT_LT(grown, 32 * 1024) << "more than 32 KiB per idle connection";
  for (int fd : fds) {
    ::close(fd);
  }
  EXPECT_TRUE(awaitConnections(*server, 0));
}

TEST_F(ServerTest, PastTheCapNewConnectionsAreClosedAtOnce) {
  ServerConfig c = config();
  c.max_connections = 4;
  c.header_timeout = 60s;
  auto server = start(c);
  ASSERT_TRUE(server);
  std::vector<int> fds;
  for (int i = 0; i < 4; i++) {
    fds.push_back(rawConnect(server->port()));
  }
  ASSERT_TRUE(awaitConnections(*server, 4));
  int extra = rawConnect(server->port());
  ASSERT_GE(extra, 0);
  timeval tv{10, 0};
  ::setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char b;
  EXPECT_EQ(::read(extra, &b, 1), 0) << "the fifth connection was not closed";
  ::close(extra);
  for (int fd : fds) {
    ::close(fd);
  }
  ASSERT_TRUE(awaitConnections(*server, 0));
  Cert client = pki().client();
  EXPECT_EQ(fetch(server->port(), http::verb::get, "/healthz", {.cert = &client}).status, 200);
}

// A body from a pipe: what is written arrives, in chunks, until it closes.
class PipeSource : public BodySource {
 public:
  explicit PipeSource(int fd) : fd_(fd) {}
  ~PipeSource() override { ::close(fd_); }
  Result<State> read(std::string& out, size_t max) override {
    char buf[4096];
    ssize_t n = ::read(fd_, buf, std::min(max, sizeof buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      return State::kData;
    }
    if (n == 0) {
      return State::kEnd;
    }
    return errno == EAGAIN ? Result<State>(State::kWait) : sysError("read", "pipe");
  }
  int waitFd() const override { return fd_; }
  std::chrono::milliseconds pollAfter() const override { return 30s; }

 private:
  int fd_;
};

TEST_F(ServerTest, AStreamedBodyArrivesInChunks) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  Endpoints e;
  e.container_logs = [rd = p[0]](Request req, Responder respond) {
    Response r;
    r.body = "first:" + req.params[2] + "\n";
    r.stream = std::make_unique<PipeSource>(rd);
    respond(std::move(r));
  };
  auto server = start(config(), e);
  ASSERT_TRUE(server);
  Cert client = pki().client();
  int wr = p[1];
  // Each chunk the client sees makes the next line; the third closes the pipe.
  Reply r =
      fetch(server->port(), http::verb::get, "/containerLogs/ns/pod/app",
            {.cert = &client, .on_chunk = [&](int n) {
               if (n > 3) {
                 return;
               }
               std::string line = "line " + std::to_string(n) + "\n";
               EXPECT_EQ(::write(wr, line.data(), line.size()), static_cast<ssize_t>(line.size()))
                   << "write " << n << ": " << std::strerror(errno);
               if (n == 3) {
                 ::close(wr);
               }
             }});
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "first:app\nline 1\nline 2\nline 3\n");
  EXPECT_GE(r.chunks, 4);
}

TEST_F(ServerTest, ABindFailureNamesTheAddress) {
  auto first = start(config());
  ASSERT_TRUE(first);
  ServerConfig c = config();
  c.port = first->port();
  auto second = NodeServer::start(c, {}, {});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos)
      << second.error().message();
}

}  // namespace
}  // namespace kernelet::agent::server
