#include "spdy/frames.h"

#include <cassert>

namespace kernelet::spdy {

namespace {

uint32_t get32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}
uint32_t get24(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 2])};
}
void put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void putControlHeader(std::string& out, ControlType type, uint8_t flags, size_t length) {
  assert(length <= kMaxLength);
  put32(out, 0x80000000u | (uint32_t{kVersion} << 16) | static_cast<uint16_t>(type));
  put32(out, (uint32_t{flags} << 24) | static_cast<uint32_t>(length));
}

const char* controlName(uint16_t type) {
  switch (static_cast<ControlType>(type)) {
    case ControlType::kSynStream:
      return "SYN_STREAM";
    case ControlType::kSynReply:
      return "SYN_REPLY";
    case ControlType::kRstStream:
      return "RST_STREAM";
    case ControlType::kSettings:
      return "SETTINGS";
    case ControlType::kPing:
      return "PING";
    case ControlType::kGoAway:
      return "GOAWAY";
    case ControlType::kHeaders:
      return "HEADERS";
    case ControlType::kWindowUpdate:
      return "WINDOW_UPDATE";
  }
  return "unknown control frame";
}

struct Serializer {
  std::string& out;
  void operator()(const DataFrame& f) {
    assert(f.stream_id <= kMaxStreamId && f.data.size() <= kMaxLength);
    put32(out, f.stream_id);
    put32(out, (uint32_t{f.flags} << 24) | static_cast<uint32_t>(f.data.size()));
    out += f.data;
  }
  void operator()(const SynStream& f) {
    putControlHeader(out, ControlType::kSynStream, f.flags, 10 + f.header_block.size());
    put32(out, f.stream_id & kMaxStreamId);
    put32(out, f.associated_to & kMaxStreamId);
    out.push_back(static_cast<char>((f.priority & 0x7) << 5));
    out.push_back(static_cast<char>(f.slot));
    out += f.header_block;
  }
  void operator()(const SynReply& f) {
    putControlHeader(out, ControlType::kSynReply, f.flags, 4 + f.header_block.size());
    put32(out, f.stream_id & kMaxStreamId);
    out += f.header_block;
  }
  void operator()(const HeadersFrame& f) {
    putControlHeader(out, ControlType::kHeaders, f.flags, 4 + f.header_block.size());
    put32(out, f.stream_id & kMaxStreamId);
    out += f.header_block;
  }
  void operator()(const RstStream& f) {
    putControlHeader(out, ControlType::kRstStream, 0, 8);
    put32(out, f.stream_id & kMaxStreamId);
    put32(out, f.status);
  }
  void operator()(const Settings& f) {
    putControlHeader(out, ControlType::kSettings, f.flags, 4 + 8 * f.entries.size());
    put32(out, static_cast<uint32_t>(f.entries.size()));
    for (const auto& e : f.entries) {
      put32(out, (uint32_t{e.flags} << 24) | (e.id & 0xffffff));
      put32(out, e.value);
    }
  }
  void operator()(const Ping& f) {
    putControlHeader(out, ControlType::kPing, 0, 4);
    put32(out, f.id);
  }
  void operator()(const GoAway& f) {
    putControlHeader(out, ControlType::kGoAway, 0, 8);
    put32(out, f.last_good_stream_id & kMaxStreamId);
    put32(out, f.status);
  }
  void operator()(const WindowUpdate& f) {
    putControlHeader(out, ControlType::kWindowUpdate, 0, 8);
    put32(out, f.stream_id & kMaxStreamId);
    put32(out, f.delta & kMaxWindow);
  }
  void operator()(const UnknownControl& f) {
    // Only for tests of the parser: a frame of this type with a zero payload.
    put32(out, 0x80000000u | (uint32_t{kVersion} << 16) | f.type);
    put32(out, uint32_t{f.flags} << 24);
  }
};

}  // namespace

std::string_view frameName(const Frame& frame) {
  struct Namer {
    std::string_view operator()(const DataFrame&) { return "DATA"; }
    std::string_view operator()(const SynStream&) { return "SYN_STREAM"; }
    std::string_view operator()(const SynReply&) { return "SYN_REPLY"; }
    std::string_view operator()(const HeadersFrame&) { return "HEADERS"; }
    std::string_view operator()(const RstStream&) { return "RST_STREAM"; }
    std::string_view operator()(const Settings&) { return "SETTINGS"; }
    std::string_view operator()(const Ping&) { return "PING"; }
    std::string_view operator()(const GoAway&) { return "GOAWAY"; }
    std::string_view operator()(const WindowUpdate&) { return "WINDOW_UPDATE"; }
    std::string_view operator()(const UnknownControl&) { return "unknown control frame"; }
  };
  return std::visit(Namer{}, frame);
}

void serialize(const Frame& frame, std::string& out) { std::visit(Serializer{out}, frame); }

std::string serialize(const Frame& frame) {
  std::string out;
  serialize(frame, out);
  return out;
}

void FrameParser::feed(std::string_view bytes) {
  // Drop what was returned already before growing, so the buffer holds at
  // most one frame's worth plus what arrived.
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  buffer_.append(bytes);
}

std::unexpected<Error> FrameParser::fail(std::string what) {
  error_ = Error{.op = "spdy frame", .detail = std::move(what)};
  return std::unexpected(*error_);
}

