#pragma once
// A fake cgroup v2 mount, procfs and kernelet ROOT in a temp dir, and a
// snapshot of pods over them, for the stats tests: every number a test
// asserts is one it wrote here.

#include <filesystem>
#include <fstream>
#include <string>

#include "agent/stats/summary.h"
#include "agent/status/snapshot.h"
#include "support/temp_dir.h"

namespace kernelet::agent::stats::test {

class FakeNode {
 public:
  FakeNode() {
    for (const char* d : {"cgroup", "proc/1/net", "proc/sys/kernel", "root", "logs"}) {
      std::filesystem::create_directories(dir_.path() + "/" + d);
    }
    file("proc/meminfo",
         "MemTotal:        8000000 kB\nMemFree:         2000000 kB\n"
         "MemAvailable:    5000000 kB\nInactive(file):  1000000 kB\nAnonPages:  300000 kB\n");
    file("proc/stat",
         "cpu  100 0 50 1000 5 0 0 0 0 0\ncpu0 100 0 50 1000 5 0 0 0 0 0\n"
         "btime 1700000000\n");
    file("proc/sys/kernel/pid_max", "4194304\n");
    file("proc/1/net/dev", netDev(111, 1, 222, 2));
    group("", 5000000, std::nullopt, "anon 100\nfile 200\ninactive_file 1024000000\n");
  }

  static std::string netDev(uint64_t rx, uint64_t rx_err, uint64_t tx, uint64_t tx_err) {
    return "Inter-|   Receive                                                |  Transmit\n"
           " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
           "errs drop fifo colls carrier compressed\n"
           "    lo:     999       9    0    0    0     0          0         0      999       9 "
           "   0    0    0     0       0          0\n"
           "  eth0: " +
           std::to_string(rx) + " 10 " + std::to_string(rx_err) + " 0 0 0 0 0 " +
           std::to_string(tx) + " 20 " + std::to_string(tx_err) + " 0 0 0 0 0\n";
  }

  void file(const std::string& rel, const std::string& text) const {
    std::string p = dir_.path() + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p) << text;
  }

  // A group with cpu.stat, memory.current (unless nullopt), memory.stat.
  void group(const std::string& rel, uint64_t usage_usec, std::optional<uint64_t> current,
             const std::string& memory_stat, const std::string& max = "max") const {
    std::string g = "cgroup" + (rel.empty() ? std::string() : "/" + rel);
    file(g + "/cgroup.controllers", "cpu memory pids io\n");
    file(g + "/cpu.stat", "usage_usec " + std::to_string(usage_usec) + "\nuser_usec " +
                              std::to_string(usage_usec / 2) + "\nsystem_usec " +
                              std::to_string(usage_usec / 2) + "\nnr_periods 0\n");
    if (current) {
      file(g + "/memory.current", std::to_string(*current) + "\n");
      file(g + "/memory.max", max + "\n");
      file(g + "/pids.current", "3\n");
    }
    file(g + "/memory.stat", memory_stat);
  }

  SummarySources sources() const {
    SummarySources s;
    s.node_name = "node-a";
    s.cgroup_mount = dir_.path() + "/cgroup";
    s.proc = dir_.path() + "/proc";
    s.root_dir = dir_.path() + "/root";
    s.pod_log_dir = dir_.path() + "/logs";
    s.node_start = Clock::from_time_t(1700000000);
    return s;
  }

  const std::string& path() const { return dir_.path(); }

 private:
  kernelet::testing::TempDir dir_;
};

inline ContainerStatus running(const std::string& name, const std::string& id,
                               const std::string& started = "2026-11-30T10:00:00Z") {
  ContainerStatus cs;
  cs.name = name;
  cs.image = "busybox:latest";
  cs.container_id = "kernelet://" + id;
  cs.state.kind = ContainerState::Kind::kRunning;
  cs.state.started_at = started;
  return cs;
}

inline PodSnapshot pod(const std::string& uid, const std::string& name, const std::string& cgroup) {
  PodSnapshot p;
  p.uid = uid;
  p.namespace_ = "default";
  p.name = name;
  p.cgroup_path = cgroup;
  p.created = "2026-11-30T09:59:00Z";
  p.status.phase = "Running";
  p.status.start_time = "2026-11-30T09:59:30Z";
  return p;
}

}  // namespace kernelet::agent::stats::test
