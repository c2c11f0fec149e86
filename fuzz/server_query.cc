// Query strings of the node server (agent/server/query.h), decoded as Go's
// url.ParseQuery, and the typed accessors the endpoints use.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/server/query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(reinterpret_cast<const char*>(data), size);
  auto q = kernelet::agent::server::Query::parse(raw);
  if (!q) {
    return 0;
  }
  if (q->pairs().size() > kernelet::agent::server::Query::kMaxPairs) {
    std::abort();
  }
  for (const char* name : {"follow", "tailLines", "limitBytes", "sinceSeconds", "command"}) {
    (void)q->boolean(name);  // an error is an answer too
    auto n = q->integer(name, 0, INT64_MAX);
    if (n && n->has_value() && **n < 0) {
      std::abort();
    }
    (void)q->all(name);
  }
  return 0;
}
