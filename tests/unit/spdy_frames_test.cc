// SPDY/3.1 frames and header blocks: byte layouts against hand-computed
// vectors, round trips of every frame type, incremental parsing, the
// dictionary against its zlib id, and the bounds (a zip bomb, a huge control
// frame) with the errors they give.
#include <gtest/gtest.h>
#include <zlib.h>

#include <random>

#include "spdy/frames.h"
#include "spdy/header_block.h"

namespace kernelet::spdy {
namespace {

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::vector<Frame> parseAll(FrameParser& p, std::string* error = nullptr) {
  std::vector<Frame> out;
  for (;;) {
    auto f = p.next();
    if (!f) {
      if (error != nullptr) {
        *error = f.error().message();
      }
      return out;
    }
    std::optional<Frame>& next = *f;
    if (!next.has_value()) {
      return out;
    }
    out.push_back(std::move(next.value()));
  }
}

TEST(SpdyFrames, KnownBytes) {
  // Control bit, version 3, type; flags and 24-bit length; payload.
  EXPECT_EQ(hex(serialize(Ping{.id = 1})),
            "8003000600000004"
            "00000001");
  EXPECT_EQ(hex(serialize(RstStream{.stream_id = 3, .status = 5})),
            "8003000300000008"
            "00000003"
            "00000005");
  EXPECT_EQ(hex(serialize(WindowUpdate{.stream_id = 0, .delta = 0x8000})),
            "8003000900000008"
            "00000000"
            "00008000");
  EXPECT_EQ(hex(serialize(GoAway{.last_good_stream_id = 7, .status = 1})),
            "8003000700000008"
            "00000007"
            "00000001");
  EXPECT_EQ(hex(serialize(DataFrame{.stream_id = 5, .flags = kFlagFin, .data = "hi"})),
            "00000005"
            "01000002"
            "6869");
  EXPECT_EQ(
      hex(serialize(SynStream{.stream_id = 1, .priority = 7, .flags = 0, .header_block = "x"})),
      "800300010000000b"
      "00000001"
      "00000000"
      "e000"
      "78");
  EXPECT_EQ(hex(serialize(Settings{.entries = {{.flags = 0, .id = 7, .value = 65536}}})),
            "800300040000000c"
            "00000001"
            "00000007"
            "00010000");
}

TEST(SpdyFrames, EveryTypeRoundTripsFedOneByteAtATime) {
  std::vector<Frame> frames = {
      SynStream{.stream_id = 1,
                .associated_to = 0,
                .priority = 3,
                .slot = 0,
                .flags = kFlagFin,
                .header_block = std::string("\x78\x3f\x01\x02", 4)},
      SynReply{.stream_id = 1, .flags = 0, .header_block = "abc"},
      HeadersFrame{.stream_id = 3, .flags = kFlagFin, .header_block = ""},
      RstStream{.stream_id = 9, .status = 3},
      Settings{.flags = kFlagClearSettings, .entries = {{1, 4, 100}, {0, 7, 1 << 20}}},
      Ping{.id = 0xfffffffe},
      GoAway{.last_good_stream_id = 0x7fffffff, .status = 2},
      WindowUpdate{.stream_id = 11, .delta = 0x7fffffff},
      DataFrame{.stream_id = 13, .flags = kFlagFin, .data = std::string(1000, 'z')},
      DataFrame{.stream_id = 15, .flags = kFlagFin, .data = ""},
  };
  std::string wire;
  for (const auto& f : frames) {
    serialize(f, wire);
  }
  FrameParser p;
  std::vector<Frame> got;
  for (char c : wire) {
    p.feed(std::string_view(&c, 1));
    for (auto& f : parseAll(p)) {
      got.push_back(std::move(f));
    }
  }
  // DATA arrives in pieces as its bytes do: join them back, flags on the last.
  std::vector<Frame> joined;
  for (auto& f : got) {
    auto* d = std::get_if<DataFrame>(&f);
    auto* last = joined.empty() ? nullptr : std::get_if<DataFrame>(&joined.back());
    if (d != nullptr && last != nullptr && last->stream_id == d->stream_id && last->flags == 0) {
      last->data += d->data;
      last->flags = d->flags;
      continue;
    }
    joined.push_back(std::move(f));
  }
  ASSERT_EQ(joined.size(), frames.size());
  for (size_t i = 0; i < frames.size(); i++) {
    EXPECT_EQ(joined[i], frames[i]) << "frame " << i << " " << frameName(frames[i]);
  }
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(SpdyFrames, DataPayloadIsNotBufferedWhole) {
  FrameParser p(1024);
  DataFrame big{.stream_id = 1, .data = std::string(1 << 20, 'a')};
  std::string wire = serialize(big);
  size_t pieces = 0, total = 0, most_buffered = 0;
  for (size_t at = 0; at < wire.size(); at += 4096) {
    p.feed(std::string_view(wire).substr(at, 4096));
    most_buffered = std::max(most_buffered, p.buffered());
    for (auto& f : parseAll(p)) {
      total += std::get<DataFrame>(f).data.size();
      pieces++;
    }
  }
  EXPECT_EQ(total, big.data.size());
  EXPECT_GT(pieces, 200u);
  EXPECT_LE(most_buffered, 4096u);
}

TEST(SpdyFrames, MalformedFramesGiveClearErrors) {
  struct Case {
    std::string bytes;
    std::string error;
  };
  std::vector<Case> cases = {
      {std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12),
       "PING of SPDY version 2 (only 3 is spoken)"},
      {std::string("\x80\x03\x00\x03\x00\x00\x00\x04\x00\x00\x00\x01", 12),
       "RST_STREAM of length 4 (must be 8)"},
      {std::string("\x80\x03\x00\x06\x00\x00\x00\x05\x00\x00\x00\x01\x00", 13),
       "PING of length 5 (must be 4)"},
      {std::string(
           "\x80\x03\x00\x04\x00\x00\x00\x0c\x00\x00\x00\x02\x00\x00\x00\x07\x00\x01\x00\x00", 20),
       "SETTINGS of length 12 for 2 entries (must be 4 + 8 each)"},
      {std::string("\x80\x03\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01", 12),
       "SYN_STREAM of length 4 (at least 10)"},
      {std::string("\x80\x03\x00\x01\x00\x01\x00\x00", 8),
       "SYN_STREAM of 65536 bytes (at most 4096)"},
      {std::string("\x00\x00\x00\x00\x00\x00\x00\x00", 8), "DATA frame on stream 0"},
  };
  for (const auto& c : cases) {
    FrameParser p(4096);
    p.feed(c.bytes);
    std::string error;
    auto frames = parseAll(p, &error);
    EXPECT_TRUE(frames.empty()) << hex(c.bytes);
    EXPECT_EQ(error, "spdy frame: " + c.error) << hex(c.bytes);
    // Broken stays broken.
    p.feed(serialize(Ping{.id = 1}));
    EXPECT_FALSE(p.next().has_value());
  }
  // An unknown control type is skipped, as the draft says.
  FrameParser p;
  p.feed(std::string("\x80\x03\x00\x0a\x00\x00\x00\x02zz", 10) + serialize(Ping{.id = 3}));
  auto frames = parseAll(p);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<UnknownControl>(frames[0]));
  EXPECT_EQ(std::get<Ping>(frames[1]).id, 3u);
}

TEST(SpdyHeaderBlock, DictionaryIsTheDrafts) {
  auto d = headerDictionary();
  EXPECT_EQ(d.size(), 1423u);
  // The id every SPDY/3 peer's zlib header names (0x78 0x3f e3 c6 a7 c2).
  uLong id = adler32(0L, Z_NULL, 0);
  id = adler32(id, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size()));
  EXPECT_EQ(id, 0xe3c6a7c2u);
}

