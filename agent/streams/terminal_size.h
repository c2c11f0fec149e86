#pragma once
// The resize stream of a remote command (protocol v3 and later, and every
// WebSocket exec): the client writes one JSON object per window change,
// {"Width":80,"Height":24}, one after another, as Go's json.Encoder does. The
// kubelet reads them with a json.Decoder and stops reading resizes at the
// first one it cannot decode; so does this decoder.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace kernelet::agent::streams {

// client-go's remotecommand.TerminalSize.
struct TerminalSize {
  uint16_t width = 0;
  uint16_t height = 0;
  bool operator==(const TerminalSize&) const = default;
};

class ResizeDecoder {
 public:
  // Bytes of a pending (incomplete) message kept at most: a window size is a
  // few dozen bytes, so anything longer is not one.
  static constexpr size_t kMaxPending = 4096;

  // The sizes completed by `bytes` (which may end inside a message). An error
  // names what was wrong; the decoder then stays failed and returns it again.
  Result<std::vector<TerminalSize>> feed(std::string_view bytes);
  bool failed() const { return failed_; }

 private:
  std::string pending_;
  bool failed_ = false;
  std::string error_;
};

}  // namespace kernelet::agent::streams
