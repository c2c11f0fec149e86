#pragma once
// Container stdout/stderr in the CRI log format the kubelet reads
// (/var/log/pods/.../N.log):
//   2016-10-06T00:17:09.669794202Z stdout F a whole line
//   2016-10-06T00:17:09.669794203Z stdout P the first 16 KiB of a longer line
// A line is split into P(artial) pieces of at most 16 KiB and ends with an
// F(ull) piece, as containerd writes it; output that ends without a newline is
// written as F when the stream closes.

#include <ctime>
#include <string>
#include <string_view>

#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::isolation {

enum class Stream { kStdout, kStderr };

// RFC 3339 with nanoseconds, UTC, trailing zeros of the fraction trimmed (Go's RFC3339Nano).
std::string rfc3339Nano(const timespec& t);

class CriLogWriter {
 public:
  static constexpr size_t kMaxLine = 16 * 1024;

  // Appends to `path` (created 0640 if missing).
  static Result<CriLogWriter> open(const std::string& path);
  // A writer into an fd we do not own the path of (tests, pipes).
  explicit CriLogWriter(UniqueFd fd, std::string path = {})
      : fd_(std::move(fd)), path_(std::move(path)) {}

  // Bytes as read from the container's stream.
  Result<void> feed(Stream s, std::string_view data);
  // The stream closed: what is pending becomes an F line.
  Result<void> close(Stream s);

  // Reads both pipes from `loop` until they close. The writer must outlive the
  // loop's use (or call finish()) and must not move after this.
  Result<void> pump(EventLoop& loop, UniqueFd stdout_pipe, UniqueFd stderr_pipe);
  // The container has exited: reads what is left in the pipes without blocking,
  // writes pending partial lines and takes the pipes off `loop`.
  void finish(EventLoop& loop);

  // Rotates by size as the kubelet's containerLogMaxSize/MaxFiles do: before a
  // line would take the file past `max_size`, it is renamed to PATH.YYYYMMDD-hhmmss
  // and a new one begun; at most `max_files` files (the live one included) are kept.
  void rotateAt(int64_t max_size, int max_files);

 private:
  Result<void> emit(Stream s, char tag, std::string_view content);
  Result<void> rotate();
  void readPipe(EventLoop& loop, int i, bool until_empty);
  std::string& pending(Stream s) { return s == Stream::kStdout ? out_ : err_; }

  UniqueFd fd_;
  std::string path_;
  std::string out_, err_;
  UniqueFd pipes_[2];
  int64_t size_ = 0, max_size_ = 0;
  int max_files_ = 0;
};

}  // namespace kernelet::isolation
