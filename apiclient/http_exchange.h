#pragma once
// One HTTP/1.1 request and its response on a connected stream (TCP or TLS),
// shared by the one-shot HttpClient and the API client's pooled connections.
// Internal to apiclient.

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <limits>

#include "apiclient/http_client.h"

namespace kernelet::apiclient::detail {

namespace beast = boost::beast;
namespace http = beast::http;

// Blocking reads and writes give up after `timeout` of silence: Beast's own
// timeouts only apply to asynchronous operations.
inline void setSocketTimeouts(int fd, std::chrono::seconds timeout) {
  timeval tv{.tv_sec = static_cast<time_t>(timeout.count()), .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// The request as Beast writes it, to `url` (whose target is the path).
inline http::request<http::string_body> buildRequest(const Url& url, const HttpRequest& req) {
  http::request<http::string_body> r{http::string_to_verb(req.method), url.target, 11};
  // The port belongs in Host unless it is the scheme's default (servers build
  // redirect Locations from it).
  bool default_port = url.port == (url.scheme == "https" ? "443" : "80");
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  r.set(http::field::host, default_port ? host : host + ":" + url.port);
  r.set(http::field::user_agent, "kernelet");
  for (const auto& [k, v] : req.headers) {
    r.set(k, v);
  }
  if (!req.body.empty() || req.method == "PUT" || req.method == "POST" || req.method == "PATCH") {
    r.body() = req.body;
    r.prepare_payload();
  }
  return r;
}

// The status line and headers of a response.
template <typename Parser>
HttpResponse responseHead(const Parser& parser) {
  HttpResponse resp;
  resp.status = static_cast<int>(parser.get().result_int());
  resp.keep_alive = parser.get().keep_alive();
  for (const auto& f : parser.get()) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    resp.headers[name] = std::string(f.value());
  }
  return resp;
}

template <typename Stream>
Result<HttpResponse> exchange(Stream& stream, const Url& url, const HttpRequest& req,
                              const BodySink& sink) {
  auto r = buildRequest(url, req);
  beast::error_code ec;
  http::write(stream, r, ec);
  if (ec) {
    return makeError("send " + req.method, url.str(), ec.message());
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // blobs are large
  http::read_header(stream, buffer, parser, ec);
  if (ec) {
    return makeError("read response to " + req.method, url.str(), ec.message());
  }
  HttpResponse resp = responseHead(parser);
  bool stream_body = sink && resp.status >= 200 && resp.status < 300;
  char chunk[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // read_some: a watch must see each event as it comes, not when 64 KiB filled up.
    http::read_some(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      return makeError("read body from", url.str(), ec.message());
    }
    size_t got = sizeof chunk - parser.get().body().size;
    if (got == 0) {
      continue;
    }
    if (stream_body) {
      TRY_VOID(sink(std::string_view(chunk, got)));
    } else {
      resp.body.append(chunk, got);
    }
  }
  return resp;
}

}  // namespace kernelet::apiclient::detail
