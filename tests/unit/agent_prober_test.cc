// Probe runs against servers on loopback and a local process standing in for
// an exec in a container: outcomes, the kubelet's failure messages, timeouts.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "agent/model/pod.h"
#include "agent/prober/prober.h"
#include "agent/runtime/process_exec.h"
#include "support/free_port.h"
#include "support/probe_loop.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

// A loopback listener answering each connection with `answer` (nothing: it
// accepts and stays silent).
class Server {
 public:
  explicit Server(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 8);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
          return;
        }
        char buf[2048];
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n > 0) {
          request_.assign(buf, static_cast<size_t>(n));
        }
        if (!answer_.empty()) {
          (void)::send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
          ::close(c);
        } else {
          held_.push_back(c);
        }
      }
    });
  }
  ~Server() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    for (int c : held_) {
      ::close(c);
    }
  }
  int port() const { return port_; }
  std::string request() const { return request_; }

 private:
  std::string answer_;
  int fd_ = -1, port_ = 0;
  std::thread thread_;
  std::string request_;
  std::vector<int> held_;
};

class ProberTest : public testing::ProbeLoop {
 protected:
  // Runs one probe to its outcome (or 10 s).
  std::optional<ProbeOutcome> probe(const Probe& p, ProbeTarget target = {.ip = "127.0.0.1"}) {
    return runProbe(p, target);
  }
};

TEST_F(ProberTest, TcpSocketAcceptedOrRefused) {
  Server s("");
  auto ok = probe({.kind = Probe::Kind::kTcpSocket, .port = s.port()});
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->success) << ok->message;
  int closed = testing::freeLoopbackPort();
  auto refused = probe({.kind = Probe::Kind::kTcpSocket, .port = closed});
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->success);
  EXPECT_EQ(refused->message,
            "dial tcp 127.0.0.1:" + std::to_string(closed) + ": connect: connection refused");
}

TEST_F(ProberTest, HttpGetJudgesTheStatusCodeAndSendsTheKubeletsRequest) {
  Server ok("HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n");
  Probe p{.kind = Probe::Kind::kHttpGet, .path = "/healthz", .port = ok.port()};
  p.headers = {{"X-Check", "1"}};
  auto r = probe(p);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->success) << r->message;  // 200-399 passes
  std::string req = ok.request();
  EXPECT_TRUE(req.starts_with("GET /healthz HTTP/1.1\r\n")) << req;
  EXPECT_NE(req.find("User-Agent: kube-probe/1.35\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("X-Check: 1\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Host: 127.0.0.1:" + std::to_string(ok.port())), std::string::npos) << req;

  Server bad("HTTP/1.0 500 Internal Server Error\r\n\r\noops");
  p.port = bad.port();
  r = probe(p);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->success);
  EXPECT_EQ(r->message, "HTTP probe failed with statuscode: 500");

  int closed = testing::freeLoopbackPort();
  p.port = closed;
  r = probe(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message, "Get \"http://127.0.0.1:" + std::to_string(closed) +
                            "/healthz\": dial tcp 127.0.0.1:" + std::to_string(closed) +
                            ": connect: connection refused");
}

TEST_F(ProberTest, HttpsIsSpokenWithoutVerifyingThePodsCertificate) {
  testing::TempDir d;
  std::string key = d.path() + "/k.pem", cert = d.path() + "/c.pem";
  ASSERT_EQ(
      std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=pod -keyout " +
                   key + " -out " + cert + " >/dev/null 2>&1")
                      .c_str()),
      0);
  int port = testing::freeLoopbackPort();
  pid_t server = ::fork();
  if (server == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::string accept = "127.0.0.1:" + std::to_string(port);
    ::execlp("openssl", "openssl", "s_server", "-quiet", "-www", "-accept", accept.c_str(), "-cert",
             cert.c_str(), "-key", key.c_str(), nullptr);
    ::_exit(127);
  }
  // Up once a TCP probe gets in.
  for (int i = 0; i < 100; i++) {
    auto up = probe({.kind = Probe::Kind::kTcpSocket, .port = port});
    if (up && up->success) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto r = probe({.kind = Probe::Kind::kHttpGet, .scheme = "HTTPS", .port = port});
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->success) << r->message;
  // Plain HTTP to a TLS port is not an HTTP answer.
  Server tls_only("\x16\x03\x01\x00\x02\x02\x46");
  auto plain = probe({.kind = Probe::Kind::kHttpGet, .port = tls_only.port()});
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->success);
  EXPECT_NE(plain->message.find("malformed HTTP response"), std::string::npos) << plain->message;
}

