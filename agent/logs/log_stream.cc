#include "agent/logs/log_stream.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kernelet::agent::logs {

using State = server::BodySource::State;

LogStream::LogStream(std::string dir, int run, const LogOptions& options, Running running)
    : dir_(std::move(dir)),
      run_(run),
      follow_(options.follow),
      remaining_(options.limit_bytes),
      running_(std::move(running)),
      decoder_(options) {}

Result<std::unique_ptr<LogStream>> LogStream::open(std::string dir, int run,
                                                   const LogOptions& options, Running running) {
  std::unique_ptr<LogStream> s(new LogStream(std::move(dir), run, options, std::move(running)));
  if (s->follow_) {
    // Before the files are opened: a write or rotation after the open is
    // then seen by the watch or by the read, never by neither.
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      return sysError("inotify_init1", s->dir_);
    }
    s->inotify_.reset(fd);
    if (::inotify_add_watch(fd, s->dir_.c_str(),
                            IN_MODIFY | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO) < 0) {
      return sysError("watch log directory", s->dir_);
    }
  }
  TRY(s->files_, openRunLogFiles(s->dir_, run));
  if (options.tail_lines && !s->files_.empty()) {
    TRY(LogPosition at, tailStart(s->files_, *options.tail_lines));
    s->files_.erase(s->files_.begin(), s->files_.begin() + static_cast<ptrdiff_t>(at.file));
    if (::lseek(s->files_[0].fd.get(), at.offset, SEEK_SET) < 0) {
      return sysError("seek log", s->files_[0].path);
    }
  }
  s->buf_.resize(kBlock);
  return s;
}

void LogStream::drainInotify() {
  // The events only say "look again": read() looks at the files themselves.
  alignas(inotify_event) char events[4096];
  while (::read(inotify_.get(), events, sizeof events) > 0) {
  }
}

void LogStream::decodeLine(std::string_view line) {
  size_t before = pending_.size();
  decoder_.decode(line, pending_);
  if (!remaining_) {
    return;
  }
  size_t added = pending_.size() - before;
  if (added >= static_cast<uint64_t>(*remaining_)) {
    pending_.resize(before + static_cast<size_t>(*remaining_));
    remaining_ = 0;
    done_ = true;  // limitBytes reached: the rest is not wanted
  } else {
    *remaining_ -= static_cast<int64_t>(added);
  }
}

Result<bool> LogStream::fill(size_t want) {
  if (files_.empty()) {
    return false;
  }
  const LogFile& f = files_[0];
  while (!done_ && pending_.size() < want) {
    const char* base = buf_.data();
    const void* nl = start_ < end_ ? std::memchr(base + start_, '\n', end_ - start_) : nullptr;
    if (nl != nullptr) {
      size_t at = static_cast<size_t>(static_cast<const char*>(nl) - base);
      if (!skipping_) {
        decodeLine(std::string_view(base + start_, at - start_));
      }
      skipping_ = false;
      start_ = at + 1;
      continue;
    }
    if (end_ - start_ >= kMaxLine) {
      skipping_ = true;  // not a CRI line: drop it up to its '\n'
      start_ = end_ = 0;
    }
    if (start_ > 0) {
      std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (buf_.size() < end_ + kBlock) {
      buf_.resize(end_ + kBlock);
    }
    ssize_t n = ::read(f.fd.get(), buf_.data() + end_, kBlock);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sysError("read log", f.path);
    }
    if (n == 0) {
      return false;
    }
    end_ += static_cast<size_t>(n);
  }
  return true;
}

