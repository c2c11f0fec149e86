#pragma once
// SPDY/3 name/value header blocks: a count, then each name and value with a
// 32-bit length; a value holding several values separates them with NUL.
// Blocks travel zlib-compressed with the draft's fixed dictionary, and the
// zlib stream runs across the whole connection: one inflate context for what
// the peer sends, one deflate context for what we send (each block ends with
// a sync flush). So a block that fails to inflate breaks every later block:
// that is a connection error, while a block that inflates but is malformed
// (an empty or upper-case name, a name twice) is the stream's error only.
//
// Bounded: a block that inflates past `max_bytes` (256 KiB by default) stops
// there and is a connection error, so a "zip bomb" costs at most that much
// inflating.

#include <zlib.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sys/result.h"

namespace kernelet::spdy {

// Names in lower case, as SPDY/3 requires, in the order sent.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The SPDY/3 dictionary (1423 bytes), built from the draft's word list.
std::string_view headerDictionary();

// The uncompressed block (no validation: for tests and the fuzzer).
std::string encodeHeaderBlock(const HeaderList& headers);
// Parses an uncompressed block: an error names what is wrong (a stream error).
Result<HeaderList> decodeHeaderBlock(std::string_view block);

// The first value of `name` in `headers` (a NUL-joined value gives its first
// part), or "" if absent.
std::string_view headerValue(const HeaderList& headers, std::string_view name);

class HeaderDeflater {
 public:
  HeaderDeflater();
  ~HeaderDeflater();
  HeaderDeflater(const HeaderDeflater&) = delete;
  HeaderDeflater& operator=(const HeaderDeflater&) = delete;
  // The compressed block of `headers`, ending with a sync flush.
  Result<std::string> compress(const HeaderList& headers);

 private:
  z_stream z_{};
  bool ok_ = false;
};

class HeaderInflater {
 public:
  explicit HeaderInflater(size_t max_bytes = 256 << 10);
  ~HeaderInflater();
  HeaderInflater(const HeaderInflater&) = delete;
  HeaderInflater& operator=(const HeaderInflater&) = delete;
  // The uncompressed block. An error breaks the context (every later call
  // fails too): the connection must end.
  Result<std::string> inflate(std::string_view compressed);

 private:
  std::unexpected<Error> fail(std::string what);
  z_stream z_{};
  size_t max_bytes_;
  bool ok_ = false;
  std::string broken_;  // why the context is unusable
};

}  // namespace kernelet::spdy
