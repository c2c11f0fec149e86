// agent/stats against the real cgroup v2 of the test VM: a process that holds
// memory and one that burns CPU in a pod's container group, and the Summary
// API and /metrics/resource built from the real interface files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "agent/stats/cpu_sampler.h"
#include "agent/stats/metrics_text.h"
#include "agent/stats/summary.h"
#include "cgroups/cgroups.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "support/temp_dir.h"

namespace kernelet::agent::stats {
namespace {

using namespace std::chrono_literals;

std::string helper(const char* name) { return std::string(KERNELET_HELPERS_DIR) + "/" + name; }

// Forks a helper straight into `group` (cgroup.procs before exec).
pid_t spawnIn(cgroups::Cgroup& group, std::vector<std::string> argv) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return -1;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    char go;
    (void)::read(ready[0], &go, 1);
    std::vector<char*> args = kernelet::testing::argvOf(argv);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(ready[0]);
  EXPECT_TRUE(group.addProcess(pid));
  (void)::write(ready[1], "g", 1);
  ::close(ready[1]);
  return pid;
}

class StatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    auto h = cgroups::detect();
    ASSERT_TRUE(h) << h.error().message();
    mount_ = h->mount;
    root_ = "kernelet-stats-test-" + std::to_string(::getpid());
    ASSERT_TRUE(cgroups::ensureQosTree(mount_, root_));
    pod_cgroup_ = cgroups::podCgroupPath(root_, cgroups::QosClass::kBurstable, "u1");
    auto pod = cgroups::Cgroup::create(mount_, pod_cgroup_);
    ASSERT_TRUE(pod) << pod.error().message();
    ASSERT_TRUE(pod->enableControllers({"cpu", "memory", "pids"}));
    auto c = cgroups::Cgroup::create(mount_, pod_cgroup_ + "/c1");
    ASSERT_TRUE(c) << c.error().message();
    ctr_ = std::move(*c);
  }
  void TearDown() override {
    for (pid_t p : pids_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    if (!root_.empty()) {
      if (auto top = cgroups::Cgroup::open(mount_, root_)) {
        auto r = top->remove();
        EXPECT_TRUE(r) << r.error().message();
      }
    }
  }

  NodeSnapshot snapshot() const {
    PodSnapshot p;
    p.uid = "u1";
    p.namespace_ = "default";
    p.name = "busy";
    p.cgroup_path = pod_cgroup_;
    p.status.phase = "Running";
    ContainerStatus cs;
    cs.name = "app";
    cs.container_id = "kernelet://c1";
    cs.state.kind = ContainerState::Kind::kRunning;
    cs.state.started_at = "2026-11-30T10:00:00Z";
    p.status.container_statuses.push_back(cs);
    NodeSnapshot n;
    n.pods["u1"] = std::make_shared<PodSnapshot>(p);
    return n;
  }

  SummarySources sources() const {
    SummarySources s;
    s.node_name = "vm";
    s.cgroup_mount = mount_;
    s.root_dir = dir_.path();
    s.pod_log_dir = dir_.path();
    return s;
  }

  std::string mount_, root_, pod_cgroup_;
  cgroups::Cgroup ctr_;
  std::vector<pid_t> pids_;
  kernelet::testing::TempDir dir_;
};

