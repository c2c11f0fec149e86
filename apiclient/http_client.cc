#include "apiclient/http_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <cctype>
#include <limits>

#include "apiclient/http_exchange.h"

namespace kernelet::apiclient {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string Url::str() const {
  bool default_port = (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;  // IPv6
  return scheme + "://" + h + (default_port ? "" : ":" + port) + target;
}

Result<Url> parseUrl(const std::string& text) {
  Url u;
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string::npos) {
    return makeError("parse URL", text, "no scheme (https:// or http://)");
  }
  u.scheme = text.substr(0, scheme_end);
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(), ::tolower);
  if (u.scheme != "https" && u.scheme != "http") {
    return makeError("parse URL", text, "unsupported scheme " + u.scheme);
  }
  std::string rest = text.substr(scheme_end + 3);
  size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (u.target.starts_with("?")) {
    u.target = "/" + u.target;
  }
  if (authority.find('@') != std::string::npos) {
    return makeError("parse URL", text, "credentials in URLs are not supported");
  }
  if (authority.starts_with("[")) {  // [::1]:443
    size_t close = authority.find(']');
    if (close == std::string::npos) {
      return makeError("parse URL", text, "unterminated IPv6 address");
    }
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      u.port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      u.port = authority.substr(colon + 1);
    }
  }
  if (u.host.empty()) {
    return makeError("parse URL", text, "no host");
  }
  if (u.port.empty()) {
    u.port = u.scheme == "https" ? "443" : "80";
  }
  if (!std::all_of(u.port.begin(), u.port.end(), ::isdigit)) {
    return makeError("parse URL", text, "bad port");
  }
  return u;
}

Result<Url> resolveUrl(const Url& base, const std::string& location) {
  if (location.find("://") != std::string::npos) {
    return parseUrl(location);
  }
  Url u = base;
  if (location.starts_with("/")) {
    u.target = location;
  } else {
    u.target = base.target.substr(0, base.target.rfind('/') + 1) + location;
  }
  return u;
}

Result<HttpResponse> HttpClient::send(const HttpRequest& req, const BodySink& sink) const {
  TRY(Url url, parseUrl(req.url));
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      return makeError("resolve", url.host, ec.message());
    }
    if (url.scheme == "http") {
      beast::tcp_stream tcp(ioc);
      tcp.expires_after(timeout_);
      tcp.connect(endpoints, ec);
      if (ec) {
        return makeError("connect", url.str(), ec.message());
      }
      detail::setSocketTimeouts(tcp.socket().native_handle(), timeout_);
      auto r = detail::exchange(tcp, url, req, sink);
      tcp.socket().shutdown(tcp::socket::shutdown_both, ec);
      return r;
    }
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                    ssl::context::no_tlsv1_1);  // TLS 1.2 and newer
    if (tls_.insecure_skip_verify) {
      ctx.set_verify_mode(ssl::verify_none);
    } else {
      ctx.set_verify_mode(ssl::verify_peer);
      if (!tls_.ca_file.empty()) {
        ctx.load_verify_file(tls_.ca_file, ec);
        if (ec) {
          return makeError("load CA file", tls_.ca_file, ec.message());
        }
      } else {
        ctx.set_default_verify_paths();
      }
    }
    std::string name = tls_.server_name.empty() ? url.host : tls_.server_name;
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), name.c_str())) {
      return makeError("set TLS server name", name, "rejected by OpenSSL");
    }
    if (!tls_.insecure_skip_verify) {
      stream.set_verify_callback(ssl::host_name_verification(name));
    }
    beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
    tcp.expires_after(timeout_);
    tcp.connect(endpoints, ec);
    if (ec) {
      return makeError("connect", url.str(), ec.message());
    }
    tcp.expires_after(timeout_);
    stream.handshake(ssl::stream_base::client, ec);
    if (ec) {
      std::string why = ec.message();
      long verify = SSL_get_verify_result(stream.native_handle());
      if (verify != X509_V_OK) {
        why += ": " + std::string(X509_verify_cert_error_string(verify));
      }
      return makeError("TLS handshake with", url.str(), why);
    }
    detail::setSocketTimeouts(tcp.socket().native_handle(), timeout_);
    auto r = detail::exchange(stream, url, req, sink);
    stream.shutdown(ec);  // the server may just close: not an error worth reporting
    return r;
  } catch (const std::exception& e) {
    return makeError("request", url.str(), e.what());
  }
}

}  // namespace kernelet::apiclient
