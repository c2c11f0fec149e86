#include "agent/runtime/termination_message.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "agent/logs/log_stream.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::runtime {

Result<std::string> createTerminationFile(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return makeError("create termination-log directory", dir, ec.message());
  }
  for (int attempt = 0;; attempt++) {
    // The kubelet's makeUID: the container's dir is unique to it, so 8 random
    // hex digits tell its runs apart; a clash is simply drawn again.
    uint32_t r = 0;
    if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
      return sysError("getrandom", dir);
    }
    char name[9];
    std::snprintf(name, sizeof name, "%08x", r);
    std::string path = dir + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd) {
      if (errno == EEXIST && attempt < 8) {
        continue;
      }
      return sysError("create termination-log file", path);
    }
    // Whatever the umask: the container may run as any user.
    if (::fchmod(fd.get(), 0666) != 0) {
      int e = errno;
      ::unlink(path.c_str());
      return sysError(e, "chmod termination-log file", path);
    }
    return path;
  }
}

Result<std::optional<std::string>> readTerminationFile(const std::string& path) {
  // O_NOFOLLOW: a symlink the container planted is not followed (ELOOP);
  // O_NONBLOCK: opening a FIFO no one writes does not wait.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return std::optional<std::string>();
    }
    return sysError("open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return sysError("stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError("read", path, "not a regular file");
  }
  // tail.ReadAtMost: the last bytes, where a message appended last is.
  off_t size = st.st_size;
  off_t from = size > static_cast<off_t>(kMaxContainerTerminationMessageLength)
                   ? size - static_cast<off_t>(kMaxContainerTerminationMessageLength)
                   : 0;
  std::string out(kMaxContainerTerminationMessageLength, '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n =
        ::pread(fd.get(), out.data() + got, out.size() - got, from + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sysError("read", path);
    }
    if (n == 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return std::optional<std::string>(std::move(out));
}

Result<std::string> readLogTail(const std::string& log_path) {
  std::filesystem::path p(log_path);
  std::string name = p.filename().string();
  int run = 0;
  if (!name.ends_with(".log") || std::sscanf(name.c_str(), "%d.log", &run) != 1 || run < 0) {
    return makeError("read log", log_path, "not a run's log");
  }
  logs::LogOptions options;
  options.tail_lines = kMaxContainerTerminationMessageLogLines;
  TRY(auto stream,
      logs::LogStream::open(p.parent_path().string(), run, options, [] { return false; }));
  // A circular buffer of the last bytes, as the kubelet's circbuf: the
  // output is at most 80 lines, each at most a CRI line's 16 KiB.
  std::string out;
  for (;;) {
    std::string chunk;
    TRY(auto state, stream->read(chunk, logs::LogStream::kBlock));
    out += chunk;
    if (out.size() > 2 * kMaxContainerTerminationMessageLogLength) {
      out.erase(0, out.size() - kMaxContainerTerminationMessageLogLength);
    }
    if (state != server::BodySource::State::kData) {
      break;  // kEnd; kWait cannot come without follow
    }
  }
  if (out.size() > kMaxContainerTerminationMessageLogLength) {
    out.erase(0, out.size() - kMaxContainerTerminationMessageLogLength);
  }
  return out;
}

std::string terminationMessage(const TerminationInput& in) {
  // A run that could not even start has no log to fall back on.
  bool fallback = in.fallback_to_logs && in.exit_code != 0 && in.reason != "ContainerCannotRun";
  std::string message;
  bool check_logs = fallback;
  if (!in.file.empty()) {
    auto data = readTerminationFile(in.file);
    if (!data) {
      message = "Error on reading termination log " + in.file + ": " + data.error().message();
      check_logs = false;
    } else if (*data) {
      message = std::move(**data);
      check_logs = fallback && message.empty();
    }
  }
  if (check_logs && !in.log_path.empty()) {
    auto tail = readLogTail(in.log_path);
    message = tail ? std::move(*tail)
                   : "Error on reading termination message from logs: " + tail.error().message();
  }
  if (message.empty()) {
    return in.message;
  }
  return in.message.empty() ? message : in.message + ": " + message;
}

}  // namespace kernelet::agent::runtime
