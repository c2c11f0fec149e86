#include "isolation/cri_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace kernelet::isolation {

std::string rfc3339Nano(const timespec& t) {
  tm utc{};
  ::gmtime_r(&t.tv_sec, &utc);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string out(buf, n);
  if (t.tv_nsec != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09ld", t.tv_nsec);
    std::string f = frac;
    while (f.back() == '0') {
      f.pop_back();
    }
    out += f;
  }
  return out + "Z";
}

Result<CriLogWriter> CriLogWriter::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return sysError("open log", path);
  }
  CriLogWriter w(UniqueFd(fd), path);
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    w.size_ = st.st_size;
  }
  return w;
}

void CriLogWriter::rotateAt(int64_t max_size, int max_files) {
  max_size_ = max_size;
  max_files_ = max_files;
}

Result<void> CriLogWriter::rotate() {
  time_t now = ::time(nullptr);
  tm utc{};
  ::gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  std::string rotated = path_ + "." + stamp;
  for (int i = 1; ::access(rotated.c_str(), F_OK) == 0; i++) {
    rotated = path_ + "." + stamp + "." + std::to_string(i);  // two rotations in one second
  }
  if (::rename(path_.c_str(), rotated.c_str()) != 0) {
    return sysError("rotate log", path_);
  }
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return sysError("open log", path_);
  }
  fd_.reset(fd);
  size_ = 0;
  // Keep the newest max_files - 1 rotated files: their names sort by time.
  std::filesystem::path live(path_);
  std::vector<std::string> old;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(live.parent_path(), ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(live.filename().string() + ".")) {
      old.push_back(e.path().string());
    }
  }
  std::sort(old.begin(), old.end());
  for (size_t i = 0; i + static_cast<size_t>(std::max(max_files_ - 1, 0)) < old.size(); i++) {
    ::unlink(old[i].c_str());
  }
  return {};
}

void CriLogWriter::appendLine(std::string& batch, const std::string& stamp, Stream s, char tag,
                              std::string_view content) {
  batch += stamp;
  batch += s == Stream::kStdout ? " stdout " : " stderr ";
  batch += tag;
  batch += ' ';
  batch += content;
  batch += '\n';
}

// One write(2) of whole lines: O_APPEND and one write, so a reader never sees
// half a line, and the pump's take of those bytes from the pipe follows it
// with nothing in between.
Result<void> CriLogWriter::writeBatch(const std::string& batch) {
  if (batch.empty()) {
    return {};
  }
  size_ += static_cast<int64_t>(batch.size());
  if (::write(fd_.get(), batch.data(), batch.size()) != static_cast<ssize_t>(batch.size())) {
    return sysError("write log", path_);
  }
  return {};
}

// Whether `line` more bytes after `batch` would take the file past max_size.
bool CriLogWriter::rotationDue(size_t batch, size_t line) const {
  int64_t before = size_ + static_cast<int64_t>(batch);
  return max_size_ > 0 && before > 0 && before + static_cast<int64_t>(line) > max_size_ &&
         !path_.empty();
}

namespace {

std::string nowStamp() {
  timespec now{};
  (void)::clock_gettime(CLOCK_REALTIME, &now);  // a valid clock: cannot fail
  return rfc3339Nano(now);
}

// Bytes of the CRI line around `content` of stream `s`: stamp, stream, tag,
// three spaces and the newline.
size_t lineSize(const std::string& stamp, Stream s, size_t content) {
  (void)s;  // " stdout " and " stderr ": as long
  return stamp.size() + 8 + 1 + 1 + content + 1;
}

}  // namespace

Result<void> CriLogWriter::emit(Stream s, char tag, std::string_view content) {
  std::string stamp = nowStamp();
  if (rotationDue(0, lineSize(stamp, s, content.size()))) {
    TRY_VOID(rotate());
  }
  std::string line;
  appendLine(line, stamp, s, tag, content);
  return writeBatch(line);
}

