// gRPC probes against kt-grpc (the fixtures' health server, written apart
// from the agent's client) on loopback, and against hand-made HTTP/2 answers
// a real server may give: outcomes and the kubelet's messages.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "agent/model/pod.h"
#include "agent/prober/grpc_health.h"
#include "agent/prober/prober.h"
#include "support/free_port.h"
#include "support/probe_loop.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

// kt-grpc on 127.0.0.1, answering with the word in `answer_file`.
class HealthServer {
 public:
  explicit HealthServer(const std::string& answer_file) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      return;
    }
    std::string bin = std::string(KERNELET_HELPERS_DIR) + "/kt-grpc";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::execl(bin.c_str(), "kt-grpc", "127.0.0.1:0", answer_file.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[128] = "";
    if (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
      std::sscanf(line, "kt-grpc: listening on %d", &port_);
    }
    if (f != nullptr) {
      std::fclose(f);
    }
  }
  ~HealthServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class GrpcProbeTest : public testing::ProbeLoop {
 protected:
  void answer(const std::string& word) { std::ofstream(answer_file_) << word << "\n"; }
  ProbeOutcome probe(int port, const std::string& service = "", int timeout = 1) {
    Probe p{.kind = Probe::Kind::kGrpc, .port = port, .timeout_seconds = timeout};
    p.grpc_service = service;
    return runProbe(p, {.ip = "127.0.0.1"}).value_or(ProbeOutcome{false, "no outcome within 10 s"});
  }

  testing::TempDir dir_;
  std::string answer_file_ = dir_.path() + "/answer";
};

TEST_F(GrpcProbeTest, TheServersAnswersAreTheOutcomes) {
  HealthServer server(answer_file_);
  ASSERT_GT(server.port(), 0) << "kt-grpc did not start";
  answer("SERVING");
  auto ok = probe(server.port());
  EXPECT_TRUE(ok.success) << ok.message;
  EXPECT_TRUE(probe(server.port(), "my.Service").success);

  answer("NOT_SERVING");
  auto down = probe(server.port());
  EXPECT_FALSE(down.success);
  EXPECT_EQ(down.message, "service unhealthy (responded with \"NOT_SERVING\")");
  answer("UNKNOWN");  // proto3's empty message
  EXPECT_EQ(probe(server.port()).message, "service unhealthy (responded with \"UNKNOWN\")");
  answer("SERVICE_UNKNOWN");
  EXPECT_EQ(probe(server.port()).message, "service unhealthy (responded with \"SERVICE_UNKNOWN\")");

  answer("UNIMPLEMENTED");
  EXPECT_EQ(probe(server.port()).message,
            "error: this server does not implement the grpc health protocol "
            "(grpc.health.v1.Health): unknown service grpc.health.v1.Health");
  answer("SERVING");
  EXPECT_EQ(probe(server.port(), "unknown").message,
            "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service");
  // Back to healthy on the same server: nothing of a call outlives it.
  EXPECT_TRUE(probe(server.port()).success);
}

TEST_F(GrpcProbeTest, ACallWithoutAnAnswerTimesOutAfterTheConnection) {
  HealthServer server(answer_file_);
  ASSERT_GT(server.port(), 0);
  answer("HANG");
  auto t0 = std::chrono::steady_clock::now();
  auto r = probe(server.port());
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.message, "timeout: health rpc did not complete within 1s");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
}

TEST_F(GrpcProbeTest, NoServerOrNoHttp2IsAConnectTimeoutAsWithGrpcGo) {
  // grpc-go dials with WithBlock: a refused connection is retried until the
  // deadline, so the kubelet reports the timeout, not the refusal.
  int port = testing::freeLoopbackPort();
  auto refused = probe(port);
  EXPECT_FALSE(refused.success);
  EXPECT_EQ(refused.message, "timeout: failed to connect service \"127.0.0.1:" +
                                 std::to_string(port) + "\" within 1s: context deadline exceeded");
}

// What an HTTP/2 server sends, frame by frame, to drive GrpcHealthCheck directly.
std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  size_t n = payload.size();
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int shift = 24; shift >= 0; shift -= 8) {
    f += static_cast<char>((stream >> shift) & 0xff);
  }
  return f + payload;
}
// Literal header fields without indexing, new names (RFC 7541 6.2.2).
std::string fields(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    out += '\0';
    out += static_cast<char>(k.size());
    out += k;
    out += static_cast<char>(v.size());
    out += v;
  }
  return out;
}
const std::string kSettings = frame(4, 0, 0, "");

