#include "agent/server/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "agent/log/log.h"
#include "agent/server/session.h"

namespace kernelet::agent::server {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Accepts until the acceptor closes; each connection is a session.
void acceptLoop(const std::shared_ptr<ServerState>& state,
                const std::shared_ptr<tcp::acceptor>& acceptor) {
  acceptor->async_accept([state, acceptor](boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) {
      return;
    }
    if (!ec) {
      // As Go's net/http, which the kubelet serves with: TCP_NODELAY on every
      // connection. Beast writes an answer's header and body as separate TLS
      // records, each its own send(); with Nagle on, a small last segment
      // may wait for the ACK of the one before, which a client delays by up
      // to 40 ms. Streams (exec, attach) send keystrokes and echoes the same way.
      boost::system::error_code nodelay_ec;
      if (socket.set_option(tcp::no_delay(true), nodelay_ec)) {
        // Slower, not wrong: the bytes still go, Nagle only batches them.
        log::v(4, "TCP_NODELAY on a connection failed", {{"err", nodelay_ec.message()}});
      }
      startSession(state, std::move(socket));
    } else {
      // EMFILE and the like: the listener keeps going; the client retries.
      log::v(2, "Accept failed", {{"err", ec.message()}});
    }
    acceptLoop(state, acceptor);
  });
}

}  // namespace

Result<std::unique_ptr<NodeServer>> NodeServer::start(ServerConfig config, Endpoints endpoints,
                                                      Security security) {
  std::unique_ptr<NodeServer> s(new NodeServer());
  s->ioc_ = std::make_shared<net::io_context>(1);
  auto state = std::make_shared<ServerState>();
  std::string where = config.address + ":" + std::to_string(config.port);
  TRY(state->tls, addContext(makeServerContext(config.tls), "node server " + where));
  state->config = std::move(config);
  state->endpoints = std::move(endpoints);
  state->ioc = s->ioc_;
  std::weak_ptr<net::io_context> weak = s->ioc_;
  Authenticator::Post post = [weak](std::function<void()> fn) {
    if (auto io = weak.lock()) {
      net::post(*io, std::move(fn));
    }
  };
  state->authn = std::make_unique<Authenticator>(security.authn, post);
  state->authz = std::make_unique<Authorizer>(security.authz, post);

  boost::system::error_code ec;
  auto addr = net::ip::make_address(state->config.address, ec);
  if (ec) {
    return makeError("listen", where, "not an IP address");
  }
  auto acceptor = std::make_shared<tcp::acceptor>(*s->ioc_);
  tcp::endpoint ep(addr, static_cast<unsigned short>(state->config.port));
  // Each step returns its error (true when set); the first one stops.
  if (acceptor->open(ep.protocol(), ec) ||
      acceptor->set_option(tcp::acceptor::reuse_address(true), ec) || acceptor->bind(ep, ec) ||
      acceptor->listen(net::socket_base::max_listen_connections, ec)) {
    return makeError("listen", where, ec.message());
  }
  s->port_ = acceptor->local_endpoint().port();
  s->state_ = state;
  acceptLoop(state, acceptor);
  std::string bound = state->config.address + ":" + std::to_string(s->port_);
  s->thread_ = std::thread([io = s->ioc_, acceptor, state] {
    io->run();
    // Stopped: the acceptor and every session close here, on this thread.
    quietly([&acceptor](auto& e) { return acceptor->close(e); });
    closeSessions(*state);
    // What the closing aborted runs now (operation_aborted), so a stream
    // endpoint sees its connection end and lets go of it, its process and
    // the io_context it holds; what it starts then is dropped with the context.
    io->restart();
    io->poll();
  });
  log::info("Serving", {{"address", bound}});
  return s;
}

NodeServer::~NodeServer() { stop(); }

void NodeServer::stop() {
  if (stopped_ || !ioc_) {
    return;
  }
  stopped_ = true;
  ioc_->stop();
  if (thread_.joinable()) {
    thread_.join();
  }
  // Pending handlers (and the sessions they hold) go with the context, while
  // the state they refer to is still here.
  ioc_.reset();
}

size_t NodeServer::connections() const { return state_ ? state_->connections.load() : 0; }

}  // namespace kernelet::agent::server