// The lines of one window go out in one write (two when the file rotates in
// between), stamped with one time: they were read at one moment.
Result<void> CriLogWriter::emitLines(Stream s, std::string_view data, size_t& used) {
  used = 0;
  std::string stamp = nowStamp();
  // One per thread (the loop's), kept between calls: a window's batch is
  // ~kWindow bytes, and a fresh one each time costs an mmap and its page
  // faults (half the throughput of 40 KiB lines).
  thread_local std::string batch;
  batch.clear();
  size_t batched = 0;  // bytes of `data` the batch holds
  auto add = [&](char tag, std::string_view content, size_t end) -> Result<void> {
    if (rotationDue(batch.size(), lineSize(stamp, s, content.size()))) {
      auto wrote = writeBatch(batch);
      used = batched;
      batch.clear();
      TRY_VOID(wrote);
      TRY_VOID(rotate());
    }
    appendLine(batch, stamp, s, tag, content);
    batched = end;
    return {};
  };
  size_t at = 0;
  Result<void> r;
  while (r && at < data.size()) {
    size_t nl = data.find('\n', at);
    size_t end = nl == std::string_view::npos ? data.size() : nl;
    // A full piece is a partial line even if a newline comes next (containerd's
    // bufio reader of kMaxLine bytes behaves the same).
    while (r && end - at >= kMaxLine) {
      r = add('P', data.substr(at, kMaxLine), at + kMaxLine);
      at += kMaxLine;
    }
    if (!r || nl == std::string_view::npos) {
      break;  // an unfinished line: not ours to write yet
    }
    std::string_view content = data.substr(at, nl - at);
    if (content.ends_with('\r')) {
      content.remove_suffix(1);  // \r\n ends a line like \n, as bufio.ReadLine reads it
    }
    at = nl + 1;
    r = add('F', content, at);
  }
  if (!r) {
    used = std::max(used, batched);  // what a failed write held is lost, as it always was
    return r;
  }
  auto wrote = writeBatch(batch);
  used = batched;
  return wrote;
}

Result<void> CriLogWriter::feed(Stream s, std::string_view data) {
  std::string& buf = pending(s);
  buf.append(data);
  size_t used = 0;
  auto r = emitLines(s, buf, used);
  buf.erase(0, used);
  return r;
}

Result<void> CriLogWriter::close(Stream s) {
  std::string& buf = pending(s);
  if (buf.empty()) {
    return {};
  }
  auto r = emit(s, 'F', buf);
  buf.clear();
  return r;
}

namespace {

// Bytes one tee(2) looks at: more than kMaxLine, so every look finds a line
// or a P piece unless the pipe holds only an unfinished line.
constexpr size_t kWindow = size_t{256} * 1024;
// Bytes one readiness event pumps before the pipe goes to the back of the
// loop's queue, so one chatty container cannot starve the other pods.
constexpr size_t kBudget = size_t{256} * 1024;

// One per thread and container pipe size (every pump runs on the agent's loop
// thread; the runtime makes every container pipe 1 MiB): the pipe tee(2)
// copies a container pipe's bytes into, so they can be read without leaving
// the container's pipe, and /dev/null to splice the written ones into.
//
// tee(2) copies pipe BUFFERS, not bytes: a writer that makes one buffer per
// write (O_DIRECT pipes, vmsplice, splice) fills a pipe's slots with a few
// bytes. The scratch pipe has as many slots as the container's, so a look
// sees every buffer, and a full scratch pipe after a look says the
// container's pipe is full (its writer may be blocked).
struct Scratch {
  UniqueFd r, w, null;
  std::unique_ptr<char[]> buf;  // kWindow bytes
  int size = 0;                 // the container pipes' size it serves
};

Scratch* scratch(int pipe_size) {
  thread_local std::vector<std::unique_ptr<Scratch>> all;
  for (auto& s : all) {
    if (s->size == pipe_size) {
      return s->r ? s.get() : nullptr;
    }
  }
  auto s = std::make_unique<Scratch>();
  s->size = pipe_size;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
    s->r.reset(p[0]);
    s->w.reset(p[1]);
    s->null.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    s->buf = std::make_unique<char[]>(kWindow);
    // Smaller where pipe-max-size forbids: a look then sees less at once, and
    // a full scratch pipe makes the pump read (pumpPipe).
    (void)::fcntl(s->w.get(), F_SETPIPE_SZ, pipe_size);
  }
  all.push_back(std::move(s));
  return all.back()->r ? all.back().get() : nullptr;
}

