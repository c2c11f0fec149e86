#include "isolation/cri_log.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
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

Result<void> CriLogWriter::emit(Stream s, char tag, std::string_view content) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::string line = rfc3339Nano(now);
  line += s == Stream::kStdout ? " stdout " : " stderr ";
  line += tag;
  line += ' ';
  line += content;
  line += '\n';
  if (max_size_ > 0 && size_ > 0 && size_ + static_cast<int64_t>(line.size()) > max_size_ &&
      !path_.empty()) {
    TRY_VOID(rotate());
  }
  size_ += static_cast<int64_t>(line.size());
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

void CriLogWriter::readPipe(EventLoop& loop, int i, bool until_empty) {
  Stream s = i == 0 ? Stream::kStdout : Stream::kStderr;
  int fd = pipes_[i].get();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      (void)feed(s, std::string_view(buf, static_cast<size_t>(n)));
      if (until_empty) {
        continue;
      }
      return;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN && !until_empty) {
      return;
    }
    // EOF (or a broken pipe, or nothing left after the container exited).
    (void)close(s);
    loop.remove(fd);
    pipes_[i].reset();
    return;
  }
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
    TRY_VOID(loop.add(fd, EPOLLIN, [this, &loop, i](uint32_t) { readPipe(loop, i, false); }));
  }
  return {};
}

void CriLogWriter::finish(EventLoop& loop) {
  for (int i = 0; i < 2; i++) {
    if (pipes_[i]) {
      readPipe(loop, i, true);
    }
  }
}

}  // namespace kernelet::isolation
