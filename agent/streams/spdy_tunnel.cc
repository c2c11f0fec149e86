// The WebSocket tunnel's handshake and its ByteLink: Beast's WebSocket
// stream over the upgraded TLS stream, each read some bytes of the current
// binary message, each write one binary message.
#include "agent/streams/spdy_tunnel.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/system/error_code.hpp>

#include "agent/log/log.h"
#include "agent/streams/websocket_transport.h"

namespace kernelet::agent::streams {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

using WsStream = websocket::stream<beast::ssl_stream<beast::tcp_stream>&>;

// What a text message is reported as: the SPDY bytes come in binary ones only.
const beast::error_code kTextMessage =
    boost::system::errc::make_error_code(boost::system::errc::protocol_error);

class WebSocketLink : public ByteLink {
 public:
  explicit WebSocketLink(std::shared_ptr<UpgradedConnection> conn)
      : conn_(std::move(conn)), ws_(conn_->stream) {
    configureTunnel(ws_);
  }

  WsStream& ws() { return ws_; }
  UpgradedConnection& conn() { return *conn_; }

  // Nothing: the tunnel is refused when the client sent bytes before our 101.
  std::string takeBuffered() override { return {}; }

  void readSome(net::mutable_buffer into, IoDone done) override {
    ws_.async_read_some(into, [this, done = std::move(done)](beast::error_code ec, size_t n) {
      if (!ec && ws_.got_text()) {
        ec = kTextMessage;  // client-go's own answer: "invalid message type received"
      }
      done(ec, n);  // holds the transport, and so this link
    });
  }

  void write(net::const_buffer bytes, IoDone done) override {
    ws_.async_write(bytes, std::move(done));
  }

  // A close frame (1000), then the client's answer; a pending read may stay:
  // Beast lets a close run beside it, and it ends with the close.
  void shutdown(std::function<void()> done) override {
    configureTunnel(ws_, std::chrono::seconds(2));  // the close handshake's bound
    ws_.async_close(websocket::close_code::normal,
                    [done = std::move(done)](beast::error_code) { done(); });
  }

  void close() override { closeSocket(conn_->stream); }

  std::string describe(beast::error_code ec) override {
    if (ec == websocket::error::closed || ec == net::error::eof ||
        ec == net::ssl::error::stream_truncated) {
      return "the client closed the connection";
    }
    if (ec == net::error::operation_aborted || ec == net::error::bad_descriptor) {
      return "closed by the server";  // our own close (the server stopping): no warning
    }
    std::string why = ec == kTextMessage ? "a text message in the SPDY tunnel (binary only)"
                                         : "websocket read: " + ec.message();
    // Beast has sent the matching close frame (1002 for a bad mask or
    // length) where it could; the connection ends here.
    log::warning("SPDY-in-WebSocket stream closed on a protocol error",
                 {{"path", std::string(conn_->request.target())}, {"error", why}});
    return why;
  }

 private:
  std::shared_ptr<UpgradedConnection> conn_;
  WsStream ws_;
};

}  // namespace

std::vector<std::string> tunneledSpdyProtocols(const std::vector<std::string>& offers) {
  std::vector<std::string> out;
  for (const std::string& o : offers) {
    if (o.starts_with(kSpdyTunnelPrefix) && o.ends_with(".k8s.io")) {
      out.push_back(o.substr(kSpdyTunnelPrefix.size()));
    }
  }
  return out;
}

bool isSpdyTunnelRequest(const http::request<http::string_body>& request) {
  for (const std::string& o : webSocketOffers(request)) {
    if (o.starts_with(kSpdyTunnelPrefix)) {
      return true;
    }
  }
  return false;
}

void acceptSpdyTunnel(const std::shared_ptr<UpgradedConnection>& conn,
                      const std::vector<std::string>& supported, AcceptDone done,
                      SpdyTransportOptions options) {
  std::vector<std::string> offered = tunneledSpdyProtocols(webSocketOffers(conn->request));
  if (offered.empty()) {
    return refuseSpdyUpgrade(conn, {400, "unable to upgrade: no tunneling spdy protocols provided"},
                             {}, std::move(done));
  }
  auto chosen = negotiateSpdy(offered, supported);
  if (!chosen) {
    return refuseSpdyUpgrade(conn, chosen.error(),
                             chosen.error().status == 403 ? supported : std::vector<std::string>{},
                             std::move(done));
  }
  // RFC 6455 4.1: no frame before our 101; Beast's accept(request) could not
  // be given such bytes, so they are refused rather than lost.
  if (conn->buffer.size() > 0) {
    return refuseSpdyUpgrade(
        conn,
        {400, "websocket: the client sent " + std::to_string(conn->buffer.size()) +
                  " bytes before the handshake's answer"},
        {}, std::move(done));
  }
  std::string protocol = std::string(kSpdyTunnelPrefix) + *chosen;
  auto link = std::make_unique<WebSocketLink>(conn);
  link->ws().set_option(
      websocket::stream_base::decorator([protocol](websocket::response_type& res) {
        res.set(http::field::server, "kernelet");
        res.set(http::field::sec_websocket_protocol, protocol);
      }));
  WebSocketLink& ref = *link;
  ref.ws().async_accept(conn->request, [conn, link = std::move(link), protocol, options,
                                        done = std::move(done)](beast::error_code ec) mutable {
    if (ec) {
      // Beast answered the broken handshake (400, or 426 for a bad version).
      log::warning("SPDY-in-WebSocket upgrade refused",
                   {{"path", std::string(conn->request.target())}, {"error", ec.message()}});
      closeSocket(conn->stream);
      return done(std::unexpected(
          UpgradeError{ec == websocket::error::bad_sec_version ? 426 : 400, ec.message()}));
    }
    done(Negotiated{.transport = makeSpdyTransport(conn, std::move(link), options),
                    .protocol = protocol});
  });
}

}  // namespace kernelet::agent::streams