// Whether the scratch pipe has no free slot (after a tee into it).
bool scratchFull(const Scratch& sc) {
  pollfd p{.fd = sc.w.get(), .events = POLLOUT};
  return ::poll(&p, 1, 0) == 0;
}

// Reads exactly `n` bytes (that tee just put there) out of the scratch pipe.
bool readScratch(Scratch& sc, char* buf, size_t n) {
  for (size_t at = 0; at < n;) {
    ssize_t k = ::read(sc.r.get(), buf + at, n - at);
    if (k < 0 && errno == EINTR) {
      continue;
    }
    if (k <= 0) {
      return false;
    }
    at += static_cast<size_t>(k);
  }
  return true;
}

// Whether the pipe holds more than `n` bytes.
bool moreThan(int fd, size_t n) {
  int avail = 0;
  return ::ioctl(fd, FIONREAD, &avail) == 0 && static_cast<size_t>(avail) > n;
}

// Takes the first `n` bytes (already in the log) out of the container's pipe.
bool consume(Scratch& sc, int fd, size_t n) {
  while (n > 0) {
    ssize_t k = sc.null ? ::splice(fd, nullptr, sc.null.get(), nullptr, n, SPLICE_F_NONBLOCK) : -1;
    if (k < 0 && errno != EINTR) {
      char junk[4096];
      k = ::read(fd, junk, std::min(n, sizeof junk));
    }
    if (k < 0 && errno == EINTR) {
      continue;
    }
    if (k <= 0) {
      return false;
    }
    n -= static_cast<size_t>(k);
  }
  return true;
}

}  // namespace

CriLogWriter::Pass CriLogWriter::pumpPipe(int i, size_t budget, bool final) {
  Stream s = i == 0 ? Stream::kStdout : Stream::kStderr;
  int fd = pipes_[i].get();
  tail_[i] = 0;
  if (terminal_) {
    return readTerminal(budget, final);
  }
  Scratch* sc = scratch(pipe_size_[i]);
  if (sc == nullptr || !pending(s).empty()) {
    return readPipe(i, budget);
  }
  char* buf = sc->buf.get();
  for (size_t done = 0; done < budget;) {
    ssize_t n = ::tee(fd, sc->w.get(), kWindow, SPLICE_F_NONBLOCK);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0) {
      return Pass::kClosed;  // empty, and no one can write to it any more
    }
    if (n < 0) {
      return errno == EAGAIN ? Pass::kEmpty : Pass::kClosed;
    }
    bool full = scratchFull(*sc);
    if (!readScratch(*sc, buf, static_cast<size_t>(n))) {
      return readPipe(i, budget);  // cannot happen; the plain read still works
    }
    std::string_view window(buf, static_cast<size_t>(n));
    tapWindow(i, window);
    size_t used = 0;
    (void)emitLines(s, window, used);  // a failed log write loses those lines, as it always did
    if (used == 0 && !final && !full && !moreThan(fd, window.size())) {
      tail_[i] = window.size();
      return Pass::kTail;  // stays in the pipe until its newline comes
    }
    if (used == 0) {
      // The line goes on beyond what a look shows (tiny buffers filled the
      // pipe's slots: its writer is blocked until we take some), or the
      // stream ends. Read it into memory as the old pump did: only here is an
      // unfinished line lost if the agent dies, since it no longer waits in
      // the pipe. The pending line becomes one F line at its newline or at
      // close(), never two.
      if (!consume(*sc, fd, window.size())) {
        return Pass::kClosed;
      }
      took(i, window.size());
      pending(s).append(window);
      done += window.size();
      return readPipe(i, budget - std::min(budget, done));
    }
    if (!consume(*sc, fd, used)) {
      return Pass::kClosed;
    }
    took(i, used);
    done += used;
  }
  return Pass::kMore;
}

