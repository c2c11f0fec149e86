#pragma once
// SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00 with the 3.1 changes): the
// binary layout only, no state. Header blocks stay compressed here
// (header_block.h owns the zlib contexts, which are per connection).
//
// Every frame starts with 8 bytes: a control frame has the high bit set, the
// version (3) and a type; a DATA frame has the stream id instead. Then flags
// (8 bits) and the payload length (24 bits).
//
// The parser is incremental and bounded: a control frame is buffered whole
// up to `max_control_length` (a longer one is an error, so a peer cannot make
// us buffer 16 MiB), while a DATA payload is handed out as it arrives, in
// pieces, so its size costs nothing (the FIN flag rides on the last piece).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sys/result.h"

namespace kernelet::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr uint32_t kMaxLength = (1u << 24) - 1;  // the 24-bit length field
inline constexpr uint32_t kMaxStreamId = 0x7fffffff;
inline constexpr uint32_t kMaxWindow = 0x7fffffff;

enum class ControlType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM
inline constexpr uint8_t kFlagClearSettings = 0x01;   // SETTINGS

// RST_STREAM status codes.
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

enum class GoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

// SETTINGS ids that matter here.
inline constexpr uint32_t kSettingsMaxConcurrentStreams = 4;
inline constexpr uint32_t kSettingsInitialWindowSize = 7;

// A DATA frame, or a piece of one (see the parser).
struct DataFrame {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string data;
  bool operator==(const DataFrame&) const = default;
};
struct SynStream {
  uint32_t stream_id = 0;
  uint32_t associated_to = 0;
  uint8_t priority = 0;  // 3 bits
  uint8_t slot = 0;
  uint8_t flags = 0;
  std::string header_block;  // compressed
  bool operator==(const SynStream&) const = default;
};
struct SynReply {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string header_block;
  bool operator==(const SynReply&) const = default;
};
struct HeadersFrame {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  std::string header_block;
  bool operator==(const HeadersFrame&) const = default;
};
struct RstStream {
  uint32_t stream_id = 0;
  uint32_t status = 0;  // RstStatus, as sent (unknown codes are kept)
  bool operator==(const RstStream&) const = default;
};
struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits
  uint32_t value = 0;
  bool operator==(const Setting&) const = default;
};
struct Settings {
  uint8_t flags = 0;
  std::vector<Setting> entries;
  bool operator==(const Settings&) const = default;
};
struct Ping {
  uint32_t id = 0;
  bool operator==(const Ping&) const = default;
};
struct GoAway {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;
  bool operator==(const GoAway&) const = default;
};
struct WindowUpdate {
  uint32_t stream_id = 0;
  uint32_t delta = 0;
  bool operator==(const WindowUpdate&) const = default;
};
// A control frame of a type this draft does not define (or CREDENTIAL):
// the draft says to ignore it, so only its header is kept.
struct UnknownControl {
  uint16_t type = 0;
  uint8_t flags = 0;
  uint32_t length = 0;
  bool operator==(const UnknownControl&) const = default;
};

using Frame = std::variant<DataFrame, SynStream, SynReply, HeadersFrame, RstStream, Settings, Ping,
                           GoAway, WindowUpdate, UnknownControl>;

// The frame's name as the draft spells it ("SYN_STREAM", "DATA"), for errors and logs.
std::string_view frameName(const Frame& frame);

// Appends the frame's bytes to `out`. Lengths past 24 bits and ids past 31
// bits are the caller's bug (asserted), never input.
void serialize(const Frame& frame, std::string& out);
std::string serialize(const Frame& frame);

class FrameParser {
 public:
  // A control frame longer than this is a connection error (the largest
  // legitimate one here is a header block: kubectl's are under 200 bytes).
  explicit FrameParser(size_t max_control_length = 256 << 10)
      : max_control_length_(max_control_length) {}

  // Bytes as they came from the peer; then call next() until it has nothing.
  void feed(std::string_view bytes);
  // The next frame (for DATA: the next piece of its payload that arrived), or
  // nullopt when more bytes are needed. An error is a broken framing (the
  // connection cannot go on): it names the frame and what is wrong, and every
  // later call returns it again.
  Result<std::optional<Frame>> next();

  // Bytes fed but not yet returned as frames (bounded by max_control_length + 8).
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  Result<std::optional<Frame>> nextControl(uint16_t version, uint16_t type, uint8_t flags,
                                           uint32_t length);
  std::unexpected<Error> fail(std::string what);

  size_t max_control_length_;
  std::string buffer_;
  size_t pos_ = 0;
  // The DATA frame whose payload is being handed out.
  uint32_t data_stream_ = 0;
  uint8_t data_flags_ = 0;
  uint32_t data_left_ = 0;
  bool in_data_ = false;
  std::optional<Error> error_;
};

}  // namespace kernelet::spdy
