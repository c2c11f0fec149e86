// Container start cost, kernelet against crun and runc on the very same bundle:
// N sequential `/bin/true` containers per runner, interleaved so that drift of
// the machine hits all runners alike. Prints each runner's median and the ratios
// to crun. Run it in the test VM (cgroup v2): bench/run-container-start.
//
//   container_start_bench --kernelet PATH --rootfs DIR [-n N]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "isolation/oci_container.h"

namespace {

using kernelet::bench::median;
using kernelet::bench::runCommand;
using kernelet::bench::writeBundle;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  std::string kernelet, rootfs;
  int n = 20;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--kernelet" && i + 1 < argc) {
      kernelet = argv[++i];
    } else if (a == "--rootfs" && i + 1 < argc) {
      rootfs = argv[++i];
    } else if (a == "-n" && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else {
      std::cerr << "usage: container_start_bench --kernelet PATH --rootfs DIR [-n N]\n";
      return 2;
    }
  }
  if (kernelet.empty() || rootfs.empty()) {
    std::cerr << "usage: container_start_bench --kernelet PATH --rootfs DIR [-n N]\n";
    return 2;
  }
  char tmpl[] = "/tmp/kernelet-bench.XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string bundle = dir + "/bundle";
  writeBundle(bundle, fs::absolute(rootfs), "\"/bin/true\"");

  int seq = 0;
  auto id = [&] { return "bench" + std::to_string(seq++); };
  std::vector<std::pair<std::string, std::function<int()>>> runners = {
      {"crun run",
       [&] {
         return runCommand({"crun", "--root", dir + "/crun", "run", "-b", bundle, id()});
       }},
      {"runc run",
       [&] {
         return runCommand({"runc", "--root", dir + "/runc", "run", "-b", bundle, id()});
       }},
      {"kernelet oci run",
       [&] {
         return runCommand(
             {kernelet, "oci", "--root", dir + "/kernelet", "run", "-b", bundle, id()});
       }},
      {"kernelet library",
       [&] {
         // What the agent does per container: no CLI, no fork of a runtime.
         std::string cid = id();
         auto c = kernelet::isolation::oci::create(dir + "/lib", cid, bundle);
         if (!c) {
           std::cerr << c.error().message() << "\n";
           return 1;
         }
         auto status = c->process.wait();
         auto removed = kernelet::isolation::oci::remove(dir + "/lib", cid, true);
         return status && removed ? status->shellStatus() : 1;
       }},
  };
  std::map<std::string, std::vector<double>> ms;
  // One warm-up round: page cache, first cgroup creation.
  for (auto& [name, run] : runners) {
    if (run() != 0) {
      std::cerr << name << ": warm-up run failed\n";
      return 1;
    }
  }
  for (int i = 0; i < n; i++) {
    for (auto& [name, run] : runners) {
      auto t0 = Clock::now();
      int rc = run();
      auto t1 = Clock::now();
      if (rc != 0) {
        std::cerr << name << ": run " << i << " exited " << rc << "\n";
        return 1;
      }
      ms[name].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  }
  double crun = median(ms["crun run"]);
  std::printf("container start, /bin/true, %d sequential runs each, interleaved (median):\n", n);
  for (auto& [name, run] : runners) {
    double m = median(ms[name]);
    std::printf("  %-18s %8.2f ms   %5.2fx crun\n", name.c_str(), m, m / crun);
  }
  fs::remove_all(dir);
  return 0;
}
