#pragma once
// HTTP/1.1 keep-alive connections to one API server, reused across requests
// and threads: TLS 1.2+ with the server certificate and host name verified
// (tls-server-name honoured), the CA and an optional client certificate from
// PEM in memory, timeouts on connect, handshake and every read and write.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "apiclient/async_call.h"
#include "apiclient/http_client.h"
#include "sys/result.h"

namespace kernelet::apiclient {

struct PoolOptions {
  std::string server;  // https://host:port
  std::string ca_pem;  // empty: the system's roots
  bool insecure_skip_verify = false;
  std::string server_name;  // tls-server-name
  std::string client_cert_pem, client_key_pem;
  std::chrono::seconds timeout{30};  // connect, handshake, and each read/write
  size_t max_idle = 4;
};

class ConnectionPool {
 public:
  // Bad PEM is an error naming what was wrong.
  static Result<std::unique_ptr<ConnectionPool>> create(const PoolOptions& options);
  ~ConnectionPool();

  // `target` is the path and query. With `sink`, a 2xx body is streamed to it
  // (a watch); `stream_fd`, when given, holds the socket while the body streams
  // so another thread can shutdown(2) it to end the stream. A request that
  // fails on a reused idle connection before any answer is retried once on a
  // new one (the server may have closed it meanwhile).
  Result<HttpResponse> roundTrip(const HttpRequest& req, const BodySink& sink = {},
                                 std::atomic<int>* stream_fd = nullptr,
                                 std::chrono::seconds read_timeout = std::chrono::seconds(0));

  size_t dials() const { return dials_; }  // connections opened so far, for tests

  // The same server, TLS context and timeouts, for calls on the network thread.
  AsyncTarget asyncTarget();

 private:
  struct Conn;
  explicit ConnectionPool(PoolOptions o);
  Result<std::unique_ptr<Conn>> dial();
  std::unique_ptr<Conn> takeIdle();
  void putIdle(std::unique_ptr<Conn> c);

  PoolOptions options_;
  Url url_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  std::atomic<size_t> dials_{0};
};

}  // namespace kernelet::apiclient
