#pragma once
// The test API server (tests/apiserver/apiserver.py) on a loopback port with a
// CA, a server certificate for 127.0.0.1/localhost and a client certificate
// (CN=admin), generated once per test process and copied to each server's
// dir (so servers of one process share the CA); tokens "admin-token" (admin) and
// "reader-token" (read only). Its state survives restart().
//
// As the real API server it presents a kubelet client certificate (CN
// kube-apiserver-kubelet-client, O system:masters, signed by the test CA) to
// the kubelets it proxies pods/log and nodes/NAME/proxy to, and answers
// TokenReviews and SubjectAccessReviews (the latter by `Options::policy`).

#include <sys/types.h>

#include <string>
#include <vector>

#include "sys/result.h"

namespace kernelet::testing {

class ApiServer {
 public:
  struct Options {
    double bookmark_seconds = 60;
    std::string validate_agent;  // a user whose writes are checked against the schemas
    int token_ttl = 0;           // seconds every service-account token lives; 0: as asked
    // Users with a bearer token whose every request (and every
    // SubjectAccessReview about them) is authorized by `policy`.
    struct User {
      std::string token, name, uid;
      std::vector<std::string> groups;
    };
    std::vector<User> users;
    // Who may do what: a rule names a user or a group; an empty field other
    // than those matches anything ("*" too). The group system:masters may
    // do anything (as the kubelet client certificate's O says).
    struct Rule {
      std::string user, group, verb, resource, subresource, name, namespace_;
    };
    std::vector<Rule> policy;
  };
  static Result<ApiServer> start(const std::string& dir, Options options);
  ApiServer(ApiServer&& o) noexcept;
  ~ApiServer();

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::string caFile() const { return dir_ + "/ca.crt"; }
  std::string clientCert() const { return dir_ + "/client.crt"; }
  std::string clientKey() const { return dir_ + "/client.key"; }
  // What it presents to kubelets (verified with --client-ca-file caFile()).
  std::string kubeletClientCert() const { return dir_ + "/kubelet-client.crt"; }
  std::string kubeletClientKey() const { return dir_ + "/kubelet-client.key"; }
  // A kubeconfig for this server with the admin token.
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }

  // `kubectl ARGS` with this server's kubeconfig; stdout and stderr together.
  std::string kubectl(const std::string& args) const;
  void kill();             // SIGKILL, as a crash
  Result<void> restart();  // same port, same state
  // POST /__control/WHAT?QUERY (fail, stall, compact, close-watches) or GET
  // (violations, requests, tokens, watches, reviews); returns the body.
  Result<std::string> control(const std::string& what, const std::string& query = "",
                              bool post = true);

 private:
  ApiServer() = default;
  Result<void> launch();
  void writeAccessFiles() const;
  std::string dir_;
  Options options_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace kernelet::testing
