#pragma once
// The test API server (tests/apiserver/apiserver.py) on a loopback port with a
// CA, a server certificate for 127.0.0.1/localhost and a client certificate
// (CN=admin) generated per test; tokens "admin-token" (admin) and
// "reader-token" (read only). Its state survives restart().

#include <sys/types.h>

#include <string>

#include "sys/result.h"

namespace kernelet::testing {

class ApiServer {
 public:
  struct Options {
    double bookmark_seconds = 60;
    std::string validate_agent;  // a user whose writes are checked against the schemas
    int token_ttl = 0;           // seconds every service-account token lives; 0: as asked
  };
  static Result<ApiServer> start(const std::string& dir, Options options);
  ApiServer(ApiServer&& o) noexcept;
  ~ApiServer();

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::string caFile() const { return dir_ + "/ca.crt"; }
  std::string clientCert() const { return dir_ + "/client.crt"; }
  std::string clientKey() const { return dir_ + "/client.key"; }
  // A kubeconfig for this server with the admin token.
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }

  // `kubectl ARGS` with this server's kubeconfig; stdout and stderr together.
  std::string kubectl(const std::string& args) const;
  void kill();             // SIGKILL, as a crash
  Result<void> restart();  // same port, same state
  // POST /__control/WHAT?QUERY (fail, stall, compact, close-watches) or GET
  // (violations, requests, tokens, watches); returns the body.
  Result<std::string> control(const std::string& what, const std::string& query = "",
                              bool post = true);

 private:
  ApiServer() = default;
  Result<void> launch();
  std::string dir_;
  Options options_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace kernelet::testing
