// Live restore (issue #16) in one run of the test VM (bench/run-restore):
//   1. M pods started at once: time until every status says Running.
//   2. The agent is SIGKILLed and started again: time from its exec to
//      READY=1 on NOTIFY_SOCKET (sent once its pods are adopted), and until
//      every pod's status was rewritten by the new agent with the same
//      container ids (nothing restarted).
//   3. The peer: the same M pods after a "reboot" (every container and the
//      holder killed, nothing to adopt): time until all run again.
// Also the agent's and the holder's RSS with the M pods.
//
//   restore_bench --kernelet PATH --fixtures DIR [--many M]
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace {

using kernelet::bench::ProcStat;
using kernelet::bench::procStat;
using kernelet::bench::runCommand;
using kernelet::bench::slurp;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kBase = "/tmp/restore-bench";
const std::string kRoot = kBase + "/root", kManifests = kBase + "/manifests",
                  kRun = "/run/restore-bench", kLog = kBase + "/agent.log";

std::string podYaml(const std::string& name) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: "
         "fixtures.kernelet.test/busybox:latest\n    imagePullPolicy: Never\n    command: "
         "[kt-sleep, '3600']\n";
}

// pod dir -> container id of every pod whose status says Running (and, with
// `after`, was written after it).
std::map<std::string, std::string> runningIds(const fs::file_time_type* after = nullptr) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kRoot + "/pods", ec)) {
    std::string path = e.path().string() + "/status.json";
    if (after != nullptr && fs::last_write_time(path, ec) <= *after) {
      continue;
    }
    std::string s = slurp(path);
    size_t id = s.find("\"containerID\": \"");
    if (s.find("\"phase\": \"Running\"") == std::string::npos || id == std::string::npos) {
      continue;
    }
    id += 16;
    out[e.path().filename().string()] = s.substr(id, s.find('"', id) - id);
  }
  return out;
}

pid_t startAgent(const std::string& kernelet, const std::string& notify,
                 const std::vector<std::string>& extra = {}) {
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::fopen(kLog.c_str(), "a");
    ::dup2(fileno(f), 2);
    if (!notify.empty()) {
      ::setenv("NOTIFY_SOCKET", notify.c_str(), 1);
    }
    std::vector<std::string> args = {
        kernelet,    "run", "--pod-manifest-path", kManifests, "--root-dir", kRoot,
        "--run-dir", kRun,  "--hostname-override", "bench",    "--max-pods", "250",
        "-v",        "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits (up to `limit`) for a datagram holding READY=1 on `fd`.
bool awaitReady(int fd, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < deadline) {
    timeval tv{.tv_sec = 0, .tv_usec = 100000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
      buf[n] = '\0';
      if (std::string(buf).find("READY=1") != std::string::npos) {
        return true;
      }
    }
  }
  return false;
}

int stopAgent(pid_t pid, int sig) {
  ::kill(pid, sig);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return st;
}

pid_t holderPid() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string cmd = slurp(e.path().string() + "/cmdline");
    if (cmd.find("kernelet-holder") != std::string::npos && cmd.find(kRun) != std::string::npos) {
      return std::stoi(e.path().filename().string());
    }
  }
  return -1;
}

// Seconds of the day of a klog line ("I1130 21:28:45.679623 ..."), or -1.
double klogSeconds(const std::string& line) {
  int h = 0, m = 0;
  double sec = 0;
  if (line.size() < 21 || std::sscanf(line.c_str() + 6, "%d:%d:%lf", &h, &m, &sec) != 3) {
    return -1;
  }
  return h * 3600 + m * 60 + sec;
}

// Where the restarted agent's time to READY went, from its log: the offsets of its milestones from
// "Starting kernelet".
void printMilestones(const std::string& log) {
  const char* keys[] = {"Starting kernelet", "Holder connected", "Node ready",
                        "SyncLoop ADD",      "Adopted pod",      "Ready"};
  double start = -1;
  std::printf("  the new agent's log (first and last of each, from its start):\n");
  for (const char* key : keys) {
    std::string needle = std::string("\"") + key + "\"";
    size_t first = log.find(needle), last = log.rfind(needle);
    if (first == std::string::npos) {
      continue;
    }
    auto at = [&](size_t pos) { return klogSeconds(log.substr(log.rfind('\n', pos) + 1)); };
    if (start < 0) {
      start = at(first);
    }
    std::printf("    %-18s %7.0f ms .. %7.0f ms\n", key, (at(first) - start) * 1000,
                (at(last) - start) * 1000);
  }
}