TEST_F(ProberTest, ASilentServerTimesOut) {
  Server silent("");
  Probe p{.kind = Probe::Kind::kHttpGet, .port = silent.port(), .timeout_seconds = 1};
  auto t0 = std::chrono::steady_clock::now();
  auto r = probe(p);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->success);
  EXPECT_NE(r->message.find("context deadline exceeded (Client.Timeout exceeded while awaiting "
                            "headers)"),
            std::string::npos)
      << r->message;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
}

// An exec stand-in: `sh -c SCRIPT` on the host, its output to out_fd.
ProbeTarget shell() {
  ProbeTarget t;
  t.exec = [](const std::vector<std::string>& argv, int out_fd,
              std::chrono::milliseconds) -> Result<std::unique_ptr<runtime::ExecProcess>> {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(out_fd, 1);
      ::dup2(out_fd, 2);
      std::vector<char*> args = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c")};
      args.push_back(const_cast<char*>(argv[0].c_str()));
      args.push_back(nullptr);
      ::execv("/bin/sh", args.data());
      ::_exit(127);
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    return runtime::processExec(isolation::Process(pid, UniqueFd(pidfd)));
  };
  return t;
}

TEST_F(ProberTest, ExecPassesOnExitZeroAndReportsWhatItPrinted) {
  auto ok = probe({.kind = Probe::Kind::kExec, .command = {"echo fine"}}, shell());
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->success);
  auto bad =
      probe({.kind = Probe::Kind::kExec, .command = {"echo not alive >&2; exit 3"}}, shell());
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->success);
  EXPECT_EQ(bad->message, "not alive\n");
  auto slow =
      probe({.kind = Probe::Kind::kExec, .command = {"sleep 30"}, .timeout_seconds = 1}, shell());
  ASSERT_TRUE(slow);
  EXPECT_FALSE(slow->success);
  EXPECT_EQ(slow->message, "command \"sleep 30\" timed out");
  // The timed-out process was killed and reaped: no child is left.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}