// Without a scratch pipe (none could be made): the plain read, an unfinished
// line kept in memory, lost if the agent dies.
CriLogWriter::Pass CriLogWriter::readPipe(int i, size_t budget) {
  Stream s = i == 0 ? Stream::kStdout : Stream::kStderr;
  char buf[64 * 1024];
  for (size_t done = 0; done < budget;) {
    ssize_t n = ::read(pipes_[i].get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return n < 0 && errno == EAGAIN ? Pass::kEmpty : Pass::kClosed;
    }
    std::string_view data(buf, static_cast<size_t>(n));
    tapWindow(i, data);
    took(i, data.size());
    (void)feed(s, data);  // a failed log write loses those lines, as it always did
    done += data.size();
  }
  return Pass::kMore;
}

CriLogWriter::Pass CriLogWriter::readTerminal(size_t budget, bool final) {
  char buf[64 * 1024];
  for (size_t done = 0; done < budget;) {
    // One reader (this pump), so a readable master does not block the read.
    pollfd p{.fd = pipes_[0].get(), .events = POLLIN};
    if (::poll(&p, 1, 0) != 1) {
      return Pass::kEmpty;
    }
    ssize_t n = ::read(pipes_[0].get(), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      return Pass::kEmpty;
    }
    if (n <= 0 && !final && n < 0 && errno == EIO) {
      // No one has the slave open now, but the container may open it again
      // (its master is held): a hangup to wait out, as containerd's console
      // does. Edge-triggered, the hangup is not reported again; a write after
      // a reopen is. The run's end (finish) closes it.
      return Pass::kEmpty;
    }
    if (n <= 0) {
      return Pass::kClosed;  // the run ended: the output is over
    }
    std::string_view data(buf, static_cast<size_t>(n));
    if (tap_) {
      tap_(Stream::kStdout, data);
    }
    (void)feed(Stream::kStdout, data);  // a failed log write loses those lines
    done += data.size();
  }
  return Pass::kMore;
}

void CriLogWriter::tapWindow(int i, std::string_view window) {
  if (window.size() <= tapped_[i]) {
    return;
  }
  if (tap_) {
    tap_(i == 0 ? Stream::kStdout : Stream::kStderr, window.substr(tapped_[i]));
  }
  tapped_[i] = window.size();
}

void CriLogWriter::closePipe(EventLoop& loop, int i) {
  (void)close(i == 0 ? Stream::kStdout : Stream::kStderr);  // a failed write: nothing to retry
  loop.remove(pipes_[i].get());
  pipes_[i].reset();
  tail_[i] = 0;
  tapped_[i] = 0;
}

// Edge-triggered: a pipe left holding an unfinished line must not wake the
// loop again until more is written (every completed write to a polled pipe
// wakes it; awaitTail covers a write still blocked).
Result<void> CriLogWriter::watch(EventLoop& loop, int i) {
  // A terminal is read until empty (never left holding a tail), and its
  // hangup (EIO while no one has the slave open) is reported once.
  return loop.add(pipes_[i].get(), EPOLLIN | EPOLLET,
                  [this, &loop, i](uint32_t) { onReadable(loop, i); });
}

void CriLogWriter::onReadable(EventLoop& loop, int i) {
  Pass p = pumpPipe(i, kBudget, false);
  if (p == Pass::kTail) {
    // No writer left (the container and all it forked closed the pipe): the
    // unfinished line is the last one, and no more events will come.
    pollfd pf{.fd = pipes_[i].get(), .events = POLLIN};
    if (::poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP) != 0) {
      p = pumpPipe(i, SIZE_MAX, true);
    }
  }
  if (p == Pass::kClosed) {
    closePipe(loop, i);
  } else if (p == Pass::kMore) {
    // Watched afresh, the pipe (still readable) is reported again on the
    // loop's next turn, after the other ready fds.
    loop.remove(pipes_[i].get());
    if (!watch(loop, i)) {
      (void)pumpPipe(i, SIZE_MAX, false);  // cannot be watched: take what is there now
    }
  }
  if (p == Pass::kTail) {
    tail_timer_ms_ = 0;  // a fresh tail: look soon
  }
  awaitTail(loop);
}

