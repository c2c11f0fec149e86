#include "isolation/cri_log.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

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
  return CriLogWriter(UniqueFd(fd), path);
}

Result<void> CriLogWriter::emit(Stream s, char tag, std::string_view content) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::string line = rfc3339Nano(now);
  line += s == Stream::kStdout ? " stdout " : " stderr ";
  line += tag;
  line += ' ';
  line += content;
  line += '\n';
  // O_APPEND and one write per line: a reader never sees half a line.
  if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return sysError("write log", path_);
  }
  return {};
}

Result<void> CriLogWriter::feed(Stream s, std::string_view data) {
  std::string& buf = pending(s);
  while (!data.empty()) {
    size_t nl = data.find('\n');
    std::string_view piece = data.substr(0, nl == std::string_view::npos ? data.size() : nl);
    buf.append(piece);
    // A full buffer is a partial line even if a newline comes next (containerd's
    // bufio reader of kMaxLine bytes behaves the same).
    while (buf.size() >= kMaxLine) {
      TRY_VOID(emit(s, 'P', std::string_view(buf).substr(0, kMaxLine)));
      buf.erase(0, kMaxLine);
    }
    if (nl == std::string_view::npos) {
      break;
    }
    std::string_view content = buf;
    if (content.ends_with('\r')) {
      content.remove_suffix(1);  // \r\n ends a line like \n, as bufio.ReadLine reads it
    }
    TRY_VOID(emit(s, 'F', content));
    buf.clear();
    data.remove_prefix(nl + 1);
  }
  return {};
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

Result<void> CriLogWriter::pump(EventLoop& loop, UniqueFd stdout_pipe, UniqueFd stderr_pipe) {
  pipes_[0] = std::move(stdout_pipe);
  pipes_[1] = std::move(stderr_pipe);
  for (int i = 0; i < 2; i++) {
    if (!pipes_[i]) {
      continue;
    }
    Stream s = i == 0 ? Stream::kStdout : Stream::kStderr;
    int fd = pipes_[i].get();
    TRY_VOID(loop.add(fd, EPOLLIN, [this, &loop, s, fd, i](uint32_t) {
      char buf[65536];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        (void)feed(s, std::string_view(buf, static_cast<size_t>(n)));
        return;
      }
      if (n < 0 && errno == EINTR) {
        return;
      }
      // EOF (or a broken pipe): the container closed this stream.
      (void)close(s);
      loop.remove(fd);
      pipes_[i].reset();
    }));
  }
  return {};
}

}  // namespace kernelet::isolation
