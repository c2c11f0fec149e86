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
  // As the kubelet: Go sets TCP_NODELAY on every connection. A stream's
  // bytes go out as TLS records of at most 16 KiB, each its own send(), and
  // Nagle may hold a small one back for an ACK (bench/run-streams' TLS floor
  // shows no measurable cost for a bulk copy under the VM; interactive
  // streams, a terminal's keystrokes and echoes, are what it would delay).
  boost::beast::error_code nodelay_ec;
  if (conn->stream.next_layer().socket().set_option(boost::asio::ip::tcp::no_delay(true),
                                                    nodelay_ec)) {
    // Slower, not wrong: the bytes still go, Nagle only batches them.
    log::v(4, "TCP_NODELAY on a stream connection failed", {{"err", nodelay_ec.message()}});
  }
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

}  // namespace kernelet::agent::streams
