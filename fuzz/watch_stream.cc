// The body of a watch response (apiclient/watch_stream.h), fed in pieces of
// changing sizes as a network would deliver it; each event's object goes
// through decodeMeta as the reflector's does.

#include "apiclient/watch_stream.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "apiclient/objects.h"

namespace api = kernelet::apiclient;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  // The first byte picks the piece sizes; the rest is the stream.
  size_t step = data[0] % 61 + 1;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  api::WatchStream stream([](api::WatchEvent event) {
    if (event.type != api::WatchEvent::Type::kError) {
      (void)api::decodeMeta(event.object, "watch event");
    }
  });
  for (size_t at = 0, n = step; at < body.size(); at += n, n = n % 61 + step) {
    if (!stream.feed(body.substr(at, n))) {
      return 0;
    }
  }
  (void)stream.finish();
  return 0;
}
