// The eviction manager on a real node (the test VM): `kernelet run` with
// static pods under a hard memory.available threshold set just below what
// the VM has free, a growing Burstable pod beside a Guaranteed and a
// BestEffort one; a small tmpfs as the root dir filled by dd in an emptyDir;
// an emptyDir over its sizeLimit. What a user sees: the pods' status files
// (phase, reason, message, DisruptionTarget) and the agent's log.

#include <signal.h>
#include <sys/mount.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "support/privileged.h"
#include "support/static_agent.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";
constexpr int64_t kMi = 1 << 20;

// memory.available as the kubelet computes it on cgroup v2: MemTotal - (MemTotal
// - MemFree - the root group's inactive_file).
int64_t memoryAvailable() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0, free = -1;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemFree:") {
      free = kib * 1024;
      break;
    }
  }
  std::ifstream stat("/sys/fs/cgroup/memory.stat");
  int64_t value = 0, inactive_file = 0;
  while (stat >> key >> value) {
    if (key == "inactive_file") {
      inactive_file = value;
    }
  }
  return free + inactive_file;
}

std::string podYaml(const std::string& name, const std::string& command,
                    const std::string& resources, const std::string& volumes = "",
                    const std::string& mounts = "") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n"
         "  - name: app\n    image: " +
         kImage + "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + command + "']\n" +
         resources + mounts + volumes;
}

bool running(const agent::PodSummary& p) { return p.status.phase == "Running"; }
bool evicted(const agent::PodSummary& p) {
  return p.status.phase == "Failed" && p.status.reason == "Evicted";
}

// The status file as written (PodSummary leaves the conditions out).
std::string statusJson(const StaticAgent& agent, const agent::PodSummary& p) {
  return readFile(agent.root() + "/pods/" + p.uid + "/status.json").value_or("");
}

void expectDisruptionTarget(const StaticAgent& agent, const agent::PodSummary& p) {
  std::string json = statusJson(agent, p);
  size_t at = json.find("\"DisruptionTarget\"");
  ASSERT_NE(at, std::string::npos) << json;
  std::string rest = json.substr(at, json.find('}', at) - at);
  EXPECT_NE(rest.find("\"True\""), std::string::npos) << rest;
  EXPECT_NE(rest.find("\"TerminationByKubelet\""), std::string::npos) << rest;
}

class AgentEviction : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    agent_ = std::make_unique<StaticAgent>(KERNELET_BINARY, "eviction");
  }
  void TearDown() override {
    agent_.reset();
    if (!tmpfs_.empty()) {
      ::umount2(tmpfs_.c_str(), MNT_DETACH);
    }
  }
  void importBusybox() {
    auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox");
    ASSERT_FALSE(err) << *err;
  }
  void expectRunning(const std::string& name) {
    auto p = agent_->waitFor(name, running, seconds(120));
    ASSERT_TRUE(p) << name << " never ran\n" << agent_->log();
  }
  std::unique_ptr<StaticAgent> agent_;
  std::string tmpfs_;
};

