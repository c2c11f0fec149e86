// The container log pump (isolation/cri_log.h): how fast CriLogWriter::pump
// moves a container's output from its pipe (1 MiB, as the runtime sizes it)
// into a CRI log file on tmpfs. A child process writes `MiB` of lines of one
// length; the loop pumps until the pipe closes. Prints MiB/s and lines/s, the
// median of 5 runs, for short (80 B), medium (1 KiB) and long (40 KiB) lines.
//   usage: cri_log_bench [MiB (default 64)] [dir (default /dev/shm)]
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "isolation/cri_log.h"
#include "sys/event_loop.h"

namespace {

using kernelet::EventLoop;
using kernelet::UniqueFd;
using kernelet::isolation::CriLogWriter;

// One run: seconds to pump `total` bytes of `line_len`-byte lines.
double pumpOnce(size_t total, size_t line_len, const std::string& path) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  (void)::fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(p[0]);
    std::string line(line_len - 1, 'x');
    line += '\n';
    std::string chunk;
    while (chunk.size() < 65536) {
      chunk += line;
    }
    for (size_t sent = 0; sent < total; sent += chunk.size()) {
      for (size_t at = 0; at < chunk.size();) {
        ssize_t n = ::write(p[1], chunk.data() + at, chunk.size() - at);
        if (n <= 0) {
          ::_exit(1);
        }
        at += static_cast<size_t>(n);
      }
    }
    ::_exit(0);
  }
  ::close(p[1]);
  ::unlink(path.c_str());
  auto writer = CriLogWriter::open(path);
  auto loop = EventLoop::create();
  if (!writer || !loop) {
    (void)std::fprintf(stderr, "cannot open %s or the loop\n", path.c_str());
    std::exit(1);
  }
  auto start = std::chrono::steady_clock::now();
  if (!writer->pump(*loop, UniqueFd(p[0]), UniqueFd())) {
    std::exit(1);
  }
  if (!loop->run()) {
    std::exit(1);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int status = 0;
  ::waitpid(child, &status, 0);
  ::unlink(path.c_str());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
  std::string dir = argc > 2 ? argv[2] : "/dev/shm";
  std::string path = dir + "/cri_log_bench." + std::to_string(::getpid()) + ".log";
  std::printf("CRI log pump, %zu MiB through a 1 MiB pipe into %s (median of 5):\n", mib,
              dir.c_str());
  for (size_t line_len : {80, 1024, 40 * 1024}) {
    std::vector<double> runs;
    runs.reserve(5);
    for (int i = 0; i < 5; i++) {
      runs.push_back(pumpOnce(mib << 20, line_len, path));
    }
    std::sort(runs.begin(), runs.end());
    double s = runs[2];
    std::printf("  %6zu-byte lines: %8.1f MiB/s %12.0f lines/s\n", line_len,
                static_cast<double>(mib) / s, static_cast<double>(mib << 20) / line_len / s);
  }
  return 0;
}
