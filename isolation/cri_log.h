#pragma once
// Container stdout/stderr in the CRI log format the kubelet reads
// (/var/log/pods/.../N.log):
//   2016-10-06T00:17:09.669794202Z stdout F a whole line
//   2016-10-06T00:17:09.669794203Z stdout P the first 16 KiB of a longer line
// A line is split into P(artial) pieces of at most 16 KiB and ends with an
// F(ull) piece, as containerd writes it; output that ends without a newline is
// written as F when the stream closes.
//
// The pump loses nothing when the agent dies: it looks at a pipe's bytes
// without taking them (tee(2) into a scratch pipe), writes the complete lines
// (and 16 KiB P pieces) to the log, and only then takes exactly those bytes
// out of the pipe. An unfinished line stays in the pipe, where the next pump
// (this agent's, or the next agent's, given the pipe by the holder) finds it.
// The lines of one look go out in one write(2), followed at once by the
// splice(2) that takes exactly their bytes: an agent killed between those two
// calls logs them twice (at least once, never lost).
//
// One case gives that up: a line longer than what one look shows, made of
// many tiny pipe buffers (a writer using O_DIRECT pipes or vmsplice fills the
// pipe's slots with a few bytes, then blocks). The pump then reads the line
// into memory, as a plain reader would, so the writer goes on; that line is
// lost if the agent dies before its newline.

#include <algorithm>
#include <ctime>
#include <functional>
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

  // Pumps both pipes from `loop` until they close. The writer must outlive the
  // loop's use (or call finish() or detach()) and must not move after this.
  Result<void> pump(EventLoop& loop, UniqueFd stdout_pipe, UniqueFd stderr_pipe);
  // Pumps a terminal's master: everything read from it is stdout. A terminal
  // cannot be tee'd, so its bytes are read (an unfinished line is kept here,
  // lost if the agent dies); EIO - no one has the terminal open now - is a
  // hangup the container may end by opening it again: only finish() ends the
  // pump. Reads only when poll(2) says it is readable: the master stays
  // blocking for whoever else holds it.
  Result<void> pumpTerminal(EventLoop& loop, UniqueFd master);
  // Sees each chunk of the container's output once, as the pump takes it in
  // (before its lines are complete, so a prompt shows at once), on the loop.
  using Tap = std::function<void(Stream, std::string_view)>;
  void setTap(Tap tap) { tap_ = std::move(tap); }

  // The container has exited: reads what is left in the pipes without blocking,
  // writes pending partial lines and takes the pipes off `loop`.
  void finish(EventLoop& loop);
  // The agent leaves the container running: stops pumping and takes the pipes
  // off `loop`, leaving every unread byte (an unfinished line included) in
  // them for the next agent.
  void detach(EventLoop& loop);

  // Rotates by size as the kubelet's containerLogMaxSize/MaxFiles do: before a
  // line would take the file past `max_size`, it is renamed to PATH.YYYYMMDD-hhmmss
  // and a new one begun; at most `max_files` files (the live one included) are kept.
  void rotateAt(int64_t max_size, int max_files);

 private:
  Result<void> emit(Stream s, char tag, std::string_view content);
  static void appendLine(std::string& batch, const std::string& stamp, Stream s, char tag,
                         std::string_view content);
  Result<void> writeBatch(const std::string& batch);
  bool rotationDue(size_t batch, size_t line) const;
  Result<void> rotate();
  // Writes the complete lines and 16 KiB pieces at the start of `data`;
  // `used` is how many bytes they took, even when a write failed.
  Result<void> emitLines(Stream s, std::string_view data, size_t& used);

  // What one pass over a pipe left: nothing (or it would block), an
  // unfinished line only, more than the budget, or a closed pipe.
  enum class Pass { kEmpty, kTail, kMore, kClosed };
  Pass pumpPipe(int i, size_t budget, bool final);
  Pass readPipe(int i, size_t budget);  // without a scratch pipe: read and keep the tail here
  Pass readTerminal(size_t budget, bool final);
  // `window` starts at the head of pipe i: the tap gets what it has not seen.
  void tapWindow(int i, std::string_view window);
  // `n` bytes were taken from the head of pipe i.
  void took(int i, size_t n) { tapped_[i] -= std::min(tapped_[i], n); }
  void onReadable(EventLoop& loop, int i);
  Result<void> watch(EventLoop& loop, int i);
  void closePipe(EventLoop& loop, int i);
  void awaitTail(EventLoop& loop);
  void onTailTimer(EventLoop& loop);
  std::string& pending(Stream s) { return s == Stream::kStdout ? out_ : err_; }

  UniqueFd fd_;
  std::string path_;
  std::string out_, err_;
  UniqueFd pipes_[2];
  // Bytes of the unfinished line left in each pipe (0: none). A write into a
  // pipe that is not empty wakes an edge-triggered reader only when the write
  // completes, never while it blocks on a full pipe; so while a line is left
  // in a pipe, a timer looks (FIONREAD) whether more came without a wakeup.
  size_t tail_[2] = {0, 0};
  int pipe_size_[2] = {0, 0};  // F_GETPIPE_SZ of each pipe
  // Bytes at the head of each pipe the tap has seen (a tee'd line waiting
  // for its newline is seen once, not at every look).
  size_t tapped_[2] = {0, 0};
  Tap tap_;
  bool terminal_ = false;  // pipes_[0] is a terminal's master
  UniqueFd tail_timer_;
  int tail_timer_ms_ = 0;
  int64_t size_ = 0, max_size_ = 0;
  int max_files_ = 0;
};

}  // namespace kernelet::isolation
