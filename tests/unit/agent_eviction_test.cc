// The eviction manager's rules over measured numbers: signals against hard
// and soft thresholds, grace and transition periods, minimum reclaim, the
// kubelet's ranking, its messages and local storage checks; and the new
// settings as the file and flags give them.
#include <gtest/gtest.h>

#include "agent/config/config.h"
#include "agent/eviction/ranking.h"
#include "agent/eviction/thresholds.h"
#include "support/temp_dir.h"

namespace kernelet::agent::eviction {
namespace {

using std::chrono::seconds;
constexpr int64_t kMi = 1 << 20;

AgentConfig configWith(std::map<std::string, Threshold> hard) {
  AgentConfig c;
  c.eviction_hard = std::move(hard);
  return c;
}

Observations memory(int64_t available, int64_t capacity = 1024 * kMi) {
  return {{"memory.available", {available, capacity}}};
}

TEST(EvictionThresholds, HardMemoryThresholdIsMetBelowItsQuantityOrPercent) {
  Rule q{"memory.available", {.quantity = 100 * kMi}};
  EXPECT_TRUE(met(q, memory(99 * kMi), false));
  EXPECT_FALSE(met(q, memory(100 * kMi), false));
  Rule p{"memory.available", {.percent = 10}};
  EXPECT_TRUE(met(p, memory(100 * kMi), false));  // 10% of 1Gi is 102.4Mi
  EXPECT_FALSE(met(p, memory(103 * kMi), false));
  EXPECT_FALSE(met(q, Observations{}, false)) << "a signal not observed is never met";
}

TEST(EvictionThresholds, SoftThresholdActsOnlyAfterItsGracePeriod) {
  AgentConfig c = configWith({});
  c.eviction_soft["memory.available"] = {.quantity = 200 * kMi};
  c.eviction_soft_grace_seconds["memory.available"] = 30;
  Tracker t(rulesOf(c), seconds(300));
  Clock::time_point t0{};
  auto out = t.observe(memory(150 * kMi), t0 + seconds(1));
  EXPECT_EQ(out.met.size(), 1u);
  EXPECT_TRUE(out.actionable.empty()) << "met, but not for 30 s yet";
  EXPECT_TRUE(out.pressure.memory) << "the condition does not wait for the grace period";
  out = t.observe(memory(150 * kMi), t0 + seconds(20));
  EXPECT_TRUE(out.actionable.empty());
  out = t.observe(memory(150 * kMi), t0 + seconds(31));
  ASSERT_EQ(out.actionable.size(), 1u);
  EXPECT_FALSE(out.actionable[0].hard);
  // Cleared in between: the grace period counts again from the next crossing.
  t.observe(memory(500 * kMi), t0 + seconds(32));
  out = t.observe(memory(150 * kMi), t0 + seconds(40));
  EXPECT_TRUE(out.actionable.empty());
}

TEST(EvictionThresholds, MinimumReclaimKeepsAThresholdMetUntilThatMuchMoreIsFree) {
  AgentConfig c = configWith({{"memory.available", {.quantity = 100 * kMi}}});
  c.eviction_minimum_reclaim["memory.available"] = {.quantity = 50 * kMi};
  Tracker t(rulesOf(c), seconds(0));
  Clock::time_point t0{};
  EXPECT_EQ(t.observe(memory(90 * kMi), t0).actionable.size(), 1u);
  EXPECT_EQ(t.observe(memory(120 * kMi), t0 + seconds(1)).actionable.size(), 1u)
      << "above the threshold, but not by the minimum reclaim";
  EXPECT_TRUE(t.observe(memory(151 * kMi), t0 + seconds(2)).actionable.empty());
  EXPECT_TRUE(t.observe(memory(120 * kMi), t0 + seconds(3)).actionable.empty())
      << "once resolved, only the threshold itself counts again";
}

TEST(EvictionThresholds, PressureConditionHoldsForTheTransitionPeriod) {
  Tracker t(rulesOf(configWith({{"memory.available", {.quantity = 100 * kMi}},
                                {"pid.available", {.percent = 10}}})),
            seconds(60));
  Clock::time_point t0{};
  auto out = t.observe(memory(10 * kMi), t0);
  EXPECT_TRUE(out.pressure.memory);
  EXPECT_FALSE(out.pressure.disk);
  EXPECT_FALSE(out.pressure.pid);
  EXPECT_TRUE(t.observe(memory(900 * kMi), t0 + seconds(59)).pressure.memory);
  EXPECT_FALSE(t.observe(memory(900 * kMi), t0 + seconds(60)).pressure.memory);
  Observations pids{{"pid.available", {100, 32768}}};
  EXPECT_TRUE(t.observe(pids, t0 + seconds(61)).pressure.pid);
}

TEST(EvictionThresholds, DiskSignalsMapToDiskPressureAndTheirResources) {
  EXPECT_EQ(conditionOf("nodefs.available"), "DiskPressure");
  EXPECT_EQ(conditionOf("imagefs.inodesFree"), "DiskPressure");
  EXPECT_EQ(conditionOf("pid.available"), "PIDPressure");
  EXPECT_EQ(resourceOf("nodefs.available"), "ephemeral-storage");
  EXPECT_EQ(resourceOf("nodefs.inodesFree"), "inodes");
  EXPECT_EQ(resourceOf("pid.available"), "pids");
  std::vector<Rule> both{{"nodefs.available", {.percent = 10}},
                         {"memory.available", {.quantity = 1}}};
  EXPECT_EQ(toReclaim(both)->signal, "memory.available") << "memory goes first";
}

TEST(EvictionAdmission, UnderPressureTheKubeletsPodsAreRefused) {
  Pressure none, memory{.memory = true}, disk{.disk = true}, both{.memory = true, .disk = true};
  EXPECT_FALSE(admissionRejection(none, true, false));
  EXPECT_FALSE(admissionRejection(memory, false, false)) << "only BestEffort under memory";
  EXPECT_EQ(admissionRejection(memory, true, false).value_or(""),
            "The node had condition: [MemoryPressure]. ");
  EXPECT_EQ(admissionRejection(disk, false, false).value_or(""),
            "The node had condition: [DiskPressure]. ");
  EXPECT_EQ(admissionRejection(both, false, false).value_or(""),
            "The node had condition: [MemoryPressure DiskPressure]. ");
  EXPECT_FALSE(admissionRejection(both, true, true)) << "critical and static pods are admitted";
}

PodUsage pod(const std::string& name, int64_t usage, int64_t request, int32_t priority = 0) {
  PodUsage p;
  p.uid = name;
  p.namespace_ = "default";
  p.name = name;
  p.priority = priority;
  p.has_stats = true;
  p.memory = usage;
  ContainerUsage c;
  c.name = "app";
  c.memory = usage;
  c.memory_request = request;
  c.memory_request_text = request == 0 ? "0" : std::to_string(request / kMi) + "Mi";
  p.containers.push_back(c);
  return p;
}

std::vector<std::string> names(const std::vector<PodUsage>& pods, const std::string& resource) {
  std::vector<std::string> out;
  for (size_t i : rank(resource, pods)) {
    out.push_back(pods[i].name);
  }
  return out;
}

TEST(EvictionRanking, MemoryOverRequestFirstThenPriorityThenUsageOverRequest) {
  // The issue's case: a Guaranteed pod at its request, a small BestEffort
  // one, and a Burstable one far over its request.
  std::vector<PodUsage> pods{pod("guaranteed", 200 * kMi, 256 * kMi), pod("besteffort", 5 * kMi, 0),
                             pod("burstable", 900 * kMi, 64 * kMi)};
  EXPECT_EQ(names(pods, "memory"),
            (std::vector<std::string>{"burstable", "besteffort", "guaranteed"}));
  // Over its request but of a higher priority: after the others over theirs.
  pods[2].priority = 1000;
  EXPECT_EQ(names(pods, "memory"),
            (std::vector<std::string>{"besteffort", "burstable", "guaranteed"}));
  // A pod without stats goes last.
  pods.push_back(pod("unmeasured", 0, 0));
  pods.back().has_stats = false;
  EXPECT_EQ(names(pods, "memory").back(), "unmeasured");
}

TEST(EvictionRanking, DiskByUsageOfTheResourceAndPidsByPriorityThenProcesses) {
  std::vector<PodUsage> pods{pod("a", 0, 0), pod("b", 0, 0), pod("c", 0, 0)};
  pods[0].volumes.push_back({"small", 10 * kMi});
  pods[1].volumes.push_back({"big", 300 * kMi});
  pods[2].volumes.push_back({"mem", 900 * kMi, /*local_ephemeral=*/false});
  EXPECT_EQ(names(pods, "ephemeral-storage"), (std::vector<std::string>{"b", "a", "c"}));
  pods[0].inodes = 5000;
  pods[1].inodes = 10;
  EXPECT_EQ(names(pods, "inodes").front(), "a");
  pods[0].processes = 10;
  pods[1].processes = 500;
  pods[2].processes = 1000;
  pods[2].priority = 10;
  EXPECT_EQ(names(pods, "pids"), (std::vector<std::string>{"b", "a", "c"}));
}

TEST(EvictionMessages, NameTheResourceThresholdAndEachContainerOverItsRequest) {
  PodUsage p = pod("burstable", 300 * kMi, 64 * kMi);
  ContainerUsage quiet;
  quiet.name = "sidecar";
  quiet.memory = 1 * kMi;
  quiet.memory_request = 8 * kMi;
  quiet.memory_request_text = "8Mi";
  p.containers.push_back(quiet);
  EXPECT_EQ(evictionMessage("memory", p, 100 * kMi, 90 * kMi),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 90Mi. "
            "Container app was using 300Mi, request is 64Mi, has larger consumption of memory. ");
  PodUsage d = pod("disk", 0, 0);
  d.containers[0].disk = 2048 * 1024;
  EXPECT_EQ(evictionMessage("ephemeral-storage", d, 1024 * kMi, 1000 * kMi),
            "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, "
            "available: 1000Mi. Container app was using 2Mi, request is 0, has larger "
            "consumption of ephemeral-storage. ");
  EXPECT_EQ(evictionMessage("pids", d, 100, 42),
            "The node was low on resource: pids. Threshold quantity: 100, available: 42. ");
}

TEST(EvictionLocalStorage, EmptyDirOverSizeLimitPodAndContainerOverTheirLimits) {
  PodUsage p = pod("p", 0, 0);
  p.volumes.push_back({"scratch", 20 * kMi, true, 10 * kMi, "10Mi"});
  EXPECT_EQ(localStorageViolation(p).value_or("(none)"),
            "Usage of EmptyDir volume \"scratch\" exceeds the limit \"10Mi\". ");
  p.volumes[0].used = 10 * kMi;
  EXPECT_FALSE(localStorageViolation(p)) << "at the limit is within it";
  p.containers[0].disk_limit = 15 * kMi;
  p.containers[0].disk_limit_text = "15Mi";
  p.containers[0].disk = 6 * kMi;
  EXPECT_EQ(localStorageViolation(p).value_or("(none)"),
            "Pod ephemeral local storage usage exceeds the total limit of containers 15Mi. ");
  p.volumes.clear();
  p.containers[0].disk = 16 * kMi;
  EXPECT_EQ(localStorageViolation(p).value_or("(none)"),
            "Pod ephemeral local storage usage exceeds the total limit of containers 15Mi. ")
      << "the pod's check comes before the container's, as the kubelet's";
  PodUsage two = pod("two", 0, 0);
  two.containers[0].disk_limit = 15 * kMi;
  two.containers[0].disk_limit_text = "15Mi";
  two.containers[0].disk = 16 * kMi;
  two.containers.push_back(two.containers[0]);
  two.containers[1].name = "other";
  two.containers[1].disk = 0;
  EXPECT_EQ(localStorageViolation(two).value_or("(none)"),
            "Container app exceeded its local ephemeral storage limit \"15Mi\". ");
}

TEST(EvictionSettings, FileFieldsAndErrorsNameTheField) {
  testing::TempDir d;
  std::string header = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
  AgentConfig c;
  ASSERT_TRUE(loadKubeletConfiguration(
      d.write("ok.yaml", header + R"(evictionSoft: {memory.available: 1Gi, nodefs.available: 15%}
evictionSoftGracePeriod: {memory.available: 1m30s, nodefs.available: 2m}
evictionMaxPodGracePeriod: 60
evictionMinimumReclaim: {memory.available: 0Mi, nodefs.available: 500Mi}
evictionPressureTransitionPeriod: 30s
)"),
      c));
  EXPECT_EQ(c.eviction_soft.at("memory.available").quantity.value_or(-1), 1 << 30);
  EXPECT_EQ(c.eviction_soft.at("nodefs.available").percent.value_or(-1), 15);
  EXPECT_EQ(c.eviction_soft_grace_seconds.at("memory.available"), 90);
  EXPECT_EQ(c.eviction_max_pod_grace_seconds, 60);
  EXPECT_EQ(c.eviction_minimum_reclaim.at("nodefs.available").quantity.value_or(-1), 500 * kMi);
  EXPECT_EQ(c.eviction_pressure_transition_seconds, 30);
  EXPECT_EQ(AgentConfig{}.eviction_pressure_transition_seconds, 300) << "the kubelet's 5m";

  auto error = [&](const std::string& body) {
    AgentConfig c;
    auto r = loadKubeletConfiguration(d.write("bad.yaml", header + body), c);
    return r ? std::string("(loaded)") : r.error().message();
  };
  EXPECT_NE(error("evictionSoft: {memory.available: 1Gi}\n")
                .find("grace period must be specified for the soft eviction threshold "
                      "memory.available"),
            std::string::npos);
  EXPECT_NE(error("evictionSoft: {nodefs.available: 120%}\nevictionSoftGracePeriod: "
                  "{nodefs.available: 1m}\n")
                .find("evictionSoft.nodefs.available"),
            std::string::npos);
  EXPECT_NE(error("evictionSoftGracePeriod: {memory.available: soon}\n")
                .find("evictionSoftGracePeriod.memory.available"),
            std::string::npos);
  EXPECT_NE(error("evictionMinimumReclaim: {memory.avail: 1Mi}\n")
                .find("evictionMinimumReclaim.memory.avail: unknown signal"),
            std::string::npos);
  EXPECT_NE(error("evictionMaxPodGracePeriod: -1\n").find("evictionMaxPodGracePeriod"),
            std::string::npos);
  EXPECT_NE(error("evictionPressureTransitionPeriod: 5 minutes\n")
                .find("evictionPressureTransitionPeriod"),
            std::string::npos);
}

TEST(EvictionSettings, FlagForms) {
  auto grace = parseEvictionGracePeriods("memory.available=1m30s,pid.available=10s",
                                         "--eviction-soft-grace-period");
  ASSERT_TRUE(grace) << grace.error().message();
  EXPECT_EQ(grace->at("memory.available"), 90);
  EXPECT_EQ(grace->at("pid.available"), 10);
  auto bad = parseEvictionGracePeriods("memory.available=-1s", "--eviction-soft-grace-period");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("must be a positive value"), std::string::npos);
  auto reclaim = parseEvictionMinimumReclaim("nodefs.available=500Mi,imagefs.available=2Gi",
                                             "--eviction-minimum-reclaim");
  ASSERT_TRUE(reclaim);
  EXPECT_EQ(reclaim->at("imagefs.available").quantity.value_or(-1), int64_t{2} << 30);
  EXPECT_FALSE(parseEvictionMinimumReclaim("nodefs.available<500Mi", "--eviction-minimum-reclaim"));
}

}  // namespace
}  // namespace kernelet::agent::eviction