TEST(SpdyHeaderBlock, InflatesAHandMadeBlock) {
  // A peer's first block, made by hand: zlib header with FDICT and the SPDY
  // dictionary's id, one stored deflate block (not final) holding the
  // uncompressed block, as any deflater may emit it.
  std::string plain = encodeHeaderBlock({{"streamtype", "error"}});
  ASSERT_EQ(plain.size(), 27u);
  std::string compressed("\x78\x3f\xe3\xc6\xa7\xc2", 6);
  compressed += std::string("\x00\x1b\x00\xe4\xff", 5) + plain;
  HeaderInflater in;
  auto block = in.inflate(compressed);
  ASSERT_TRUE(block) << block.error().message();
  auto headers = decodeHeaderBlock(*block);
  ASSERT_TRUE(headers) << headers.error().message();
  EXPECT_EQ(*headers, (HeaderList{{"streamtype", "error"}}));
  EXPECT_EQ(headerValue(*headers, "streamtype"), "error");
}

TEST(SpdyHeaderBlock, ContextRunsAcrossBlocks) {
  HeaderDeflater out;
  HeaderInflater in;
  std::vector<HeaderList> blocks = {
      {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}},
      {{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}},
      {},
      {{"multi", std::string("a\0b", 3)}},
  };
  size_t first = 0;
  for (size_t i = 0; i < blocks.size(); i++) {
    auto c = out.compress(blocks[i]);
    ASSERT_TRUE(c) << c.error().message();
    if (i == 0) {
      first = c->size();
      EXPECT_EQ(static_cast<uint8_t>((*c)[1]) & 0x20, 0x20) << "FDICT: the dictionary is used";
    }
    if (i == 1) {
      EXPECT_LT(c->size(), first) << "the second block reuses the first's words";
    }
    auto plain = in.inflate(*c);
    ASSERT_TRUE(plain) << plain.error().message();
    auto h = decodeHeaderBlock(*plain);
    ASSERT_TRUE(h) << h.error().message();
    EXPECT_EQ(*h, blocks[i]);
  }
  EXPECT_EQ(headerValue(blocks[3], "multi"), "a");
}