// The memory case: the growing Burstable pod goes (usage over its
// request, the most over it), the Guaranteed one (under its request) and the
// BestEffort one stay, and so does the agent; MemoryPressure shows, then
// clears after the transition period; eviction starts within 2 s of the
// crossing.
TEST_F(AgentEviction, GrowingBurstablePodIsEvictedForMemoryAndTheOthersStay) {
  importBusybox();
  agent_->writeManifest("guaranteed.yaml",
                        podYaml("guaranteed", "exec kt-alloc 24",
                                "    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: "
                                "{cpu: 100m, memory: 64Mi}}\n"));
  agent_->writeManifest("besteffort.yaml", podYaml("besteffort", "exec kt-sleep 600", ""));
  // Free memory now, less what the agent and the two pods will take, less
  // 200Mi: the threshold the Burstable pod's 450 MiB crosses half way.
  int64_t threshold = memoryAvailable() - 260 * kMi;
  ASSERT_GT(threshold, 100 * kMi) << "the VM has too little memory free for this test";
  std::string hard = "memory.available<" + std::to_string(threshold / kMi) + "Mi";
  agent_->start({"--eviction-hard", hard, "--eviction-pressure-transition-period", "5s"}, 2);
  expectRunning("guaranteed");
  expectRunning("besteffort");
  agent_->writeManifest("burstable.yaml",
                        podYaml("burstable", "exec kt-alloc 450",
                                "    resources: {requests: {memory: 16Mi}, limits: "
                                "{memory: 600Mi}}\n"));
  // The test watches the signal itself, as often as it can, to time the crossing.
  std::optional<steady_clock::time_point> crossed, started;
  auto deadline = steady_clock::now() + seconds(180);
  while (steady_clock::now() < deadline && !started) {
    if (!crossed && memoryAvailable() < threshold) {
      crossed = steady_clock::now();
    }
    if (agent_->log().find("\"Evicting pod\"") != std::string::npos) {
      started = steady_clock::now();
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(started) << "no eviction\n" << agent_->log();
  ASSERT_TRUE(crossed) << "the eviction came before the test saw the crossing\n" << agent_->log();
  auto took = duration_cast<milliseconds>(*started - *crossed);
  std::printf("eviction started %lld ms after memory.available crossed %s\n",
              static_cast<long long>(took.count()), hard.c_str());
  EXPECT_LT(took, seconds(2));

  auto b = agent_->waitFor("burstable", evicted, seconds(60));
  ASSERT_TRUE(b) << agent_->log();
  EXPECT_NE(b->status.message.find("The node was low on resource: memory. Threshold quantity: "),
            std::string::npos)
      << b->status.message;
  EXPECT_NE(b->status.message.find("Container app was using "), std::string::npos)
      << b->status.message;
  EXPECT_NE(b->status.message.find(", request is 16Mi, has larger consumption of memory. "),
            std::string::npos)
      << b->status.message;
  expectDisruptionTarget(*agent_, *b);

  std::string log = agent_->log();
  EXPECT_NE(log.find("condition=\"MemoryPressure\" status=\"True\""), std::string::npos) << log;
  // Cleared once memory came back and the 5 s transition period passed.
  auto clear_deadline = steady_clock::now() + seconds(60);
  while (steady_clock::now() < clear_deadline &&
         agent_->log().find("condition=\"MemoryPressure\" status=\"False\"") == std::string::npos) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_NE(agent_->log().find("condition=\"MemoryPressure\" status=\"False\""), std::string::npos)
      << agent_->log();
  for (const char* name : {"guaranteed", "besteffort"}) {
    auto p = agent_->pod(name);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->status.phase, "Running") << name << "\n" << agent_->log();
  }
  EXPECT_EQ(::kill(agent_->pid(), 0), 0) << "the agent itself lives";
}

// nodefs.available on a 64 MiB tmpfs root dir: the pod that fills its
// emptyDir is evicted, the quiet one beside it stays.
TEST_F(AgentEviction, EmptyDirFilledPastNodefsAvailableEvictsOnlyThatPod) {
  tmpfs_ = agent_->root();
  fs::create_directories(tmpfs_);
  ASSERT_EQ(::mount("tmpfs", tmpfs_.c_str(), "tmpfs", 0, "size=64m"), 0) << std::strerror(errno);
  importBusybox();
  std::string volume = "  volumes:\n  - {name: scratch, emptyDir: {}}\n";
  std::string mount = "    volumeMounts: [{name: scratch, mountPath: /scratch}]\n";
  agent_->writeManifest(
      "quiet.yaml",
      podYaml("quiet", "dd if=/dev/zero of=/scratch/f bs=1M count=1; exec kt-sleep 600", "", volume,
              mount));
  agent_->start({"--eviction-hard", "nodefs.available<24Mi"}, 2);
  expectRunning("quiet");
  agent_->writeManifest(
      "filler.yaml",
      podYaml("filler", "dd if=/dev/zero of=/scratch/f bs=1M count=40; exec kt-sleep 600", "",
              volume, mount));
  auto f = agent_->waitFor("filler", evicted, seconds(90));
  ASSERT_TRUE(f) << agent_->log();
  EXPECT_NE(f->status.message.find("The node was low on resource: ephemeral-storage. "),
            std::string::npos)
      << f->status.message;
  auto q = agent_->pod("quiet");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->status.phase, "Running") << agent_->log();
  EXPECT_NE(agent_->log().find("condition=\"DiskPressure\" status=\"True\""), std::string::npos);
}

TEST_F(AgentEviction, EmptyDirOverItsSizeLimitEvictsItsPod) {
  importBusybox();
  agent_->writeManifest(
      "limited.yaml",
      podYaml("limited", "dd if=/dev/zero of=/scratch/f bs=1M count=12; exec kt-sleep 600", "",
              "  volumes:\n  - {name: scratch, emptyDir: {sizeLimit: 8Mi}}\n",
              "    volumeMounts: [{name: scratch, mountPath: /scratch}]\n"));
  agent_->start({}, 2);
  auto p = agent_->waitFor("limited", evicted, seconds(90));
  ASSERT_TRUE(p) << agent_->log();
  EXPECT_EQ(p->status.message, "Usage of EmptyDir volume \"scratch\" exceeds the limit \"8Mi\". ");
  expectDisruptionTarget(*agent_, *p);
}

}  // namespace
}  // namespace kernelet