// From the first "SyncLoop ADD" to the last "Adopted pod" of an agent's log.
double adoptionMs(const std::string& log) {
  size_t first = log.find("\"SyncLoop ADD\""), last = log.rfind("\"Adopted pod\"");
  if (first == std::string::npos || last == std::string::npos) {
    return -1;
  }
  auto at = [&](size_t pos) { return klogSeconds(log.substr(log.rfind('\n', pos) + 1)); };
  return (at(last) - at(first)) * 1000;
}

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string kernelet, fixtures;
  int many = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--kernelet") kernelet = argv[i + 1];
    if (a == "--fixtures") fixtures = argv[i + 1];
    if (a == "--many") many = std::stoi(argv[i + 1]);
  }
  if (kernelet.empty() || fixtures.empty()) {
    std::cerr << "usage: restore_bench --kernelet PATH --fixtures DIR [--many M]\n";
    return 2;
  }
  fs::remove_all(kBase);
  fs::create_directories(kManifests);
  if (runCommand({kernelet, "images", "--root-dir", kRoot, "import", fixtures + "/oci/busybox"},
                 "/dev/null") != 0) {
    std::cerr << "image import failed\n";
    return 1;
  }
  std::string notify = kBase + "/notify.sock";
  int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{.sun_family = AF_UNIX};
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", notify.c_str());
  if (::bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("bind notify socket");
    return 1;
  }

  // 1. M pods at once.
  pid_t agent = startAgent(kernelet, notify);
  if (!awaitReady(nfd, std::chrono::seconds(60))) {
    std::cerr << "the agent never said READY=1\n" << slurp(kLog);
    return 1;
  }
  auto t0 = Clock::now();
  for (int i = 0; i < many; i++) {
    std::string name = "p" + std::to_string(i);
    std::ofstream(kBase + "/" + name + ".yaml") << podYaml(name);
    fs::rename(kBase + "/" + name + ".yaml", kManifests + "/" + name + ".yaml");
  }
  while (static_cast<int>(runningIds().size()) < many && secondsSince(t0) < 600) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double fresh_s = secondsSince(t0);
  auto ids = runningIds();
  if (static_cast<int>(ids.size()) < many) {
    std::cerr << "only " << ids.size() << " pods ran\n" << slurp(kLog);
    return 1;
  }

  // 2. SIGKILL, then adoption.
  stopAgent(agent, SIGKILL);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto written = fs::file_time_type::clock::now();
  size_t log_before = slurp(kLog).size();
  auto t1 = Clock::now();
  agent = startAgent(kernelet, notify);
  bool ready = awaitReady(nfd, std::chrono::seconds(120));
  double ready_s = secondsSince(t1);
  std::map<std::string, std::string> again;
  while ((again = runningIds(&written)).size() < ids.size() && secondsSince(t1) < 120) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  double rewritten_s = secondsSince(t1);
  std::string adopt_log = slurp(kLog).substr(log_before);
  int same = 0;
  for (const auto& [pod, id] : again) {
    same += ids[pod] == id ? 1 : 0;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ProcStat agent_stat = procStat(agent);
  pid_t holder = holderPid();
  ProcStat holder_stat = holder > 0 ? procStat(holder) : ProcStat{};

  // 3. The peer: a "reboot" (nothing left to adopt), every pod started anew.
  stopAgent(agent, SIGKILL);
  std::ofstream("/sys/fs/cgroup/kubepods/cgroup.kill") << "1";
  if (holder > 0) {
    ::kill(holder, SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto t2 = Clock::now();
  size_t log_reboot = slurp(kLog).size();
  agent = startAgent(kernelet, "", {"--stop-pods-on-exit"});
  auto restarted_after = fs::file_time_type::clock::now();
  std::map<std::string, std::string> fresh;
  while ((fresh = runningIds(&restarted_after)).size() < ids.size() && secondsSince(t2) < 600) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double reboot_s = secondsSince(t2);
  std::string reboot_log = slurp(kLog).substr(log_reboot);
  int st = stopAgent(agent, SIGTERM);

  std::printf("%d pods at once, fresh: all Running after %.2f s\n", many, fresh_s);
  std::printf("agent SIGKILLed and started again with %d pods running:\n", many);
  std::printf("  READY=1 (every pod adopted) after %.0f ms from the agent's exec%s\n",
              ready_s * 1000, ready ? "" : " (NEVER SENT)");
  std::printf(
      "  adoption, the first pod's ADD to the last pod adopted: %.0f ms (target < 1000 ms)\n",
      adoptionMs(adopt_log));
  std::printf("  every status rewritten after  %.0f ms; %d of %zu pods kept their container\n",
              rewritten_s * 1000, same, ids.size());
  printMilestones(adopt_log);
  std::printf("  agent RSS after adopting: %.1f MiB; holder RSS: %.1f MiB\n",
              agent_stat.rss_kib / 1024.0, holder_stat.rss_kib / 1024.0);
  std::printf("peer: after a reboot (nothing to adopt), all %zu Running again after %.2f s\n",
              fresh.size(), reboot_s);
  printMilestones(reboot_log.substr(0, reboot_log.find("\"Container started\"")));
  std::printf("  ratio adoption/restart-from-scratch: %.3fx\n", rewritten_s / reboot_s);
  std::printf("  agent exit after SIGTERM (--stop-pods-on-exit): %d\n",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return ready && same == many ? 0 : 1;
}