TEST_F(ProberTest, AnExecThatCannotStartFailsAfterStartProbeReturned) {
  ProbeTarget t;
  t.exec = [](const std::vector<std::string>&, int,
              std::chrono::milliseconds) -> Result<std::unique_ptr<runtime::ExecProcess>> {
    return makeError("exec probe", "", "the container is not running");
  };
  bool returned = false, early = false;
  std::optional<ProbeOutcome> out;
  auto run = startProbe(*loop_, *timers_, {.kind = Probe::Kind::kExec, .command = {"x"}}, t,
                        [&](ProbeOutcome o) {
                          early = !returned;
                          out = o;
                        });
  returned = true;
  for (int i = 0; i < 20 && !out; i++) {
    (void)loop_->runOnce(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(out);
  EXPECT_FALSE(early);
  EXPECT_NE(out->message.find("the container is not running"), std::string::npos);
}

// An exec probe's start runs on the loop thread: its setup is bounded by the
// probe's timeoutSeconds, not by the 60 s a container start gets.
TEST_F(ProberTest, AnExecProbesSetupIsBoundedByItsTimeout) {
  for (int timeout : {0, 1, 7}) {
    std::optional<std::chrono::milliseconds> given;
    ProbeTarget t;
    t.exec = [&given](
                 const std::vector<std::string>&, int,
                 std::chrono::milliseconds setup) -> Result<std::unique_ptr<runtime::ExecProcess>> {
      given = setup;
      return makeError("exec probe", "", "not started");
    };
    std::optional<ProbeOutcome> out;
    auto run =
        startProbe(*loop_, *timers_,
                   {.kind = Probe::Kind::kExec, .command = {"x"}, .timeout_seconds = timeout}, t,
                   [&](ProbeOutcome o) { out = o; });
    ASSERT_TRUE(given);
    EXPECT_EQ(*given, std::chrono::seconds(std::max(timeout, 1))) << timeout;
  }
}

TEST(ProbeManifest, ProbesDecodeWithNamedPortsAndTheirRules) {
  auto pods = parseManifests(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: i
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: healthz, port: http, httpHeaders: [{name: X, value: y}]}
      periodSeconds: 2
      successThreshold: 2
    livenessProbe:
      exec: {command: [cat, /tmp/alive]}
      failureThreshold: 1
    startupProbe:
      tcpSocket: {port: 8080}
      initialDelaySeconds: 3
  - name: g
    image: i
    livenessProbe: {grpc: {port: 9000, service: my.Health}}
    readinessProbe: {grpc: {port: 9001}}
)",
                             "p.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  const Container& c = (*pods)[0].pod.containers[0];
  ASSERT_TRUE(c.readiness_probe);
  EXPECT_EQ(c.readiness_probe->kind, Probe::Kind::kHttpGet);
  EXPECT_EQ(c.readiness_probe->port, 8080);
  EXPECT_EQ(c.readiness_probe->path, "/healthz");
  EXPECT_EQ(c.readiness_probe->success_threshold, 2);
  EXPECT_EQ(c.readiness_probe->timeout_seconds, 1);
  ASSERT_TRUE(c.liveness_probe);
  EXPECT_EQ(c.liveness_probe->command, (std::vector<std::string>{"cat", "/tmp/alive"}));
  EXPECT_EQ(c.liveness_probe->period_seconds, 10);
  ASSERT_TRUE(c.startup_probe);
  EXPECT_EQ(c.startup_probe->initial_delay_seconds, 3);
  const Container& g = (*pods)[0].pod.containers[1];
  ASSERT_TRUE(g.liveness_probe && g.readiness_probe);
  EXPECT_EQ(g.liveness_probe->kind, Probe::Kind::kGrpc);
  EXPECT_EQ(g.liveness_probe->port, 9000);
  EXPECT_EQ(g.liveness_probe->grpc_service, "my.Health");
  EXPECT_EQ(g.readiness_probe->grpc_service, "");

  auto error = [](const std::string& probe) {
    auto r = parseManifests(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n"
        "    image: i\n" +
            probe,
        "p.yaml");
    return r ? std::string("parsed") : r.error().message();
  };
  EXPECT_NE(error("    livenessProbe: {tcpSocket: {port: web}}\n")
                .find("livenessProbe.tcpSocket.port: no container port named \"web\""),
            std::string::npos);
  EXPECT_NE(error("    livenessProbe: {exec: {command: [x]}, successThreshold: 2}\n")
                .find("livenessProbe.successThreshold: must be 1"),
            std::string::npos);
  EXPECT_NE(error("    readinessProbe: {grpc: {port: http}}\n").find("readinessProbe.grpc.port"),
            std::string::npos);
  EXPECT_NE(error("    readinessProbe: {grpc: {service: x}}\n")
                .find("readinessProbe.grpc.port: required"),
            std::string::npos);
  EXPECT_NE(error("    readinessProbe: {grpc: {port: 70000}}\n")
                .find("readinessProbe.grpc.port: must be between 1 and 65535"),
            std::string::npos);
  EXPECT_NE(error("    readinessProbe: {grpc: {port: 9000}, tcpSocket: {port: 9000}}\n")
                .find("must have exactly one of"),
            std::string::npos);
  EXPECT_NE(error("    readinessProbe: {periodSeconds: 3}\n")
                .find("must have exactly one of exec, httpGet, tcpSocket or grpc"),
            std::string::npos);
}

}  // namespace
}  // namespace kernelet::agent
