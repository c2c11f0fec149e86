#pragma once
// Decoding CRI log lines (isolation/cri_log.h writes them) into what the
// container printed, as the kubelet's ReadLogs does:
//   2016-10-06T00:17:09.669794202Z stdout P the first 16 KiB of a long line
//   2016-10-06T00:17:09.669794203Z stdout F the rest
// becomes the payload only, partial (P) pieces joined with what follows. With
// `timestamps`, a line is prefixed with its time in fixed-width RFC3339Nano;
// a joined line carries its first piece's time once. Lines of the stream not
// asked for, and lines older than `since`, are left out. A malformed line (no
// time, a bad time, a stream other than stdout/stderr, no tag) is skipped,
// never fatal: a log is outside input.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/logs/log_options.h"

namespace kernelet::agent::logs {

struct CriLine {
  std::string_view time;  // as written; parsed only when needed
  bool stderr_ = false;
  bool partial = false;
  std::string_view content;
};

// One line without its '\n'. nullopt: malformed (the time is not parsed here;
// CriDecoder parses it).
std::optional<CriLine> splitCriLine(std::string_view line);

class CriDecoder {
 public:
  explicit CriDecoder(const LogOptions& options);

  // Appends what one raw line (without its '\n') shows to `out`.
  void decode(std::string_view line, std::string& out);

 private:
  bool timestamps_;
  std::optional<int64_t> since_;
  StreamFilter stream_;
  // Per stream: the last piece shown was partial, so the next one continues
  // its line (no timestamp of its own). A stream's pieces are joined with
  // each other, not with the other stream's lines between them.
  bool continues_[2] = {false, false};
  std::string last_time_;  // the last line's time as written, and parsed
  std::optional<int64_t> last_nanos_;
};

// The whole of a CRI log's text decoded with no options: what `kubectl logs`
// shows of it.
std::string criLogMessages(std::string_view cri_log);

}  // namespace kernelet::agent::logs