TEST(SpdyHeaderBlock, AZipBombStopsAtTheLimit) {
  // 16 MiB of one header value compresses to ~16 KiB; inflating stops at 256 KiB.
  std::string plain = encodeHeaderBlock({{"x", std::string(16 << 20, 'a')}});
  z_stream z{};
  ASSERT_EQ(deflateInit(&z, 9), Z_OK);
  auto d = headerDictionary();
  ASSERT_EQ(deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(d.data()),
                                 static_cast<uInt>(d.size())),
            Z_OK);
  std::string bomb(deflateBound(&z, plain.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(plain.data());
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(bomb.data());
  z.avail_out = static_cast<uInt>(bomb.size());
  ASSERT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  bomb.resize(bomb.size() - z.avail_out);
  deflateEnd(&z);
  ASSERT_LT(bomb.size(), 256u << 10);
  HeaderInflater in;
  auto r = in.inflate(bomb);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "spdy header block: inflates past 262144 bytes");
  // The context is gone with it: later blocks fail too.
  HeaderDeflater out;
  auto next = out.compress({{"a", "b"}});
  ASSERT_TRUE(next);
  EXPECT_FALSE(in.inflate(*next));
}

TEST(SpdyHeaderBlock, GarbageAndMalformedBlocks) {
  HeaderInflater in;
  auto r = in.inflate("not zlib at all");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("not a zlib stream"), std::string::npos)
      << r.error().message();

  auto bad = [](const HeaderList& h) {
    auto r = decodeHeaderBlock(encodeHeaderBlock(h));
    return r ? std::string("ok") : r.error().detail;
  };
  EXPECT_EQ(bad({{"Upper", "x"}}), "header name not in lower case: Upper");
  EXPECT_EQ(bad({{"", "x"}}), "empty header name in pair 0");
  EXPECT_EQ(bad({{"a", "1"}, {"a", "2"}}), "header name twice: a");
  EXPECT_EQ(bad({{"a", ""}}), "ok");
  std::string lying = encodeHeaderBlock({{"a", "b"}});
  lying[3] = 9;  // nine pairs in 14 bytes
  EXPECT_EQ(decodeHeaderBlock(lying).error().detail, "count 9 past what its 14 bytes can hold");
  lying = encodeHeaderBlock({{"a", "b"}});
  lying[12] = 50;  // the value's length past the end
  EXPECT_EQ(decodeHeaderBlock(lying).error().detail, "pair 0 runs past the block's end");
  EXPECT_EQ(decodeHeaderBlock(encodeHeaderBlock({{"a", "b"}}) + "x").error().detail,
            "1 bytes after the last pair");
}

}  // namespace
}  // namespace kernelet::spdy
