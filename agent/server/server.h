#pragma once
// The node's own HTTPS server (:10250), on its own thread with its own
// io_context: TLS (tls.h), HTTP/1.1 keep-alive sessions (session.cc), each
// request routed (router.h), authenticated (authn.h), authorized (authz.h),
// then answered by /healthz or one of the Endpoints. Streamed bodies go out
// chunked, pulled on this thread.
//
// Bounds, so hostile clients cost little: the TLS handshake and a request's
// headers must arrive within header_timeout (a client sending a byte a second
// is closed); an idle keep-alive connection is closed after idle_timeout; a
// header block over header_limit gets 431, a body over body_limit 413; past
// max_connections a new connection is closed at once.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "agent/server/authn.h"
#include "agent/server/authz.h"
#include "agent/server/endpoints.h"
#include "agent/server/tls.h"
#include "sys/result.h"

namespace boost::asio {
class io_context;
}

namespace kernelet::agent::server {

struct ServerConfig {
  std::string address = "0.0.0.0";
  int port = 10250;  // 0: any free port (tests), see NodeServer::port()
  TlsOptions tls;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{120000};
  std::chrono::milliseconds write_timeout{60000};  // one write (a chunk, a whole body)
  // An upgraded stream connection (exec, attach, port-forward) with no
  // traffic either way this long is closed (streamingConnectionIdleTimeout,
  // the kubelet's 4 h); 0: never.
  std::chrono::milliseconds stream_idle_timeout{std::chrono::hours(4)};
  size_t header_limit = 64 << 10;
  size_t body_limit = 64 << 10;
  size_t max_connections = 1024;
};

// Who checks credentials and access. The reviewers (if any) must outlive the server.
struct Security {
  AuthnOptions authn;
  AuthzOptions authz;
};

struct ServerState;

class NodeServer {
 public:
  // Loads TLS, binds and listens (an error names address:port), and starts
  // the thread. Logs "Serving" with the address and the bound port.
  static Result<std::unique_ptr<NodeServer>> start(ServerConfig config, Endpoints endpoints,
                                                   Security security);
  ~NodeServer();  // stop()
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;

  int port() const { return port_; }
  // Closes the listener and every connection and joins the thread. Idempotent.
  void stop();
  // Connections open now (any thread; for tests and metrics).
  size_t connections() const;

 private:
  NodeServer() = default;
  std::shared_ptr<boost::asio::io_context> ioc_;
  std::shared_ptr<ServerState> state_;
  std::thread thread_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace kernelet::agent::server
