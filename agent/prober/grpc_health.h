#pragma once
// The gRPC health check a `grpc` probe makes, as the kubelet's prober
// (pkg/probe/grpc) makes it with grpc-go: one unary call of
// grpc.health.v1.Health/Check over HTTP/2 in cleartext (prior knowledge, no
// TLS), and the kubelet's words for every way it can end.
//
// This is the protocol without the socket: bytes to send come out of
// `takeOutput`, bytes read go into `receive`, so the prober drives it from
// its loop and the fuzz target drives it from a buffer. HTTP/2 framing and
// HPACK are libnghttp2's; the gRPC message framing and the protobuf of
// HealthCheckResponse are read here, bounded, through checked steps.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kernelet::agent {

class GrpcHealthCheck {
 public:
  // `authority` is HOST:PORT, as net.JoinHostPort gives it to grpc-go;
  // `timeout_seconds` is the probe's, named in the messages and sent as
  // grpc-timeout. Sends the client preface and SETTINGS (takeOutput).
  GrpcHealthCheck(std::string authority, std::string service, int timeout_seconds);
  ~GrpcHealthCheck();
  GrpcHealthCheck(const GrpcHealthCheck&) = delete;
  GrpcHealthCheck& operator=(const GrpcHealthCheck&) = delete;

  // Bytes to write to the connection, in order.
  std::string takeOutput();
  // Bytes read from the connection. The call is sent once the server's
  // SETTINGS arrived (grpc-go's connection is READY then). False when the
  // bytes broke the HTTP/2 connection: after READY that is the outcome,
  // before it the connection is of no use (grpc-go dials again).
  bool receive(std::string_view bytes);
  // The server closed the connection (EOF or a reset).
  void closed();

  // READY: the server spoke HTTP/2 (its SETTINGS came).
  bool connected() const { return connected_; }
  // The outcome once the call ended, successful or not: empty message on
  // success, else the kubelet's probe message.
  struct Outcome {
    bool success = false;
    std::string message;
  };
  const std::optional<Outcome>& outcome() const { return outcome_; }

  // The kubelet's messages when the probe's deadline passes first: before
  // READY ("timeout: failed to connect service ...") or during the call.
  std::string timeoutMessage() const;

 private:
  struct Session;
  friend struct Session;
  void sendCall();
  void endCall();
  void fail(const std::string& code, const std::string& desc);

  std::string authority_, service_;
  int timeout_seconds_;
  std::unique_ptr<Session> session_;
  bool connected_ = false, call_sent_ = false;
  std::optional<Outcome> outcome_;
};

}  // namespace kernelet::agent
