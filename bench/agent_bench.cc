// Pod start with `kernelet run` against `crun run` of the same container alone,
// in one run of the test VM (bench/run-agent-start):
//   1. N pods, one after another: the time from the manifest appearing in the
//      watched dir to the agent's "Container started" event (its own klog
//      timestamp), median, against `crun run --detach` of the same command in
//      the same rootfs (its wall time), interleaved.
//   2. M pods at once: time until every status says Running, then the agent's
//      RSS and its CPU use over 10 s of idling with the M pods.
//
//   agent_bench --kernelet PATH --fixtures DIR [-n N] [--many M]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace {

using kernelet::bench::median;
using kernelet::bench::ProcStat;
using kernelet::bench::procStat;
using kernelet::bench::runCommand;
using kernelet::bench::slurp;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string podYaml(const std::string& name) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: "
         "fixtures.kernelet.test/busybox:latest\n    imagePullPolicy: Never\n    command: "
         "[kt-sleep, '600']\n";
}

int countRunning(const std::string& root) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + "/pods", ec)) {
    std::string s = slurp(e.path().string() + "/status.json");
    n += s.find("\"phase\": \"Running\"") != std::string::npos &&
                 s.find("\"ready\": true") != std::string::npos
             ? 1
             : 0;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string kernelet, fixtures;
  int n = 50, many = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--kernelet") kernelet = argv[i + 1];
    if (a == "--fixtures") fixtures = argv[i + 1];
    if (a == "-n") n = std::stoi(argv[i + 1]);
    if (a == "--many") many = std::stoi(argv[i + 1]);
  }
  if (kernelet.empty() || fixtures.empty()) {
    std::cerr << "usage: agent_bench --kernelet PATH --fixtures DIR [-n N] [--many M]\n";
    return 2;
  }
  std::string base = "/tmp/agent-bench";
  std::string root = base + "/root", manifests = base + "/manifests", log = base + "/agent.log";
  fs::remove_all(base);
  fs::create_directories(manifests);
  if (runCommand({kernelet, "images", "--root-dir", root, "import", fixtures + "/oci/busybox"},
                 "/dev/null") != 0) {
    std::cerr << "image import failed\n";
    return 1;
  }
  kernelet::bench::writeBundle(base + "/bundle", fixtures + "/rootfs/busybox",
                               "\"kt-sleep\", \"600\"");

  pid_t agent = ::fork();
  if (agent == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    ::dup2(fileno(f), 2);
    ::execl(kernelet.c_str(), kernelet.c_str(), "run", "--stop-pods-on-exit", "--pod-manifest-path",
            manifests.c_str(), "--root-dir", root.c_str(), "--hostname-override", "bench",
            "--max-pods", "250", "-v", "2", nullptr);
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));

  // 1. One pod at a time, interleaved with crun.
  kernelet::bench::AgentLog agent_log(log);
  std::vector<double> agent_ms, crun_ms;
  for (int i = 0; i < n; i++) {
    std::string name = "seq" + std::to_string(i);
    std::string tmp = base + "/" + name + ".yaml";
    std::ofstream(tmp) << podYaml(name);
    double written = kernelet::bench::timeOfDay();
    fs::rename(tmp, manifests + "/" + name + ".yaml");
    double started = -1;
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (started < 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      started = agent_log.startedAt(name + "-bench");
    }
    if (started < 0) {
      std::cerr << "pod " << name << " did not start\n" << slurp(log);
      return 1;
    }
    agent_ms.push_back((started - written) * 1000);

    std::string id = "crun-bench-" + std::to_string(i);
    auto t0 = Clock::now();
    int rc = runCommand({"crun", "run", "--detach", "--bundle", base + "/bundle", id}, "/dev/null");
    crun_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (rc != 0) {
      std::cerr << "crun run failed: " << rc << "\n";
      return 1;
    }
    runCommand({"crun", "delete", "--force", id}, "/dev/null");
  }
  // Take the sequential pods away before the burst.
  for (int i = 0; i < n; i++) {
    fs::remove(manifests + "/seq" + std::to_string(i) + ".yaml");
  }
  for (auto deadline = Clock::now() + std::chrono::seconds(120);
       countRunning(root) > 0 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // 2. Many pods at once.
  std::vector<std::string> staged;
  for (int i = 0; i < many; i++) {
    std::string tmp = base + "/burst" + std::to_string(i) + ".yaml";
    std::ofstream(tmp) << podYaml("burst" + std::to_string(i));
    staged.push_back(tmp);
  }
  auto burst0 = Clock::now();
  for (int i = 0; i < many; i++) {
    fs::rename(staged[i], manifests + "/burst" + std::to_string(i) + ".yaml");
  }
  while (countRunning(root) < many && Clock::now() - burst0 < std::chrono::seconds(600)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double burst_s = std::chrono::duration<double>(Clock::now() - burst0).count();
  int running = countRunning(root);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ProcStat before = procStat(agent);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  ProcStat after = procStat(agent);
  double idle_cpu = (after.cpu_seconds - before.cpu_seconds) / 10 * 100;

  ::kill(agent, SIGTERM);
  int st = 0;
  ::waitpid(agent, &st, 0);

  double a = median(agent_ms), c = median(crun_ms);
  std::printf("pod start, manifest -> container running (agent's klog time), %d pods one by one:\n",
              n);
  std::printf("  kernelet run   median %7.1f ms  (p90 %.1f ms)\n", a, [&] {
    auto v = agent_ms;
    std::sort(v.begin(), v.end());
    return v[v.size() * 9 / 10];
  }());
  std::printf("  crun run -d    median %7.1f ms  (same command, same rootfs, container alone)\n",
              c);
  std::printf("  ratio kernelet/crun: %.2fx (target <= 1.0x)\n", a / c);
  std::printf("%d pods at once: %d Running after %.1f s\n", many, running, burst_s);
  std::printf("  agent RSS with %d pods: %.1f MiB (target < 30 MiB)\n", many,
              after.rss_kib / 1024.0);
  std::printf("  agent CPU while idle with %d pods: %.2f%% of a core over 10 s (target < 1%%)\n",
              many, idle_cpu);
  std::printf("  agent exit after SIGTERM: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return 0;
}
