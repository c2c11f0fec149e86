// /containerLogs' reader (agent/logs/log_stream.h) against `cat` of the same
// file, in the same run: a 100 MiB CRI log (lines of ~100 bytes, every 50th a
// 16 KiB partial piece and its end) decoded through LogStream in the server's
// 64 KiB pieces into a pipe that another thread drains, as the server writes
// a socket; and `cat FILE` into the same kind of pipe. Also both into
// /dev/null (the reader alone). Prints MiB/s of the file read, the median of
// 5 runs, and the ratio (issue 17's target: at least half cat's speed).
//   usage: logs_bench [MiB (default 100)] [dir (default /dev/shm)]
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "agent/logs/log_stream.h"

namespace {

namespace logs = kernelet::agent::logs;
using Clock = std::chrono::steady_clock;

void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void writeLog(const std::string& path, size_t total) {
  std::string chunk;
  std::string stamp;
  for (int i = 0; chunk.size() < (4 << 20); i++) {
    // One time per 20 lines: the writer stamps what it read at one moment.
    if (i % 20 == 0) {
      stamp = "2026-11-30T23:59:59." + std::to_string(100000000 + i) + "Z ";
    }
    if (i % 50 == 49) {
      chunk += stamp + "stdout P " + std::string(16384, 'p') + "\n";
      chunk += stamp + "stdout F end of the long line\n";
    } else {
      chunk += stamp + (i % 7 == 0 ? "stderr" : "stdout") + " F line " + std::to_string(i) +
               " of the log, some words a program would print\n";
    }
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    die("open");
  }
  for (size_t written = 0; written < total; written += chunk.size()) {
    if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
      die("write");
    }
  }
  ::close(fd);
}

// Drains `fd` to EOF on a thread; the bytes it saw.
std::thread drain(int fd, size_t& seen) {
  return std::thread([fd, &seen] {
    std::vector<char> buf(1 << 17);
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) {
      seen += static_cast<size_t>(n);
    }
    ::close(fd);
  });
}

// `out`: a pipe's write end, or /dev/null. Seconds.
double catOnce(const std::string& path, bool to_pipe) {
  int p[2] = {-1, -1};
  size_t seen = 0;
  std::thread t;
  if (to_pipe) {
    if (::pipe2(p, O_CLOEXEC) != 0) {
      die("pipe");
    }
    t = drain(p[0], seen);
  } else {
    p[1] = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  auto start = Clock::now();
  pid_t child = ::fork();
  if (child == 0) {
    ::dup2(p[1], 1);
    ::execlp("cat", "cat", path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(p[1]);
  int st = 0;
  ::waitpid(child, &st, 0);
  if (t.joinable()) {
    t.join();
  }
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    (void)std::fprintf(stderr, "cat failed\n");
    std::exit(1);
  }
  return s;
}

double streamOnce(const std::string& dir, bool to_pipe, size_t& out_bytes) {
  int p[2] = {-1, -1};
  size_t seen = 0;
  std::thread t;
  if (to_pipe) {
    if (::pipe2(p, O_CLOEXEC) != 0) {
      die("pipe");
    }
    t = drain(p[0], seen);
  } else {
    p[1] = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  auto start = Clock::now();
  auto stream = logs::LogStream::open(dir, 0, logs::LogOptions{}, [] { return false; });
  if (!stream) {
    (void)std::fprintf(stderr, "%s\n", stream.error().message().c_str());
    std::exit(1);
  }
  std::string piece;
  out_bytes = 0;
  for (;;) {
    piece.clear();
    auto st = (*stream)->read(piece, size_t{64} * 1024);
    if (!st) {
      (void)std::fprintf(stderr, "%s\n", st.error().message().c_str());
      std::exit(1);
    }
    for (size_t at = 0; at < piece.size();) {
      ssize_t n = ::write(p[1], piece.data() + at, piece.size() - at);
      if (n <= 0) {
        die("write");
      }
      at += static_cast<size_t>(n);
    }
    out_bytes += piece.size();
    if (*st == logs::LogStream::State::kEnd) {
      break;
    }
  }
  ::close(p[1]);
  if (t.joinable()) {
    t.join();
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  std::string base = argc > 2 ? argv[2] : "/dev/shm";
  std::string dir = base + "/logs_bench." + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0755) != 0) {
    die("mkdir");
  }
  std::string path = dir + "/0.log";
  writeLog(path, mib << 20);
  double file_mib = 0;
  {
    FILE* f = std::fopen(path.c_str(), "r");
    (void)std::fseek(f, 0, SEEK_END);
    file_mib = static_cast<double>(std::ftell(f)) / (1 << 20);
    (void)std::fclose(f);
  }
  std::printf(
      "/containerLogs reader vs cat, a %.0f MiB CRI log in %s (median of 5, MiB/s of the "
      "file):\n",
      file_mib, base.c_str());
  for (bool to_pipe : {true, false}) {
    std::vector<double> cat_runs, stream_runs;
    size_t out_bytes = 0;
    for (int i = 0; i < 5; i++) {
      cat_runs.push_back(catOnce(path, to_pipe));
      stream_runs.push_back(streamOnce(dir, to_pipe, out_bytes));
    }
    double cat = file_mib / median(cat_runs), stream = file_mib / median(stream_runs);
    std::printf(
        "  into %-9s cat %8.1f MiB/s   LogStream %8.1f MiB/s (%.0f MiB decoded)   "
        "ratio %.2f\n",
        to_pipe ? "a pipe:" : "/dev/null:", cat, stream, static_cast<double>(out_bytes) / (1 << 20),
        stream / cat);
  }
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  return 0;
}
