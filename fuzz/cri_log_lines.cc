// CRI log files as the node server's /containerLogs and `kernelet logs` read
// them (agent/logs): the first byte picks the options (timestamps, stream,
// since, tailLines, limitBytes, the size of the pieces asked for), the rest
// is the file. Malformed lines must be skipped, never crash; reading through
// LogStream in pieces must give exactly what decoding the whole text line by
// line gives (with tailLines, a suffix of it; with limitBytes, its start);
// a parsed time printed and parsed again is the same time.

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/logs/cri_lines.h"
#include "agent/logs/log_options.h"
#include "agent/logs/log_stream.h"
#include "agent/logs/log_time.h"
#include "fuzz_support.h"

namespace logs = kernelet::agent::logs;

namespace {
std::string scratch;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  uint8_t pick = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  // Any word of the input as a time: parse, print, parse back.
  for (size_t at = 0, sp = 0; at < text.size() && at < 512; at = sp + 1) {
    sp = text.find_first_of(" \n", at);
    sp = sp == std::string_view::npos ? text.size() : sp;
    auto t = logs::parseRfc3339(text.substr(at, sp - at));
    if (t && *t >= 0) {
      std::string printed;
      logs::appendTimestamp(printed, *t);
      if (logs::parseRfc3339(printed) != t) {
        __builtin_trap();
      }
    }
  }

  logs::LogOptions o;
  o.timestamps = (pick & 1) != 0;
  o.stream = (pick & 6) == 2   ? logs::StreamFilter::kStdout
             : (pick & 6) == 4 ? logs::StreamFilter::kStderr
                               : logs::StreamFilter::kAll;
  if ((pick & 8) != 0) {
    o.since_nanos = int64_t{1767225600} * 1000000000;  // 2026-01-01T00:00:00Z
  }
  // The whole text decoded line by line: what every read must agree with.
  logs::CriDecoder whole_decoder(o);
  std::string whole;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    whole_decoder.decode(rest.substr(0, nl), whole);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  }
  bool tail = o.stream == logs::StreamFilter::kAll && (pick & 16) != 0;
  if (tail) {
    o.tail_lines = pick >> 5;
  } else if ((pick & 16) != 0) {
    o.limit_bytes = 1 + (pick >> 5) * 7;
  }

  kernelet::fuzz::emptyDir(scratch);
  kernelet::fuzz::writeFileOrDie(scratch + "/0.log", text);
  auto stream = logs::LogStream::open(scratch, 0, o, [] { return false; });
  if (!stream) {
    __builtin_trap();
  }
  std::string got, piece;
  size_t max = 1 + (pick % 7) * 5;  // small: most reads split a line
  for (;;) {
    piece.clear();
    auto st = (*stream)->read(piece, max);
    if (!st || piece.size() > max) {
      __builtin_trap();
    }
    got += piece;
    if (*st == logs::LogStream::State::kEnd) {
      break;
    }
    if (*st == logs::LogStream::State::kWait) {
      __builtin_trap();  // not following: never waits
    }
  }
  if (o.limit_bytes) {
    whole.resize(std::min(whole.size(), static_cast<size_t>(*o.limit_bytes)));
  }
  // From the tail's start a P piece may have lost its first part (and, with
  // timestamps, the prefix moves to the piece after): compare only without them.
  if (tail) {
    if (!o.timestamps && text.find(" P ") == std::string_view::npos && !whole.ends_with(got)) {
      __builtin_trap();
    }
  } else if (got != whole) {
    __builtin_trap();  // reading in pieces shows something else than the text
  }
  return 0;
}
