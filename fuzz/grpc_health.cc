// A gRPC probe's client (agent/prober/grpc_health.h) against whatever a pod's
// port sends back: HTTP/2 frames (libnghttp2), the gRPC message framing and
// the HealthCheckResponse protobuf. The input is what the server sends, cut
// into reads at the bytes 0xfe 0xfe, as a socket may hand it over.

#include "agent/prober/grpc_health.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  kernelet::agent::GrpcHealthCheck check("10.0.0.5:9000", "svc", 1);
  (void)check.takeOutput();
  while (!check.outcome()) {
    size_t cut = in.find("\xfe\xfe");
    std::string_view piece = in.substr(0, cut);
    bool usable = check.receive(piece);
    (void)check.takeOutput();
    if (!usable || cut == std::string_view::npos) {
      break;
    }
    in.remove_prefix(cut + 2);
  }
  check.closed();
  // Every ending is an outcome with the kubelet's words, or a timeout still to come.
  if (check.outcome() && !check.outcome()->success && check.outcome()->message.empty()) {
    std::abort();
  }
  if (check.timeoutMessage().empty()) {
    std::abort();
  }
  return 0;
}
