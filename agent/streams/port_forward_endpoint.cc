#include "agent/streams/port_forward_endpoint.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>
#include <utility>

#include "agent/log/log.h"
#include "agent/streams/spdy_tunnel.h"

namespace kernelet::agent::streams {
namespace {

namespace http = boost::beast::http;

// apimachinery's wsstream.IsWebSocketRequest: Connection lists "upgrade"
// and Upgrade is "websocket", both case-insensitive.
// Go's regexp "(^|.*,\\s*)upgrade($|\\s*,)" on the lowered header, as a scan
// of its comma-separated items: libstdc++'s std::regex recurses per
// character, and a 40 KB header overflowed the server thread's stack.
bool isWebSocketRequest(const http::request<http::string_body>& req) {
  boost::beast::string_view connection = req[http::field::connection];
  auto space = [](char c) {  // RE2's \s
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
  };
  bool found = false;
  size_t start = 0;
  for (bool first = true; !found; first = false) {
    size_t comma = connection.find(',', start);
    bool last = comma == boost::beast::string_view::npos;
    boost::beast::string_view item =
        connection.substr(start, last ? connection.npos : comma - start);
    while (!first && !item.empty() && space(item.front())) {
      item.remove_prefix(1);  // ",\s*upgrade"
    }
    while (!last && !item.empty() && space(item.back())) {
      item.remove_suffix(1);  // "upgrade\s*,"
    }
    found = boost::beast::iequals(item, "upgrade");
    if (last) {
      break;
    }
    start = comma + 1;
  }
  return found && boost::beast::iequals(req[http::field::upgrade], "websocket");
}

// An HTTP error instead of the upgrade, then the connection closes (as
// upgrade.cc answers a request without upgrade headers).
void replyError(const std::shared_ptr<UpgradedConnection>& conn, http::status status,
                std::string message) {
  auto res = std::make_shared<http::response<http::string_body>>(status, 11);
  res->set(http::field::content_type, "text/plain; charset=utf-8");
  res->set(http::field::connection, "close");
  res->body() = std::move(message) + "\n";
  res->prepare_payload();
  http::async_write(conn->stream, *res, [conn, res](boost::beast::error_code, size_t) {
    boost::beast::error_code ec;
    if (conn->stream.next_layer().socket().close(ec)) {
      log::v(4, "Port-forward error reply: close failed", {{"err", ec.message()}});
    }
  });
}

// Go's strconv.ParseUint(s, 10, 16) error, as the kubelet prints it.
std::optional<std::string> parseUint16(const std::string& s, uint16_t& out) {
  bool digits = !s.empty();
  for (char c : s) {
    digits = digits && c >= '0' && c <= '9';
  }
  if (!digits) {
    return "strconv.ParseUint: parsing \"" + s + "\": invalid syntax";
  }
  uint64_t v = 0;
  for (char c : s) {
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > 65535) {
      return "strconv.ParseUint: parsing \"" + s + "\": value out of range";
    }
  }
  out = static_cast<uint16_t>(v);
  return std::nullopt;
}

}  // namespace

Result<std::vector<uint16_t>> parsePortQuery(const server::Query& query) {
  std::vector<std::string> values = query.all("port");
  if (values.empty()) {
    return makeError("port-forward", "", "query parameter \"port\" is required");
  }
  std::vector<uint16_t> ports;
  for (const std::string& value : values) {
    if (value.empty()) {
      return makeError("port-forward", "", "query parameter \"port\" cannot be empty");
    }
    size_t start = 0;
    for (;;) {
      size_t comma = value.find(',', start);
      std::string one = value.substr(start, comma == std::string::npos ? comma : comma - start);
      uint16_t port = 0;
      if (auto err = parseUint16(one, port)) {
        return makeError("port-forward", "",
                         "unable to parse \"" + value + "\" as a port: " + *err);
      }
      if (port < 1) {
        return makeError("port-forward", "", "port \"" + value + "\" must be > 0");
      }
      ports.push_back(port);
      if (ports.size() > kMaxForwardedPorts) {
        return makeError("port-forward", "",
                         "too many ports: at most " + std::to_string(kMaxForwardedPorts));
      }
      if (comma == std::string::npos) {
        break;
      }
      start = comma + 1;
    }
  }
  return ports;
}

UpgradeHandler portForwardHandler(PodExists pod_exists, PortDialer dialer,
                                  PortForwardOptions base) {
  return [pod_exists = std::move(pod_exists), dialer = std::move(dialer), base = std::move(base)](
             server::Request req, std::shared_ptr<UpgradedConnection> conn) {
    if (req.params.size() < 2) {
      return replyError(conn, http::status::bad_request,
                        "expected /portForward/NAMESPACE/POD[/UID]");
    }
    PodRef pod{req.params[0], req.params[1], req.params.size() > 2 ? req.params[2] : ""};
    // The kubelet's order: the ports of a WebSocket request, then the pod.
    const bool websocket = isWebSocketRequest(conn->request);
    // SPDY in WebSocket: ports come per stream, as over SPDY.
    const bool tunnel = websocket && isSpdyTunnelRequest(conn->request);
    std::vector<uint16_t> ports;
    if (websocket && !tunnel) {
      auto parsed = parsePortQuery(req.query);
      if (!parsed) {
        return replyError(conn, http::status::bad_request, parsed.error().detail);
      }
      ports = std::move(*parsed);
    }
    if (!pod_exists(PodRef{pod.namespace_, pod.name, ""})) {
      return replyError(conn, http::status::not_found, "pod does not exist");
    }
    if (!pod.uid.empty() && !pod_exists(pod)) {
      return replyError(conn, http::status::not_found, "pod not found");
    }
    Protocols protocols{.spdy = {"portforward.k8s.io"},
                        .websocket = {"v4.channel.k8s.io", "v4.base64.channel.k8s.io"},
                        .spdy_tunnel = true};
    PortForwardOptions options = base;
    options.pod = pod;
    options.channels = websocket && !tunnel;
    acceptUpgrade(
        std::move(conn), protocols,
        [ports](const std::string&) { return portForwardChannels(ports); },
        [options, dialer](std::expected<Negotiated, UpgradeError> r) {
          if (!r) {
            log::v(2, "Port-forward upgrade refused",
                   {{"pod", options.pod.namespace_ + "/" + options.pod.name},
                    {"status", std::to_string(r.error().status)},
                    {"err", r.error().message}});
            return;
          }
          // Which framing a client got (kubectl falls back to SPDY when
          // its WebSocket attempt is refused): once per connection.
          log::v(2, "Port-forward connection",
                 {{"pod", options.pod.namespace_ + "/" + options.pod.name},
                  {"protocol", r->protocol}});
          servePortForward(std::move(r->transport), options, dialer);
        });
  };
}

}  // namespace kernelet::agent::streams
