#include "agent/streams/upgrade.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>

#include "agent/log/log.h"
#include "agent/streams/spdy_transport.h"
#include "agent/streams/spdy_tunnel.h"
#include "agent/streams/websocket_transport.h"

namespace kernelet::agent::streams {

namespace http = boost::beast::http;

void acceptUpgrade(std::shared_ptr<UpgradedConnection> conn, const Protocols& protocols,
                   PlanFor plan, AcceptDone done) {
  // TCP_NODELAY is on already: the server sets it on every connection it accepts.
  std::string upgrade(conn->request[http::field::upgrade]);
  if (boost::beast::iequals(upgrade, "SPDY/3.1")) {
    return acceptSpdy(std::move(conn), protocols.spdy, std::move(done));
  }
  if (boost::beast::iequals(upgrade, "websocket")) {
    if (protocols.spdy_tunnel && isSpdyTunnelRequest(conn->request)) {
      return acceptSpdyTunnel(conn, protocols.spdy, std::move(done));
    }
    return acceptWebSocket(std::move(conn), protocols.websocket, std::move(plan), std::move(done));
  }
  // Neither: the kubelet's answer to a plain request on a stream path.
  UpgradeError err{400, "unable to upgrade: missing upgrade headers in request"};
  auto res = std::make_shared<http::response<http::string_body>>(http::status::bad_request, 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->set(http::field::connection, "close");
  res->body() = err.message + "\n";
  res->prepare_payload();
  http::async_write(conn->stream, *res,
                    [conn, res, err, done = std::move(done)](boost::beast::error_code, size_t) {
                      boost::beast::error_code ec;
                      conn->stream.next_layer().socket().close(ec);  // done with it either way
                      done(std::unexpected(err));
                    });
}

void closeSocket(boost::beast::ssl_stream<boost::beast::tcp_stream>& stream) {
  boost::beast::error_code ec;
  boost::beast::get_lowest_layer(stream).socket().close(ec);
}

}  // namespace kernelet::agent::streams
