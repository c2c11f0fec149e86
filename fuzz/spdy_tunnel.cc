// SPDY tunneled in WebSocket (agent/streams/spdy_tunnel.h), what a client
// controls of it. The input is two parts (fuzz_support.h's separator):
//   1. a Sec-WebSocket-Protocol header value: the tunnel's offers, filtered
//      and negotiated as the agent does;
//   2. the client's bytes after the 101: WebSocket frames (masked or not,
//      any opcode, any length), de-framed by Beast with the tunnel's own
//      settings (configureTunnel) and read as the agent's link reads them
//      (some bytes of the current message at a time, a text message ends
//      it), fed into a SPDY server session whose output is written back.
// Whatever comes, nothing may crash; the negotiated protocol is one we
// support; and the session must end with the same streams and unconsumed
// bytes as one fed the same bytes in one piece (message boundaries mean
// nothing in the tunnel).

#include "agent/streams/spdy_tunnel.h"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/streams/spdy_transport.h"
#include "agent/streams/websocket_transport.h"
#include "fuzz_support.h"
#include "spdy/session.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace kernelet::agent::streams;

const std::vector<std::string> kSupported = {"portforward.k8s.io"};

http::request<http::string_body> upgradeRequest(const std::string& protocols) {
  http::request<http::string_body> req{http::verb::get, "/portForward/default/web", 11};
  req.set(http::field::host, "node");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(http::field::sec_websocket_version, "13");
  req.set(http::field::sec_websocket_protocol, protocols);
  return req;
}

kernelet::spdy::SessionOptions sessionOptions() {
  return {.initial_window = 4096,
          .max_streams = 8,
          .max_header_bytes = 4096,
          .max_control_frame = 4096,
          .max_data_frame = 1024};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 2);
  // A header value holds no line breaks (the HTTP parser refuses them).
  if (parts[0].find_first_of("\r\n") != std::string::npos) {
    return 0;
  }
  auto req = upgradeRequest(parts[0]);
  auto offered = tunneledSpdyProtocols(webSocketOffers(req));
  for (const auto& o : offered) {
    if (!o.ends_with(".k8s.io")) {
      std::abort();
    }
  }
  if (!offered.empty() && !isSpdyTunnelRequest(req)) {
    std::abort();  // a request with tunnel protocols is a tunnel request
  }
  auto chosen = negotiateSpdy(offered, kSupported);
  if (chosen && *chosen != kSupported[0]) {
    std::abort();
  }

  boost::asio::io_context ioc;
  beast::test::stream server(ioc), client(ioc);
  server.connect(client);
  websocket::stream<beast::test::stream&> ws(server);
  configureTunnel(ws);
  beast::error_code ec;
  ws.accept(upgradeRequest("SPDY/3.1+portforward.k8s.io"), ec);
  if (ec) {
    std::abort();  // a well-formed upgrade is always accepted
  }
  server.append(parts[1]);
  client.close();  // the reads end with the input

  kernelet::spdy::Session session(sessionOptions());
  std::string fed;
  bool failed = false;
  char buf[512];
  while (!failed) {
    size_t n = ws.read_some(boost::asio::buffer(buf), ec);
    if (ec || ws.got_text()) {
      break;  // the link reports an error: the connection ends
    }
    fed.append(buf, n);
    failed = !session.receive(std::string_view(buf, n));
    (void)session.takeEvents();
    std::string out = session.takeOutput();
    ws.write(boost::asio::buffer(out), ec);  // one message, as the link writes
    if (session.unconsumed() > fed.size() || session.streamCount() > 8) {
      std::abort();
    }
  }
  kernelet::spdy::Session whole(sessionOptions());
  (void)whole.receive(fed);
  (void)whole.takeEvents();
  // Not the output: how many WINDOW_UPDATEs a session sends depends on how
  // the data came in pieces, as with any TCP read size.
  if (whole.streamCount() != session.streamCount() || whole.unconsumed() != session.unconsumed()) {
    std::abort();
  }
  return 0;
}
