#pragma once
// A small HTTP/1.1 client over Boost.Beast, with TLS through OpenSSL: server
// certificate and host name verified (a CA file or the system's), SNI, timeouts
// on every step, bodies read whole or streamed to a callback. One connection per
// request for now; the API client's connection pool builds on this.

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/result.h"

namespace kernelet::apiclient {

struct Url {
  std::string scheme;  // "https" or "http"
  std::string host;
  std::string port;
  std::string target;  // path and query, at least "/"
  std::string str() const;
};

// Errors name the URL.
Result<Url> parseUrl(const std::string& text);
// `location` from a redirect, made absolute against `base`.
Result<Url> resolveUrl(const Url& base, const std::string& location);

struct TlsOptions {
  std::string ca_file;                // PEM bundle; empty: the system's trust store
  bool insecure_skip_verify = false;  // only when asked
  std::string server_name;            // SNI and the name checked, if not the URL's host
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // empty when streamed
  bool keep_alive = false;                     // the connection may carry another request
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Receives a streamed body piece by piece; an error aborts the request.
using BodySink = std::function<Result<void>(std::string_view)>;

class HttpClient {
 public:
  explicit HttpClient(TlsOptions tls = {}, std::chrono::seconds timeout = std::chrono::seconds(30))
      : tls_(std::move(tls)), timeout_(timeout) {}

  // Sends one request. With `sink`, a 2xx body goes to it instead of the
  // response; other bodies are read whole (they are error documents).
  Result<HttpResponse> send(const HttpRequest& req, const BodySink& sink = {}) const;

 private:
  TlsOptions tls_;
  std::chrono::seconds timeout_;
};

}  // namespace kernelet::apiclient