TEST_F(StatsTest, RealGroupsShowWorkingSetAndGrowingCpu) {
  pids_.push_back(spawnIn(ctr_, {helper("kt-alloc"), "24"}));
  pids_.push_back(spawnIn(ctr_, {helper("kt-spin")}));
  auto snap = snapshot();
  CpuSampler sampler;
  // kt-alloc touches 24 MiB one at a time: the counter is the only signal.
  auto deadline = Clock::now() + 60s;
  Summary first;
  do {
    first = buildSummary(sources(), snap, sampler, nullptr, Clock::now());
    ASSERT_EQ(first.pods.size(), 1u);
    ASSERT_EQ(first.pods[0].containers.size(), 1u);
  } while (*first.pods[0].containers[0].memory->working_set_bytes < (20u << 20) &&
           Clock::now() < deadline);
  const auto& c1 = first.pods[0].containers[0];
  EXPECT_GE(*c1.memory->working_set_bytes, 20u << 20);
  // The pod's group holds the container's (read a moment before it, while
  // kt-alloc may still be growing: not compared byte for byte).
  EXPECT_GE(*first.pods[0].memory->working_set_bytes, 16u << 20);
  EXPECT_GT(*c1.memory->rss_bytes, 0u);
  EXPECT_EQ(first.pods[0].process_count, 2u);
  EXPECT_GT(*first.node.memory->working_set_bytes, 0u);
  ASSERT_TRUE(first.node.cpu);

  // CPU grows while kt-spin runs; the rate needs the window (1 s) to pass.
  // The counters move at the scheduler's ticks: a read right after the first
  // (the window may have passed already) can find them where they were.
  uint64_t before = *c1.cpu->usage_core_nano_seconds;
  uint64_t node_before = *first.node.cpu->usage_core_nano_seconds;
  Summary second;
  do {
    second = buildSummary(sources(), snap, sampler, nullptr, Clock::now());
  } while ((!second.pods[0].containers[0].cpu->usage_nano_cores ||
            *second.pods[0].containers[0].cpu->usage_core_nano_seconds <= before ||
            *second.node.cpu->usage_core_nano_seconds <= node_before) &&
           Clock::now() < deadline);
  const auto& c2 = second.pods[0].containers[0];
  EXPECT_GT(*c2.cpu->usage_core_nano_seconds, before);
  ASSERT_TRUE(c2.cpu->usage_nano_cores);
  // One spinning thread on a shared, emulated CPU: clearly more than nothing.
  EXPECT_GT(*c2.cpu->usage_nano_cores, 50000000u);
  EXPECT_GT(*second.node.cpu->usage_core_nano_seconds, node_before);

  std::string text = resourceMetricsText(second, false);
  EXPECT_NE(text.find("container_memory_working_set_bytes{container=\"app\",namespace=\"default\","
                      "pod=\"busy\"}"),
            std::string::npos)
      << text;
}

// The VM's kernel (Debian's, CONFIG_PSI=y and on, swap accounting with the
// memory controller) writes the pressure and swap files the Summary carries:
// each is there for the pod and its container, read from the real files.
TEST_F(StatsTest, RealGroupsShowPressureAndSwap) {
  if (::access("/proc/pressure/cpu", F_OK) != 0) {
    GTEST_SKIP() << "this kernel has no PSI (/proc/pressure)";
  }
  pids_.push_back(spawnIn(ctr_, {helper("kt-spin")}));
  ASSERT_TRUE(ctr_.write("memory.swap.max", std::to_string(64 << 20)));
  auto snap = snapshot();
  CpuSampler sampler;
  const Summary s = buildSummary(sources(), snap, sampler, nullptr, Clock::now());
  ASSERT_EQ(s.pods.size(), 1u);
  ASSERT_EQ(s.pods[0].containers.size(), 1u);
  const PodStats& pod = s.pods[0];
  const ContainerStats& c = pod.containers[0];
  for (const auto* cpu : {&pod.cpu, &c.cpu, &s.node.cpu}) {
    ASSERT_TRUE(*cpu && (*cpu)->psi);
  }
  for (const auto* mem : {&pod.memory, &c.memory, &s.node.memory}) {
    ASSERT_TRUE(*mem && (*mem)->psi);
  }
  for (const auto* io : {&pod.io, &c.io, &s.node.io}) {
    ASSERT_TRUE(*io && (*io)->psi);
  }
  // The VM has stalled on its emulated CPUs since boot.
  EXPECT_GT(s.node.cpu->psi->some.total, 0u);
  // No swap device in the VM: nothing swapped, but the accounting is there.
  ASSERT_TRUE(c.swap);
  EXPECT_EQ(c.swap->swap_usage_bytes, 0u);
  EXPECT_EQ(c.swap->swap_available_bytes, 64u << 20);  // the limit just set
  ASSERT_TRUE(pod.swap);
  EXPECT_EQ(pod.swap->swap_usage_bytes, 0u);
  EXPECT_FALSE(pod.swap->swap_available_bytes);  // "max": no limit
  ASSERT_TRUE(s.node.swap);

  std::string json = summaryJson(s);
  for (const char* want :
       {"\"psi\":{\"full\":{\"total\":", "\"io\":{\"time\":", "\"swap\":{\"time\":"}) {
    EXPECT_NE(json.find(want), std::string::npos) << want << " in " << json;
  }
}

}  // namespace
}  // namespace kernelet::agent::stats