Result<std::optional<Frame>> FrameParser::next() {
  if (error_) {
    return std::unexpected(*error_);
  }
  std::string_view b(buffer_);
  if (in_data_) {
    size_t n = std::min<size_t>(b.size() - pos_, data_left_);
    if (n == 0 && data_left_ > 0) {
      return std::nullopt;
    }
    DataFrame piece{.stream_id = data_stream_, .data = std::string(b.substr(pos_, n))};
    pos_ += n;
    data_left_ -= static_cast<uint32_t>(n);
    if (data_left_ == 0) {
      in_data_ = false;
      piece.flags = data_flags_;
    }
    return Frame{std::move(piece)};
  }
  if (b.size() - pos_ < 8) {
    return std::nullopt;
  }
  uint32_t word0 = get32(b, pos_);
  uint8_t flags = static_cast<uint8_t>(b[pos_ + 4]);
  uint32_t length = get24(b, pos_ + 5);
  if ((word0 & 0x80000000u) == 0) {
    uint32_t id = word0;
    if (id == 0) {
      return fail("DATA frame on stream 0");
    }
    pos_ += 8;
    in_data_ = true;
    data_stream_ = id;
    data_flags_ = flags;
    data_left_ = length;
    return next();
  }
  auto version = static_cast<uint16_t>((word0 >> 16) & 0x7fff);
  auto type = static_cast<uint16_t>(word0 & 0xffff);
  return nextControl(version, type, flags, length);
}

Result<std::optional<Frame>> FrameParser::nextControl(uint16_t version, uint16_t type,
                                                      uint8_t flags, uint32_t length) {
  std::string name = controlName(type);
  if (version != kVersion) {
    return fail(name + " of SPDY version " + std::to_string(version) + " (only 3 is spoken)");
  }
  if (length > max_control_length_) {
    return fail(name + " of " + std::to_string(length) + " bytes (at most " +
                std::to_string(max_control_length_) + ")");
  }
  std::string_view b(buffer_);
  if (b.size() - pos_ < 8 + size_t{length}) {
    return std::nullopt;
  }
  std::string_view p = b.substr(pos_ + 8, length);
  // The payload's length first: fixed for some types, a minimum for others.
  std::optional<Error> bad;
  auto need = [&](uint32_t want, bool exact) {
    if (exact ? length != want : length < want) {
      bad = Error{.op = "spdy frame",
                  .detail = name + " of length " + std::to_string(length) +
                            (exact ? " (must be " : " (at least ") + std::to_string(want) + ")"};
    }
  };
  switch (static_cast<ControlType>(type)) {
    case ControlType::kSynStream:
      need(10, false);
      break;
    case ControlType::kSynReply:
    case ControlType::kHeaders:
    case ControlType::kSettings:
      need(4, false);
      break;
    case ControlType::kPing:
      need(4, true);
      break;
    case ControlType::kRstStream:
    case ControlType::kGoAway:
    case ControlType::kWindowUpdate:
      need(8, true);
      break;
  }
  if (!bad && static_cast<ControlType>(type) == ControlType::kSettings) {
    uint32_t count = get32(p, 0);
    if (size_t{count} * 8 != length - 4) {
      bad = Error{.op = "spdy frame",
                  .detail = "SETTINGS of length " + std::to_string(length) + " for " +
                            std::to_string(count) + " entries (must be 4 + 8 each)"};
    }
  }
  if (bad) {
    error_ = *bad;
    return std::unexpected(*bad);
  }
  Frame frame;
  switch (static_cast<ControlType>(type)) {
    case ControlType::kSynStream:
      frame = SynStream{.stream_id = get32(p, 0) & kMaxStreamId,
                        .associated_to = get32(p, 4) & kMaxStreamId,
                        .priority = static_cast<uint8_t>(static_cast<uint8_t>(p[8]) >> 5),
                        .slot = static_cast<uint8_t>(p[9]),
                        .flags = flags,
                        .header_block = std::string(p.substr(10))};
      break;
    case ControlType::kSynReply:
      frame = SynReply{.stream_id = get32(p, 0) & kMaxStreamId,
                       .flags = flags,
                       .header_block = std::string(p.substr(4))};
      break;
    case ControlType::kHeaders:
      frame = HeadersFrame{.stream_id = get32(p, 0) & kMaxStreamId,
                           .flags = flags,
                           .header_block = std::string(p.substr(4))};
      break;
    case ControlType::kRstStream:
      frame = RstStream{.stream_id = get32(p, 0) & kMaxStreamId, .status = get32(p, 4)};
      break;
    case ControlType::kSettings: {
      Settings s{.flags = flags};
      uint32_t count = get32(p, 0);
      s.entries.reserve(count);
      for (uint32_t i = 0; i < count; i++) {
        uint32_t w = get32(p, 4 + 8 * i);
        s.entries.push_back(Setting{.flags = static_cast<uint8_t>(w >> 24),
                                    .id = w & 0xffffff,
                                    .value = get32(p, 8 + 8 * i)});
      }
      frame = std::move(s);
      break;
    }
    case ControlType::kPing:
      frame = Ping{.id = get32(p, 0)};
      break;
    case ControlType::kGoAway:
      frame = GoAway{.last_good_stream_id = get32(p, 0) & kMaxStreamId, .status = get32(p, 4)};
      break;
    case ControlType::kWindowUpdate:
      frame =
          WindowUpdate{.stream_id = get32(p, 0) & kMaxStreamId, .delta = get32(p, 4) & kMaxWindow};
      break;
    default:
      frame = UnknownControl{.type = type, .flags = flags, .length = length};
      break;
  }
  pos_ += 8 + size_t{length};
  return std::optional<Frame>(std::move(frame));
}

}  // namespace kernelet::spdy
