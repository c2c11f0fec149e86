// SPDY/3.1 frames (spdy/frames.h) and header blocks (spdy/header_block.h):
// the input is fed to the parser in pieces whose sizes its first byte picks;
// every frame parsed must serialize to bytes that parse back to the same
// frame, and every header block (inflated through one connection's context,
// as a peer's would be) must stay under the inflate limit.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spdy/frames.h"
#include "spdy/header_block.h"

namespace {

using namespace kernelet::spdy;

void checkRoundTrip(const Frame& f) {
  if (std::holds_alternative<UnknownControl>(f)) {
    return;  // only its header is kept
  }
  FrameParser again;
  again.feed(serialize(f));
  auto back = again.next();
  if (!back || !back->has_value() || !(back->value() == f)) {
    std::abort();
  }
}

const std::string* headerBlock(const Frame& f) {
  if (auto* s = std::get_if<SynStream>(&f)) {
    return &s->header_block;
  }
  if (auto* s = std::get_if<SynReply>(&f)) {
    return &s->header_block;
  }
  if (auto* s = std::get_if<HeadersFrame>(&f)) {
    return &s->header_block;
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const size_t step = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  constexpr size_t kLimit = 4096;
  FrameParser parser(kLimit);
  HeaderInflater inflater(kLimit);
  for (size_t at = 0; at < in.size(); at += step) {
    parser.feed(in.substr(at, step));
    if (parser.buffered() > kLimit + 8 + step) {
      std::abort();  // bounded: a control frame at most, plus what just came
    }
    for (;;) {
      auto f = parser.next();
      if (!f || !f->has_value()) {
        break;
      }
      const Frame& frame = f->value();
      if (auto* d = std::get_if<DataFrame>(&frame); d != nullptr && d->data.empty()) {
        // An empty piece only ever ends a frame (or is a zero-length frame).
      } else {
        checkRoundTrip(frame);
      }
      if (const std::string* block = headerBlock(frame)) {
        auto plain = inflater.inflate(*block);
        if (plain) {
          if (plain->size() > kLimit) {
            std::abort();
          }
          (void)decodeHeaderBlock(*plain);  // an error is an answer too
        }
      }
    }
  }
  return 0;
}