Result<void> LogStream::openNext() {
  auto open = [](std::optional<RotationKey> key,
                 std::string path) -> Result<std::optional<LogFile>> {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) {
        return std::nullopt;  // rotated again, or not created yet
      }
      return sysError("open log", path);
    }
    LogFile f{.path = std::move(path), .key = std::move(key), .fd = UniqueFd(fd)};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return sysError("stat log", f.path);
    }
    f.inode = st.st_ino;
    return f;
  };
  // The live file before the listing: a rotation in between lists the file
  // we opened under its rotated name (skipped by its inode) and nothing is
  // missed; listing first would miss the file rotated before the open.
  TRY(std::optional<LogFile> live, open(std::nullopt, dir_ + "/" + liveLogName(run_)));
  for (auto& [key, path] : rotatedAfter(dir_, run_, last_key_)) {
    TRY(std::optional<LogFile> f, open(key, path));
    // Gone since the listing: pruned by rotation, nothing to read.
    if (f && !(live && live->inode == f->inode)) {
      files_.push_back(std::move(*f));
    }
  }
  if (live) {
    files_.push_back(std::move(*live));  // no live file yet: follow waits for its creation
  }
  return {};
}

Result<bool> LogStream::followRotation() {
  LogFile& cur = files_[0];
  struct stat st {};
  std::string live = dir_ + "/" + liveLogName(run_);
  if (::stat(live.c_str(), &st) == 0) {
    if (st.st_ino == cur.inode) {
      return false;
    }
  } else if (errno != ENOENT) {
    return sysError("stat log", live);
  }
  // Ours was renamed away (or removed): find which rotated file it became,
  // so the files after it come next. Its inode is ours while we hold it open.
  std::optional<RotationKey> mine;
  for (auto& [key, path] : rotatedAfter(dir_, run_, last_key_)) {
    struct stat r {};
    if (::stat(path.c_str(), &r) == 0 && r.st_ino == cur.inode) {
      mine = key;
      cur.path = path;
    }
  }
  // Removed by rotation's pruning (only the oldest go): every rotated file
  // left is newer than it, so it sorts before them all.
  cur.key = mine ? *mine : last_key_.value_or(RotationKey{});
  return true;
}

Result<State> LogStream::atEnd() {
  auto flushTail = [this] {
    // A last line without its '\n' (a writer that died mid-line): shown, as
    // the kubelet shows the incomplete line at the end of a file it is done with.
    if (end_ > start_ && !skipping_) {
      decodeLine(std::string_view(buf_.data() + start_, end_ - start_));
    }
    start_ = end_ = 0;
    skipping_ = false;
  };
  if (!files_.empty() && files_[0].key) {
    flushTail();
    last_key_ = files_[0].key;
    files_.erase(files_.begin());
    if (files_.empty() && follow_) {
      TRY_VOID(openNext());
    }
    return files_.empty() && !follow_ ? State::kEnd : State::kData;
  }
  if (!follow_) {
    flushTail();
    return State::kEnd;
  }
  if (files_.empty()) {
    TRY_VOID(openNext());  // the live file is created when the container starts
    if (!files_.empty()) {
      return State::kData;
    }
  } else {
    TRY(bool rotated, followRotation());
    if (rotated) {
      return State::kData;  // read it to its end, then what came after it
    }
  }
  if (final_pass_) {
    flushTail();
    return State::kEnd;
  }
  if (!running_()) {
    // Stopped: what it wrote before that may have come after our last read.
    final_pass_ = true;
    return State::kData;
  }
  return State::kWait;
}

Result<State> LogStream::read(std::string& out, size_t max) {
  if (inotify_) {
    drainInotify();
  }
  if (max == 0) {
    return State::kData;
  }
  for (;;) {
    if (!pending_.empty()) {
      if (out.empty() && pending_.size() <= max) {
        out.swap(pending_);  // the common case: no copy
        pending_.clear();
      } else {
        size_t n = std::min(max, pending_.size());
        out.append(pending_, 0, n);
        pending_.erase(0, n);
      }
      return State::kData;
    }
    if (done_) {
      return State::kEnd;
    }
    // Decoding stops past `want`, by at most a line: leave room for one, so
    // the whole piece fits in `max` and is handed over without a copy.
    constexpr size_t kSlack = size_t{32} * 1024;
    TRY(bool more, fill(max > 2 * kSlack ? max - kSlack : max));
    if (!pending_.empty() || more) {
      continue;
    }
    TRY(State s, atEnd());
    if (s == State::kWait) {
      return s;
    }
    if (s == State::kEnd) {
      done_ = true;
    }
  }
}

}  // namespace kernelet::agent::logs