// Arms the tail timer while a pipe holds an unfinished line: 10 ms, doubling
// to 1 s while nothing comes, so an idle prompt costs one look a second.
void CriLogWriter::awaitTail(EventLoop& loop) {
  bool waiting = tail_[0] != 0 || tail_[1] != 0;
  if (!waiting) {
    if (tail_timer_) {
      loop.remove(tail_timer_.get());
      tail_timer_.reset();
    }
    return;
  }
  if (!tail_timer_) {
    tail_timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!tail_timer_ ||
        !loop.add(tail_timer_.get(), EPOLLIN, [this, &loop](uint32_t) { onTailTimer(loop); })) {
      tail_timer_.reset();  // then a blocked write waits for its writer's next one
      return;
    }
  }
  tail_timer_ms_ = std::clamp(tail_timer_ms_ * 2, 10, 1000);
  itimerspec at{
      .it_value = {.tv_sec = tail_timer_ms_ / 1000, .tv_nsec = (tail_timer_ms_ % 1000) * 1000000L}};
  (void)::timerfd_settime(tail_timer_.get(), 0, &at, nullptr);  // valid values: cannot fail
}

void CriLogWriter::onTailTimer(EventLoop& loop) {
  uint64_t ticks = 0;
  (void)!::read(tail_timer_.get(), &ticks, sizeof ticks);
  for (int i = 0; i < 2; i++) {
    int avail = 0;
    if (tail_[i] != 0 && ::ioctl(pipes_[i].get(), FIONREAD, &avail) == 0 &&
        static_cast<size_t>(avail) != tail_[i]) {
      tail_timer_ms_ = 0;
      onReadable(loop, i);  // more came while its writer blocked
      return;               // (onReadable re-armed the timer)
    }
  }
  awaitTail(loop);
}

Result<void> CriLogWriter::pump(EventLoop& loop, UniqueFd stdout_pipe, UniqueFd stderr_pipe) {
  pipes_[0] = std::move(stdout_pipe);
  pipes_[1] = std::move(stderr_pipe);
  for (int i = 0; i < 2; i++) {
    if (!pipes_[i]) {
      continue;
    }
    int fd = pipes_[i].get();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    pipe_size_[i] = std::max(::fcntl(fd, F_GETPIPE_SZ), 0);
    TRY_VOID(watch(loop, i));
  }
  return {};
}

Result<void> CriLogWriter::pumpTerminal(EventLoop& loop, UniqueFd master) {
  terminal_ = true;
  pipes_[0] = std::move(master);
  return watch(loop, 0);
}

void CriLogWriter::finish(EventLoop& loop) {
  for (int i = 0; i < 2; i++) {
    if (pipes_[i]) {
      // What the run left in the pipe (or terminal) now, and a look more: a
      // process that outlived the run (one left in a PID namespace it shared)
      // and goes on writing must not hold the loop here for as long as it writes.
      int avail = 0;
      if (::ioctl(pipes_[i].get(), FIONREAD, &avail) != 0 || avail < 0) {
        avail = 0;
      }
      (void)pumpPipe(i, static_cast<size_t>(avail) + kBudget, true);
      closePipe(loop, i);
    }
  }
  awaitTail(loop);
}

void CriLogWriter::detach(EventLoop& loop) {
  for (int i = 0; i < 2; i++) {
    if (pipes_[i]) {
      loop.remove(pipes_[i].get());
      pipes_[i].reset();
    }
    tail_[i] = 0;
    tapped_[i] = 0;
  }
  awaitTail(loop);
}

}  // namespace kernelet::isolation