std::string outcomeOf(const std::string& server_bytes) {
  GrpcHealthCheck c("10.0.0.5:9000", "", 1);
  std::string preface = c.takeOutput();
  EXPECT_TRUE(preface.starts_with("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  c.receive(kSettings);
  EXPECT_TRUE(c.connected());
  EXPECT_FALSE(c.takeOutput().empty());  // the call (its headers are HPACK, maybe Huffman)
  c.receive(server_bytes);
  if (!c.outcome()) {
    c.closed();
  }
  return c.outcome() ? (c.outcome()->success ? "success" : c.outcome()->message) : "none";
}

TEST(GrpcHealthCheck, AnswersThatAreNotGrpcGetGrpcGosWords) {
  EXPECT_EQ(outcomeOf(frame(1, 5, 1, fields({{":status", "404"}, {"content-type", "text/plain"}}))),
            "error: this server does not implement the grpc health protocol "
            "(grpc.health.v1.Health): unexpected HTTP status code received from server: 404 "
            "(Not Found); transport: received unexpected content-type \"text/plain\"");
  EXPECT_EQ(outcomeOf(frame(1, 5, 1, fields({{":status", "503"}}))),
            "error: health rpc probe failed: rpc error: code = Unavailable desc = unexpected HTTP "
            "status code received from server: 503 (Service Unavailable); malformed header: "
            "missing HTTP content-type");
  std::string head =
      frame(1, 4, 1, fields({{":status", "200"}, {"content-type", "application/grpc"}}));
  std::string ok_trailer = frame(1, 5, 1, fields({{"grpc-status", "0"}}));
  EXPECT_EQ(outcomeOf(head + frame(0, 0, 1, std::string("\0\0\0\0\2\x08\x01", 7)) + ok_trailer),
            "success");
  EXPECT_EQ(outcomeOf(head + frame(0, 0, 1, std::string("\1\0\0\0\2\x08\x01", 7)) + ok_trailer),
            "error: health rpc probe failed: rpc error: code = Internal desc = grpc: compressed "
            "flag set with identity or empty encoding");
  EXPECT_EQ(outcomeOf(head + frame(0, 0, 1, std::string("\0\0\0\0\2\x08\xff", 7)) + ok_trailer),
            "error: health rpc probe failed: rpc error: code = Internal desc = grpc: failed to "
            "unmarshal the received message: proto: cannot parse invalid wire-format data");
  EXPECT_EQ(outcomeOf(head + frame(0, 1, 1, std::string("\0\0\0\0\2\x08\x01", 7))),
            "error: health rpc probe failed: rpc error: code = Internal desc = server closed the "
            "stream without sending trailers");
  EXPECT_EQ(outcomeOf(frame(1, 5, 1,
                            fields({{":status", "200"},
                                    {"content-type", "application/grpc"},
                                    {"grpc-status", "4"}}))),
            "timeout: health rpc did not complete within 1s");
  EXPECT_EQ(outcomeOf(frame(1, 5, 1,
                            fields({{":status", "200"},
                                    {"content-type", "application/grpc"},
                                    {"grpc-status", "14"},
                                    {"grpc-message", "draining%20now"}}))),
            "error: health rpc probe failed: rpc error: code = Unavailable desc = draining now");
  // A reset of the call, and the connection ending under it.
  EXPECT_EQ(outcomeOf(frame(3, 0, 1, std::string("\0\0\0\x08", 4))),
            "error: health rpc probe failed: rpc error: code = Canceled desc = stream terminated "
            "by RST_STREAM with error code: CANCEL");
  EXPECT_EQ(outcomeOf(""),
            "error: health rpc probe failed: rpc error: code = Unavailable desc = "
            "error reading from server: EOF");
}

TEST(GrpcHealthCheck, TheRequestNamesTheServiceAndTheDeadline) {
  GrpcHealthCheck c("10.0.0.5:9000", "my.Service", 3);
  c.takeOutput();
  c.receive(kSettings);
  std::string out = c.takeOutput();
  // The message: gRPC's 5-byte prefix, then field 1 (0x0a) of 10 bytes.
  EXPECT_NE(out.find(std::string("\0\0\0\0\x0c\x0a\x0amy.Service", 17)), std::string::npos);
  EXPECT_EQ(c.timeoutMessage(), "timeout: health rpc did not complete within 3s");
  GrpcHealthCheck never("10.0.0.5:9000", "", 2);
  // An HTTP/1 server's answer is no server preface: not READY, and its close
  // is no outcome either (the prober dials again until the deadline).
  never.receive("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
  never.closed();
  EXPECT_FALSE(never.connected());
  EXPECT_FALSE(never.outcome());
  EXPECT_EQ(never.timeoutMessage(),
            "timeout: failed to connect service \"10.0.0.5:9000\" within 2s: context deadline "
            "exceeded");
}

}  // namespace
}  // namespace kernelet::agent
