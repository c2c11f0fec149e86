// The node server's router (agent/server/router.h): a method and a raw
// request target, as a client sends them. Input: the method, then (after a
// "#--#" line) the target. A route that is accepted must not carry a path
// segment the router promises to refuse.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/server/router.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 2);
  auto r = kernelet::agent::server::route(parts[0], parts[1]);
  if (!r) {
    return 0;
  }
  const std::string& path = r->path;
  if (path.find("/../") != std::string::npos || path.find("/./") != std::string::npos ||
      path.find('\0') != std::string::npos || path.find("//") != std::string::npos ||
      path.ends_with("/..") || !kernelet::agent::server::isValidUtf8(path)) {
    std::abort();
  }
  for (const auto& p : r->params) {
    if (p.empty() || p == "." || p == ".." || p.find('/') != std::string::npos) {
      std::abort();
    }
  }
  if (r->access.verb.empty() || r->access.subresources.empty()) {
    std::abort();
  }
  return 0;
}
