// The node server against what a security review of it (issue #17) found:
// an identity forged with a NUL in its name, clients without credentials
// holding every connection, a CA-signed certificate without a CN, and TLS
// session resumption with client certificates requested.
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
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/server/authn.h"
#include "agent/server/authz.h"
#include "agent/server/server.h"
#include "support/temp_dir.h"

namespace kernelet::agent::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

// A user or group name may hold a NUL (TokenReview JSON "\u0000", a
// certificate's CN): two identities must never share one cached verdict.
class OnlyRealAdmin : public AccessReviewer {
 public:
  int calls = 0;
  void review(const AccessRequest& r, std::function<void(Result<AccessAnswer>)> done) override {
    calls++;
    bool admin =
        r.user.name == "alice" && r.user.groups.size() == 1 && r.user.groups[0] == "system:masters";
    done(AccessAnswer{admin, ""});
  }
};

TEST(ServerHardening, TheAuthzCacheNeverMixesTwoIdentities) {
  OnlyRealAdmin reviewer;
  AuthzOptions o;
  o.reviewer = &reviewer;
  Authorizer authz(o, [](std::function<void()> fn) { fn(); });
  AccessAttributes exec{"create", {"proxy"}};
  bool first = false;
  authz.authorize(UserInfo{"alice", {"system:masters"}}, exec,
                  [&](AuthzResult r) { first = r.allowed; });
  ASSERT_TRUE(first);
  // Another identity: name "alice\0system:masters", no groups. The API
  // server denies it (the reviewer does), and so must the cache.
  bool forged = false;
  authz.authorize(UserInfo{std::string("alice\0system:masters", 20), {}}, exec,
                  [&](AuthzResult r) { forged = r.allowed; });
  EXPECT_FALSE(forged);
  EXPECT_EQ(reviewer.calls, 2) << "the second identity was not reviewed";
}

// A 401 closes the connection: max_connections clients without credentials
// cannot hold every slot (keep-alive) and lock out the API server.
TEST(ServerHardening, AClientWithoutCredentialsIsClosedAfterIts401) {
  testing::TempDir dir;
  ServerConfig c;
  c.address = "127.0.0.1";
  c.port = 0;
  c.tls.cert_dir = dir.path() + "/pki";
  c.tls.node_name = "node-a";
  c.tls.ips = {"127.0.0.1"};
  c.max_connections = 3;
  c.header_timeout = 300ms;
  c.idle_timeout = 3s;  // a regression fails in seconds, not minutes
  Security sec;         // no client CA, no tokens: everyone gets 401
  auto server = NodeServer::start(c, Endpoints{}, sec);
  ASSERT_TRUE(server) << server.error().message();
  int port = (*server)->port();

  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  std::vector<std::unique_ptr<beast::ssl_stream<net::ip::tcp::socket>>> held;
  for (int i = 0; i < 3; i++) {
    auto s = std::make_unique<beast::ssl_stream<net::ip::tcp::socket>>(ioc, ctx);
    s->next_layer().connect({net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)});
    s->handshake(net::ssl::stream_base::client);
    http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, "x");
    http::write(*s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(*s, buf, res);
    ASSERT_EQ(res.result_int(), 401u);
    EXPECT_FALSE(res.keep_alive()) << "a 401 kept the connection";
    beast::error_code ec;
    http::read(*s, buf, res, ec);  // the server closes it
    EXPECT_TRUE(ec) << "the connection stayed open after the 401";
    held.push_back(std::move(s));
  }
  // Every slot is free again: a new client is served.
  for (auto deadline = std::chrono::steady_clock::now() + 5s;
       (*server)->connections() > 0 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ((*server)->connections(), 0u);
}

// A CA-signed client certificate without a CN, and TLS session resumption
// with client certificates requested.
class ServerHardeningTls : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = dir_.path();
    auto run = [](const std::string& cmd) {
      return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
    };
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    ASSERT_TRUE(run("openssl req -x509" + ec + " -keyout " + d_ + "/ca.key -out " + d_ +
                    "/ca.crt -days 2 -subj /CN=test-ca"));
    // No CN at all: the kubelet's x509 authenticator refuses it (no user).
    ASSERT_TRUE(run("openssl req" + ec + " -keyout " + d_ + "/nocn.key -out " + d_ +
                    "/nocn.csr -subj /O=system:masters"));
    ASSERT_TRUE(run("openssl x509 -req -in " + d_ + "/nocn.csr -CA " + d_ + "/ca.crt -CAkey " + d_ +
                    "/ca.key -CAcreateserial -out " + d_ + "/nocn.crt -days 2"));
  }
  std::unique_ptr<NodeServer> start(Security sec, Endpoints e = {}) {
    ServerConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.tls.cert_dir = d_ + "/pki";
    c.tls.node_name = "node-a";
    c.tls.ips = {"127.0.0.1"};
    c.tls.client_ca_file = d_ + "/ca.crt";
    sec.authn.x509 = true;
    auto r = NodeServer::start(c, std::move(e), sec);
    EXPECT_TRUE(r) << r.error().message();
    return r ? std::move(*r) : nullptr;
  }
  testing::TempDir dir_;
  std::string d_;
};

class RecordingAccess : public AccessReviewer {
 public:
  std::vector<std::string> users;
  void review(const AccessRequest& r, std::function<void(Result<AccessAnswer>)> done) override {
    users.push_back("[" + r.user.name + "]");
    bool masters = false;
    for (auto& g : r.user.groups) masters |= g == "system:masters";
    done(AccessAnswer{masters, ""});  // as RBAC: system:masters may do anything
  }
};

TEST_F(ServerHardeningTls, ACertificateWithoutCommonNameIsUnauthorized) {
  RecordingAccess access;
  Security sec;
  sec.authz.reviewer = &access;
  auto server = start(sec);
  ASSERT_TRUE(server);
  std::string cmd = "curl -sk -o /dev/null -w '%{http_code}' --max-time 5 --cert " + d_ +
                    "/nocn.crt --key " + d_ +
                    "/nocn.key https://127.0.0.1:" + std::to_string(server->port()) + "/healthz";
  FILE* f = ::popen(cmd.c_str(), "r");
  char out[16] = {};
  size_t n = std::fread(out, 1, sizeof out - 1, f);
  ::pclose(f);
  std::string code(out, n);
  EXPECT_EQ(code, "401") << "as the kubelet: no user name in the certificate, no user";
  EXPECT_TRUE(access.users.empty()) << "an empty user was sent for review";
}

TEST_F(ServerHardeningTls, ASessionIsResumedWithClientCertificatesRequested) {
  auto server = start(Security{});
  ASSERT_TRUE(server);
  std::string base = std::string("openssl s_client -tls1_2 -connect 127.0.0.1:") +
                     std::to_string(server->port()) + " -cert " + d_ + "/nocn.crt -key " + d_ +
                     "/nocn.key </dev/null 2>&1";
  std::string sess = d_ + "/sess.pem";
  auto run = [](const std::string& cmd) {
    std::string all;
    FILE* f = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
    ::pclose(f);
    return all;
  };
  std::string first = run("timeout 10 " + base + " -sess_out " + sess);
  std::string second = run("timeout 10 " + base + " -sess_in " + sess);
  EXPECT_NE(first.find("New,"), std::string::npos) << first.substr(0, 1500);
  EXPECT_NE(second.find("Reused,"), std::string::npos) << second.substr(0, 1500);
}

}  // namespace
}  // namespace kernelet::agent::server
