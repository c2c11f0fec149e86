#pragma once
// Internal to agent/server: what the listener and its sessions share, and
// one connection's session. Everything here lives on the server's thread.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <list>
#include <memory>
#include <optional>

#include "agent/server/server.h"

namespace kernelet::agent::server {

class Session;

// Closes or cancels (`op` returns the error_code) where failing changes
// nothing: a socket already closed, a wait not pending.
template <typename Op>
void quietly(Op op) {
  boost::system::error_code ec;
  if (op(ec)) {
    return;  // already closed or nothing pending: the state wanted anyway
  }
}

struct ServerState {
  ServerConfig config;
  Endpoints endpoints;
  std::unique_ptr<boost::asio::ssl::context> tls;
  std::unique_ptr<Authenticator> authn;
  std::unique_ptr<Authorizer> authz;
  std::weak_ptr<boost::asio::io_context> ioc;  // where answers from other threads are posted
  std::list<std::weak_ptr<Session>> sessions;  // live ones, to close at stop
  // Connections taken over by a stream endpoint, to close at stop.
  std::list<std::weak_ptr<streams::UpgradedConnection>> upgraded;
  std::atomic<size_t> connections{0};
};

// Starts serving `socket` (accepted): the handshake, then requests until the
// client or a timeout ends it.
void startSession(const std::shared_ptr<ServerState>& state, boost::asio::ip::tcp::socket socket);
// Closes every session (at stop, on the server thread).
void closeSessions(ServerState& state);

}  // namespace kernelet::agent::server
