#pragma once
// The client side of SPDY/3.1 for tests, from the spdy/ codec: makes the
// frames spdystream would send (SYN_STREAM with its headers compressed in the
// client's own zlib context, DATA, PING, WINDOW_UPDATE...) and reads what the
// server answered, header blocks inflated.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "spdy/frames.h"
#include "spdy/header_block.h"

namespace kernelet::testing {

class SpdyClient {
 public:
  std::string synStream(uint32_t id, const spdy::HeaderList& headers, uint8_t flags = 0) {
    auto block = deflater_.compress(headers);
    return spdy::serialize(
        spdy::SynStream{.stream_id = id, .flags = flags, .header_block = block ? *block : ""});
  }
  // The streams of `kubectl exec`/port-forward: streamType (and port, requestID).
  std::string open(uint32_t id, const std::string& type, uint8_t flags = 0) {
    return synStream(id, {{"streamtype", type}}, flags);
  }
  // Several streams, compressed in this order (`open(1) + open(3)` would
  // leave the order to the compiler, and the zlib context cares).
  std::string opens(const std::vector<std::pair<uint32_t, std::string>>& streams) {
    std::string out;
    for (const auto& [id, type] : streams) {
      out += open(id, type);
    }
    return out;
  }
  static std::string data(uint32_t id, std::string_view bytes, bool fin = false) {
    return spdy::serialize(spdy::DataFrame{
        .stream_id = id, .flags = fin ? spdy::kFlagFin : uint8_t{0}, .data = std::string(bytes)});
  }
  static std::string frame(const spdy::Frame& f) { return spdy::serialize(f); }

  // What the server sent: frames (a DATA frame may come in pieces, the
  // flags on the last), the header blocks of SYN_REPLY inflated into
  // `replies`, and each stream's bytes and FIN gathered in `received`/`fins`.
  std::vector<spdy::Frame> read(std::string_view bytes) {
    parser_.feed(bytes);
    std::vector<spdy::Frame> out;
    for (;;) {
      auto f = parser_.next();
      if (!f || !*f) {
        if (!f) {
          error = f.error().detail;
        }
        return out;
      }
      if (auto* d = std::get_if<spdy::DataFrame>(&**f)) {
        received[d->stream_id] += d->data;
        if ((d->flags & spdy::kFlagFin) != 0) {
          fins[d->stream_id] = true;
        }
      }
      if (auto* r = std::get_if<spdy::SynReply>(&**f)) {
        auto block = inflater_.inflate(r->header_block);
        if (block) {
          auto headers = spdy::decodeHeaderBlock(*block);
          replies.push_back(headers ? *headers : spdy::HeaderList{});
        } else {
          error = block.error().detail;
        }
      }
      out.push_back(std::move(**f));
    }
  }

  std::vector<spdy::HeaderList> replies;
  std::map<uint32_t, std::string> received;
  std::map<uint32_t, bool> fins;
  std::string error;

 private:
  spdy::HeaderDeflater deflater_;
  spdy::HeaderInflater inflater_;
  spdy::FrameParser parser_;
};

}  // namespace kernelet::testing
