// What the HTTP client (apiclient/http_client.h, Beast's response parser in
// http_exchange.h) makes of a server's answer: the input is sent as is, as
// the raw bytes of the response, by a server on the loopback of a network
// namespace of its own. Odd-sized inputs are read through a streaming sink (a
// watch, a blob), even-sized ones whole; a gzip body is then decoded as the
// API client does (apiclient/gzip.h).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "apiclient/gzip.h"
#include "apiclient/http_client.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/loopback_server.h"

namespace api = kernelet::apiclient;

static kernelet::fuzz::LoopbackServer* server;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kernelet::fuzz::confineToLoopback();
  server = new kernelet::fuzz::LoopbackServer;  // lives until exit
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(reinterpret_cast<const char*>(data), size);
  server->respondWith([&raw](const std::string&) { return raw; });
  api::HttpClient client({}, std::chrono::seconds(5));
  api::HttpRequest req{.url = "http://127.0.0.1:" + std::to_string(server->port()) +
                              "/api/v1/pods?watch=true"};
  std::string streamed;
  api::BodySink sink;
  if (size % 2 == 1) {
    sink = [&streamed](std::string_view piece) -> kernelet::Result<void> {
      streamed.append(piece);
      return {};
    };
  }
  auto resp = client.send(req, sink);
  if (resp && resp->header("content-encoding") == "gzip") {
    (void)api::gunzip(sink ? streamed : resp->body, "fuzz response");
  }
  server->respondWith({});
  return 0;
}
