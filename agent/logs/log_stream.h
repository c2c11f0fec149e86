#pragma once
// One container run's log, decoded (cri_lines.h) and produced in bounded
// pieces as a server::BodySource: the /containerLogs body and `kernelet logs`
// read through it. Memory stays constant whatever the file's size: a block
// of the file, the line that crosses its end, and at most `max` bytes of
// output at a time.
//
// Follow: after the end of the live N.log, read() answers kWait and waitFd()
// (an inotify fd on the log directory: writes, creates, renames) wakes the
// caller. A rotation renames N.log and starts a new one: the renamed file is
// read to its end, then any later rotated files, then the new N.log; every
// line once, in order. The stream ends when `running` says the container no
// longer runs and everything it wrote has been read. `running` is asked at
// each end of the file and at each poll (pollAfter(), 1 s), on the caller's
// thread; it must be quick.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/logs/cri_lines.h"
#include "agent/logs/log_files.h"
#include "agent/logs/log_options.h"
#include "agent/server/handler.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::logs {

class LogStream : public server::BodySource {
 public:
  using Running = std::function<bool()>;

  // The log of run `run` in `dir` (POD_LOG_DIR/NS_NAME_UID/CONTAINER) with
  // `options` (follow, timestamps, since, tailLines, limitBytes, stream;
  // `previous` is the caller's choice of `run`). Opens the files and finds
  // the tail's start now; follow sets up the watch now, so nothing written
  // after this returns is missed.
  static Result<std::unique_ptr<LogStream>> open(std::string dir, int run,
                                                 const LogOptions& options, Running running);

  Result<State> read(std::string& out, size_t max) override;
  int waitFd() const override { return inotify_.get(); }
  std::chrono::milliseconds pollAfter() const override { return std::chrono::milliseconds(1000); }

  // The size of the file block read at a time.
  static constexpr size_t kBlock = size_t{256} * 1024;
  // A "line" longer than this is not one a CRI writer wrote (they are at most
  // 16 KiB and a header): it is skipped to its end rather than held.
  static constexpr size_t kMaxLine = size_t{1024} * 1024;

 private:
  LogStream(std::string dir, int run, const LogOptions& options, Running running);

  // Decodes lines from the current file into pending_ until it holds `want`
  // bytes or the file's end. Returns false at the end of the file.
  Result<bool> fill(size_t want);
  // The current file ended: decides what comes next. kData: another file to
  // read; kWait: follow and nothing yet; kEnd: done.
  Result<State> atEnd();
  // The live file was renamed away: finish it, then the rotated files after
  // it, then the new live file.
  Result<bool> followRotation();
  Result<void> openNext();
  void decodeLine(std::string_view line);
  void drainInotify();

  std::string dir_;
  int run_;
  bool follow_;
  std::optional<int64_t> remaining_;  // limitBytes left
  Running running_;
  CriDecoder decoder_;
  UniqueFd inotify_;

  std::vector<LogFile> files_;           // what is left to read; files_[0] is being read
  std::optional<RotationKey> last_key_;  // the newest rotated file read (or being read)
  std::string buf_;                      // file bytes: [start_, end_) not decoded yet
  size_t start_ = 0, end_ = 0;
  bool skipping_ = false;    // inside an over-long line: drop to its '\n'
  std::string pending_;      // decoded, not handed out yet
  bool done_ = false;        // nothing more will be decoded
  bool final_pass_ = false;  // the container stopped: read to the end once more
};

}  // namespace kernelet::agent::logs
