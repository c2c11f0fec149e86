#pragma once
// What the benchmarks share: running a peer's command, a crun-spec bundle
// around a fixture rootfs, medians.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace kernelet::bench {

// Runs argv (PATH lookup) and returns its exit status (128 + signal when
// killed). Output goes to `out` when given, else where ours goes.
inline int runCommand(const std::vector<std::string>& argv, const std::string& out = "") {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    if (!out.empty()) {
      FILE* f = std::fopen(out.c_str(), "w");
      ::dup2(fileno(f), 1);
      ::dup2(fileno(f), 2);
    }
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Seconds since local midnight: the clock of klog's line headers.
inline double timeOfDay() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm local{};
  ::localtime_r(&ts.tv_sec, &local);
  return local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + ts.tv_nsec / 1e9;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A process's CPU time so far and its resident memory now.
struct ProcStat {
  double cpu_seconds = 0;
  long rss_kib = 0;
};

inline ProcStat procStat(pid_t pid) {
  ProcStat p;
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> f; i++) {
    if (i == 14) {
      utime = std::stol(f);
    }
    if (i == 15) {
      stime = std::stol(f);
      break;
    }
  }
  p.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::istringstream status(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) {
      p.rss_kib = std::stol(line.substr(6));
    }
  }
  return p;
}

// The agent's klog file, read as it grows: each look reads only what is new
// (re-reading it whole every few ms made 100 pods take longer than the pods).
class AgentLog {
 public:
  explicit AgentLog(std::string path) : path_(std::move(path)) {}
  const std::string& text() {
    std::ifstream f(path_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(text_.size()));
    text_.append(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return text_;
  }
  // Seconds since local midnight of the line "Container started" for
  // default/POD ("I1128 15:49:07.385221 ..."), from offset `from` on; -1 when
  // not there yet. A plain search: a regex over the growing log was the
  // slowest part of the benchmarks.
  double startedAt(const std::string& pod, size_t from = 0) {
    const std::string& log = text();
    size_t at = log.find("\"Container started\" pod=\"default/" + pod + "\"", from);
    if (at == std::string::npos) {
      return -1;
    }
    size_t line = log.rfind('\n', at);
    line = line == std::string::npos ? 0 : line + 1;
    std::string clock = log.substr(line + 6, 15);  // hh:mm:ss.uuuuuu
    return std::stoi(clock.substr(0, 2)) * 3600 + std::stoi(clock.substr(3, 2)) * 60 +
           std::stod(clock.substr(6));
  }

 private:
  std::string path_, text_;
};

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The bundle `crun spec` writes, without a terminal, running `args_json` (the
// elements of a JSON array, e.g. "\"/bin/true\""). The rootfs is named by its
// absolute path (runc refuses one behind a symlink) and stays read-only, as
// crun spec makes it, so several runners share it.
inline void writeBundle(const std::string& bundle, const std::string& rootfs,
                        const std::string& args_json) {
  namespace fs = std::filesystem;
  fs::create_directories(bundle);
  std::string cwd = fs::current_path();
  fs::current_path(bundle);
  if (runCommand({"crun", "spec"}) != 0) {
    std::cerr << "crun spec failed\n";
    std::exit(1);
  }
  fs::current_path(cwd);
  std::string config = slurp(bundle + "/config.json");
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = config.find(from);
    if (at == std::string::npos) {
      std::cerr << "unexpected crun spec output: no " << from << "\n";
      std::exit(1);
    }
    config.replace(at, from.size(), to);
  };
  replace("\"terminal\": true", "\"terminal\": false");
  replace("\"sh\"", args_json);
  replace("\"path\": \"rootfs\"", "\"path\": \"" + rootfs + "\"");
  std::ofstream(bundle + "/config.json") << config;
}

}  // namespace kernelet::bench
