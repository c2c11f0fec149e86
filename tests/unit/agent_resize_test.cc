// In-place pod resize (issue #20, KEP 1287 as in Kubernetes 1.35): the
// decisions (fits, Deferred, Infeasible; which containers restart; a memory
// limit below usage), resizePolicy's decoding, the allocation checkpoint, and
// the pod worker applying a resize through the fake runtime: cpu live, memory
// with RestartContainer by a restart, the status and conditions a user sees,
// and an agent restart in the middle of a resize.
#include <tuple>

#include "agent/lifecycle/allocation_checkpoint.h"
#include "agent/lifecycle/resize.h"
#include "agent/runtime/pod_sandbox.h"
#include "support/temp_dir.h"
#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono_literals;

apiclient::Quantity q(const std::string& s) { return apiclient::Quantity::parse(s).value(); }

ContainerResources res(const std::string& cpu_req, const std::string& cpu_lim,
                       const std::string& mem_req, const std::string& mem_lim) {
  ContainerResources r;
  for (auto [list, name, v] : {std::tuple{&r.requests, "cpu", cpu_req},
                               {&r.limits, "cpu", cpu_lim},
                               {&r.requests, "memory", mem_req},
                               {&r.limits, "memory", mem_lim}}) {
    if (!v.empty()) {
      list->insert_or_assign(name, q(v));
    }
  }
  return r;
}

Pod onePod(const ContainerResources& r) {
  Pod p;
  p.name = "web";
  p.uid = "u1";
  Container c;
  c.name = "app";
  c.image = "busybox";
  c.resources = r;
  p.containers.push_back(c);
  return p;
}

NodeResources node2cpu() {
  return {.allocatable_milli_cpu = 2000, .allocatable_memory = 4LL << 30, .max_pods = 110};
}

TEST(ResizeAdmit, FitsBesideTheOthers) {
  Pod wanted = onePod(res("1", "1", "1Gi", "1Gi"));
  Pod other = onePod(res("500m", "", "1Gi", ""));
  auto v = admitResize(wanted, {&other}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kAccepted) << v.message;
}

TEST(ResizeAdmit, MoreThanTheNodeHasIsInfeasibleInTheKubeletsWords) {
  auto v = admitResize(onePod(res("3", "3", "", "")), {}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kInfeasible);
  EXPECT_EQ(v.message, "Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000");
  // Memory is checked first, as the kubelet checks it; an absurd value is
  // just that, never an overflow.
  v = admitResize(onePod(res("1000", "1000", "1Pi", "1Pi")), {}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kInfeasible);
  EXPECT_EQ(v.message,
            "Node didn't have enough capacity: memory, requested: 1125899906842624, "
            "capacity: 4294967296");
}

TEST(ResizeAdmit, SumsThatWouldOverflowAreInfeasibleNotWrapped) {
  Pod two = onePod(res("100m", "", "8Ei", "8Ei"));
  two.containers.push_back(two.containers[0]);
  two.containers[1].name = "side";
  auto v = admitResize(two, {}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kInfeasible);
  EXPECT_EQ(v.message,
            "Node didn't have enough capacity: memory, requested: 9223372036854775807, capacity: "
            "4294967296");
  two = onePod(res("8Ei", "8Ei", "", ""));
  two.containers.push_back(two.containers[0]);
  two.containers[1].name = "side";
  v = admitResize(two, {}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kInfeasible);
  EXPECT_EQ(
      v.message,
      "Node didn't have enough capacity: cpu, requested: 9223372036854775807, capacity: 2000");
  // The others' sum saturates too: a small resize beside them is Deferred.
  Pod huge = onePod(res("8Ei", "", "", ""));
  v = admitResize(onePod(res("1", "1", "", "")), {&huge, &huge}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kDeferred);
}

TEST(ResizePodCgroup, LimitsThatOverflowWhenSummedSaturate) {
  Pod two = onePod(res("8Ei", "8Ei", "8Ei", "8Ei"));
  two.containers.push_back(two.containers[0]);
  two.containers[1].name = "side";
  cgroups::Limits l = podCgroupLimits(two);
  ASSERT_TRUE(l.memory_max);
  EXPECT_EQ(*l.memory_max, INT64_MAX);
  ASSERT_TRUE(l.cpu_max);
  EXPECT_EQ(l.cpu_max->quota_us, -1) << "a quota past int64 is no quota (cpu.max \"max\")";
  EXPECT_EQ(*l.cpu_weight, 10000u);
}

TEST(ResizeAdmit, NoRoomBesideTheOthersNowIsDeferred) {
  Pod other = onePod(res("1500m", "", "", ""));
  auto v = admitResize(onePod(res("1", "1", "", "")), {&other}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kDeferred);
  EXPECT_EQ(v.message,
            "Node didn't have enough resource: cpu, requested: 1000, used: 1500, capacity: 2000");
  Pod big = onePod(res("", "", "3Gi", ""));
  v = admitResize(onePod(res("", "", "2Gi", "2Gi")), {&big}, node2cpu());
  EXPECT_EQ(v.verdict, ResizeAdmission::Verdict::kDeferred);
  EXPECT_EQ(v.message,
            "Node didn't have enough resource: memory, requested: 2147483648, used: "
            "3221225472, capacity: 4294967296");
}

TEST(ResizeRestart, OnlyAChangedResourceWhosePolicyIsRestartContainer) {
  Container c;
  c.resize_policy = {{"memory", "RestartContainer"}, {"cpu", "NotRequired"}};
  ContainerResources from = res("100m", "200m", "64Mi", "64Mi");
  EXPECT_FALSE(resizeRestarts(c, from, res("200m", "400m", "64Mi", "64Mi")));
  EXPECT_TRUE(resizeRestarts(c, from, res("100m", "200m", "64Mi", "128Mi")));
  EXPECT_TRUE(resizeRestarts(c, from, res("100m", "200m", "32Mi", "64Mi")));
  // No policy: NotRequired, the API's default.
  EXPECT_FALSE(resizeRestarts(Container{}, from, res("100m", "200m", "64Mi", "128Mi")));
  EXPECT_FALSE(resourcesDiffer(from, from));
  // Only cpu and memory are compared and taken.
  ContainerResources with_disk = from;
  with_disk.limits.insert_or_assign("ephemeral-storage", q("1Gi"));
  EXPECT_FALSE(resourcesDiffer(from, with_disk));
  ContainerResources merged = withResizable(with_disk, res("1", "", "", ""));
  EXPECT_EQ(merged.requests.at("cpu"), q("1"));
  EXPECT_FALSE(merged.limits.contains("cpu"));
  EXPECT_FALSE(merged.limits.contains("memory"));
  EXPECT_EQ(merged.limits.at("ephemeral-storage"), q("1Gi"));
}

TEST(ResizeMemory, ALimitBelowUsageIsNotApplied) {
  EXPECT_EQ(memoryLimitBelowUsage("container app", 128 << 20, 64 << 20, 100 << 20),
            "attempting to set container app memory limit (67108864) below current usage "
            "(104857600)");
  EXPECT_EQ(memoryLimitBelowUsage("container app", 128 << 20, 64 << 20, 10 << 20), std::nullopt);
  // Raised, or set where there was none above the usage: applied.
  EXPECT_EQ(memoryLimitBelowUsage("container app", 64 << 20, 128 << 20, 100 << 20), std::nullopt);
  EXPECT_EQ(memoryLimitBelowUsage("container app", std::nullopt, 128 << 20, 1 << 20), std::nullopt);
  EXPECT_NE(memoryLimitBelowUsage("container app", std::nullopt, 1 << 20, 2 << 20), std::nullopt);
}

TEST(ResizeDecode, ResizePolicyIsDecodedAndCheckedAsTheApiDoes) {
  auto decode = [](const std::string& containers) {
    return parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n" + containers,
                          "web.yaml");
  };
  auto ok = decode(
      "  containers:\n  - name: app\n    image: busybox\n    resizePolicy:\n"
      "    - {resourceName: cpu, restartPolicy: NotRequired}\n"
      "    - {resourceName: memory, restartPolicy: RestartContainer}\n");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(
      (*ok)[0].pod.containers[0].resize_policy,
      (std::map<std::string, std::string>{{"cpu", "NotRequired"}, {"memory", "RestartContainer"}}));
  auto bad = decode(
      "  containers:\n  - name: app\n    image: busybox\n    resizePolicy:\n"
      "    - {resourceName: gpu, restartPolicy: NotRequired}\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "parse manifest `web.yaml`: line 9: spec.containers[0].resizePolicy[0].resourceName: "
            "Unsupported value: \"gpu\": supported values: \"cpu\", \"memory\"");
  bad = decode(
      "  containers:\n  - name: app\n    image: busybox\n    resizePolicy:\n"
      "    - {resourceName: cpu, restartPolicy: Sometimes}\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("spec.containers[0].resizePolicy[0].restartPolicy: "
                                       "Unsupported value: \"Sometimes\""),
            std::string::npos);
  bad = decode(
      "  containers:\n  - name: app\n    image: busybox\n    resizePolicy:\n"
      "    - {resourceName: cpu, restartPolicy: NotRequired}\n"
      "    - {resourceName: cpu, restartPolicy: RestartContainer}\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("spec.containers[0].resizePolicy[1]: Duplicate value: "
                                       "\"cpu\""),
            std::string::npos);
  // On init containers only sidecars (restartPolicy Always) may have it.
  bad = decode(
      "  initContainers:\n  - name: init\n    image: busybox\n    resizePolicy:\n"
      "    - {resourceName: cpu, restartPolicy: NotRequired}\n"
      "  containers:\n  - {name: app, image: busybox}\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("spec.initContainers[0].resizePolicy: Forbidden"),
            std::string::npos);
  ok = decode(
      "  initContainers:\n  - name: side\n    image: busybox\n    restartPolicy: Always\n"
      "    resizePolicy:\n    - {resourceName: cpu, restartPolicy: NotRequired}\n"
      "  containers:\n  - {name: app, image: busybox}\n");
  EXPECT_TRUE(ok) << ok.error().message();
}

TEST(ResizeCheckpoint, WrittenAndReadBackTheSame) {
  PodAllocation a;
  a.containers["app"] = {.allocated = res("500m", "1", "64Mi", "128Mi"),
                         .actuated = res("250m", "500m", "64Mi", "128Mi")};
  a.containers["side"] = {.allocated = res("", "", "", "")};
  auto back = parseAllocation(toJson(a), "allocation.json");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, a);
  auto bad = parseAllocation(R"({"version":1,"containers":{"app":{"allocated":{"requests":)"
                             R"({"cpu":"lots"}}}}})",
                             "allocation.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "read allocation checkpoint `allocation.json`: containers.app.allocated.requests.cpu: "
            "not a quantity: \"lots\"");
  bad = parseAllocation(R"({"version":9,"containers":{}})", "allocation.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("version 9 is not this build's"), std::string::npos);
}

class Resize : public Lifecycle {
 protected:
  void SetUp() override {
    Lifecycle::SetUp();
    runtime_->addImage("busybox");
    ctx_.config.root_dir = dir_.path();
    ctx_.admitted_pods = [this](const std::string&) {
      std::vector<const Pod*> out;
      for (const Pod& p : others_) {
        out.push_back(&p);
      }
      return out;
    };
  }
  // The running pod as the API sends it after a resize of `name`.
  Pod resized(const std::string& name, const ContainerResources& r) {
    Pod p = worker_->pod();
    for (auto& c : p.containers) {
      if (c.name == name) {
        c.resources = r;
      }
    }
    return p;
  }
  const PodCondition* cond(const std::string& type) {
    for (const auto& c : worker_->status().conditions) {
      if (c.type == type) {
        return &c;
      }
    }
    return nullptr;
  }
  std::string quantity(const ResourceList& l, const char* name) {
    auto it = l.find(name);
    return it == l.end() ? "" : it->second.str();
  }

  testing::TempDir dir_;
  std::vector<Pod> others_;
};

const char* const kTwoContainers = R"(spec:
  containers:
  - name: app
    image: busybox
    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}
    resizePolicy:
    - {resourceName: cpu, restartPolicy: NotRequired}
    - {resourceName: memory, restartPolicy: RestartContainer}
  - name: side
    image: busybox
    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}
)";

TEST_F(Resize, CpuIsAppliedLiveWithoutARestart) {
  run(kTwoContainers);
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  EXPECT_EQ(quantity(*ctr("app").allocated_resources, "cpu"), "100m");
  EXPECT_EQ(quantity(ctr("app").resources->limits, "cpu"), "200m");
  worker_->update(resized("app", res("300m", "500m", "64Mi", "128Mi")));
  ASSERT_TRUE(until([&] { return quantity(ctr("app").resources->limits, "cpu") == "500m"; }));
  EXPECT_EQ(runtime_->resized("app"), "cpu=500m memory=128Mi");
  // A raise: the pod cgroup first (as the kubelet orders it), then the container.
  EXPECT_EQ(runtime_->calls("resize"), (Strings{"resizePod", "resize app"}));
  EXPECT_EQ(runtime_->podLimits(), "cpu=70000 memory=268435456");
  EXPECT_EQ(runtime_->starts("app"), 1);
  EXPECT_EQ(ctr("app").restart_count, 0);
  EXPECT_EQ(quantity(*ctr("app").allocated_resources, "cpu"), "300m");
  EXPECT_EQ(quantity(ctr("app").resources->requests, "cpu"), "300m");
  EXPECT_EQ(cond(kPodResizePending), nullptr);
  EXPECT_EQ(cond(kPodResizeInProgress), nullptr);
  EXPECT_EQ(worker_->pod().containers[0].resources.limits.at("cpu"), q("500m"));
  // The same spec again changes nothing.
  EXPECT_FALSE(worker_->resourcesChanged(resized("app", res("300m", "500m", "64Mi", "128Mi"))));
  // The allocation is checkpointed.
  auto saved = readAllocation(allocationPath(dir_.path(), "u1"));
  ASSERT_TRUE(saved && *saved);
  EXPECT_EQ((*saved)->containers.at("app").allocated.limits.at("cpu"), q("500m"));
  EXPECT_EQ((*saved)->containers.at("app").actuated->limits.at("cpu"), q("500m"));
}

TEST_F(Resize, MemoryWithRestartContainerRestartsJustThatContainer) {
  run(kTwoContainers);
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  worker_->update(resized("app", res("100m", "200m", "64Mi", "256Mi")));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  EXPECT_EQ(ctr("app").restart_count, 1);
  EXPECT_EQ(runtime_->starts("side"), 1);
  EXPECT_EQ(runtime_->calls("resize app"), Strings{}) << "restarted, not resized live";
  EXPECT_EQ(quantity(ctr("app").resources->limits, "memory"), "256Mi");
  EXPECT_TRUE(sawEvent("Normal Killing app: Container app resize requires restart"));
  ASSERT_TRUE(until([&] { return cond(kPodResizeInProgress) == nullptr; }));
}

// A resize allocated while a container starts (its cgroup already made
// from the old resources) is applied once it runs, not just reported.
TEST_F(Resize, AResizeDuringAStartIsAppliedOnceItRuns) {
  runtime_->setAsyncStarts(true);
  run(kTwoContainers);
  worker_->update(resized("app", res("300m", "500m", "64Mi", "128Mi")));
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  ASSERT_TRUE(until([&] { return cond(kPodResizeInProgress) == nullptr; }));
  EXPECT_EQ(runtime_->cgroupLimits("app"), "cpu=500m memory=128Mi");
  EXPECT_EQ(quantity(ctr("app").resources->limits, "cpu"), "500m");
  EXPECT_EQ(runtime_->starts("app"), 1);
  auto saved = readAllocation(allocationPath(dir_.path(), "u1"));
  ASSERT_TRUE(saved && *saved);
  EXPECT_EQ((*saved)->containers.at("app").actuated->limits.at("cpu"), q("500m"));
}

TEST_F(Resize, AResizeDuringAStartThatNeedsARestartRestartsItOnceItRuns) {
  runtime_->setAsyncStarts(true);
  run(kTwoContainers);
  worker_->update(resized("app", res("100m", "200m", "64Mi", "256Mi")));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  ASSERT_TRUE(until([&] { return cond(kPodResizeInProgress) == nullptr; }));
  EXPECT_EQ(runtime_->cgroupLimits("app"), "cpu=200m memory=256Mi");
  EXPECT_EQ(quantity(ctr("app").resources->limits, "memory"), "256Mi");
}

TEST_F(Resize, InfeasibleIsPendingAndNothingChanges) {
  run(kTwoContainers);
  ASSERT_TRUE(until([&] { return running("app"); }));
  worker_->update(resized("app", res("3", "3", "64Mi", "128Mi")));
  ASSERT_NE(cond(kPodResizePending), nullptr);
  EXPECT_EQ(cond(kPodResizePending)->status, "True");
  EXPECT_EQ(cond(kPodResizePending)->reason, "Infeasible");
  EXPECT_EQ(cond(kPodResizePending)->message,
            "Node didn't have enough capacity: cpu, requested: 3100, capacity: 2000");
  EXPECT_EQ(runtime_->calls("resize"), Strings{});
  EXPECT_EQ(quantity(*ctr("app").allocated_resources, "cpu"), "100m");
  EXPECT_EQ(quantity(ctr("app").resources->limits, "cpu"), "200m");
  // Asking for what fits again clears it.
  worker_->update(resized("app", res("100m", "200m", "64Mi", "128Mi")));
  EXPECT_EQ(cond(kPodResizePending), nullptr);
}

TEST_F(Resize, DeferredIsTriedAgainWhenRoomIsMade) {
  others_.push_back(onePod(res("1500m", "", "", "")));
  run(kTwoContainers);
  ASSERT_TRUE(until([&] { return running("app"); }));
  worker_->update(resized("app", res("500m", "500m", "64Mi", "128Mi")));
  ASSERT_NE(cond(kPodResizePending), nullptr);
  EXPECT_EQ(cond(kPodResizePending)->reason, "Deferred");
  EXPECT_EQ(cond(kPodResizePending)->message,
            "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000");
  others_.clear();
  worker_->retryResize();
  EXPECT_EQ(cond(kPodResizePending), nullptr);
  EXPECT_EQ(runtime_->resized("app"), "cpu=500m memory=128Mi");
}

TEST_F(Resize, AMemoryLimitBelowUsageIsNotAppliedAndReported) {
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 128Mi}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  runtime_->setMemoryUsage("app", 100 << 20);
  worker_->update(resized("app", res("200m", "400m", "64Mi", "80Mi")));
  ASSERT_NE(cond(kPodResizeInProgress), nullptr);
  EXPECT_EQ(cond(kPodResizeInProgress)->reason, "Error");
  EXPECT_EQ(cond(kPodResizeInProgress)->message,
            "attempting to set container app memory limit (83886080) below current usage "
            "(104857600)");
  // The cpu part is applied; the memory limit stays.
  EXPECT_EQ(runtime_->resized("app"), "cpu=400m memory=128Mi");
  EXPECT_EQ(quantity(ctr("app").resources->limits, "memory"), "128Mi");
  EXPECT_EQ(quantity(ctr("app").resources->limits, "cpu"), "400m");
  EXPECT_EQ(runtime_->starts("app"), 1);
}

TEST_F(Resize, APodMemoryLimitBelowThePodsUsageIsNotApplied) {
  run(kTwoContainers);
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  runtime_->setPodMemoryUsage(200 << 20);
  worker_->update(resized("side", res("100m", "200m", "64Mi", "64Mi")));
  ASSERT_NE(cond(kPodResizeInProgress), nullptr);
  EXPECT_EQ(cond(kPodResizeInProgress)->reason, "Error");
  EXPECT_EQ(cond(kPodResizeInProgress)->message,
            "attempting to set pod web memory limit (201326592) below current usage (209715200)");
  // The container's own limit is lowered (it uses little); the pod's is not.
  EXPECT_EQ(runtime_->resized("side"), "cpu=200m memory=64Mi");
  EXPECT_EQ(runtime_->calls("resizePod"), Strings{});
  // Once the pod uses less, the next try (a container's start) lowers it.
  runtime_->setPodMemoryUsage(100 << 20);
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return runtime_->podLimits() == "cpu=40000 memory=201326592"; }));
}

TEST_F(Resize, APodLimitIsLoweredOnlyOnceTheContainerRestartingForItRuns) {
  run(kTwoContainers);
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  runtime_->ignoreStopSignal("app");  // the old process runs on for its grace period
  worker_->update(resized("app", res("100m", "200m", "64Mi", "64Mi")));
  EXPECT_EQ(runtime_->calls("resizePod"), Strings{})
      << "the pod keeps room for app's old process and its 128Mi";
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  ASSERT_TRUE(until([&] { return runtime_->podLimits() == "cpu=40000 memory=201326592"; }));
  Strings order;
  for (const auto& call : runtime_->calls()) {
    if (call.starts_with("start app") || call == "resizePod") {
      order.push_back(call);
    }
  }
  EXPECT_EQ(order, (Strings{"start app", "start app", "resizePod"}));
  EXPECT_EQ(runtime_->cgroupLimits("app"), "cpu=200m memory=64Mi");
  ASSERT_TRUE(until([&] { return cond(kPodResizeInProgress) == nullptr; }));
}

TEST(ResizeWidest, TheLargerOfEachAndNoLimitOverAny) {
  EXPECT_EQ(widest(res("100m", "200m", "64Mi", "128Mi"), res("300m", "100m", "32Mi", "256Mi")),
            res("300m", "200m", "64Mi", "256Mi"));
  EXPECT_EQ(widest(res("100m", "", "64Mi", "128Mi"), res("100m", "1", "64Mi", "")),
            res("100m", "", "64Mi", ""));
}

TEST_F(Resize, AnAgentRestartMidResizeNeitherLosesNorReappliesIt) {
  // The previous agent had allocated 500m for app and applied it; the API
  // now asks for 1 cpu, which does not fit beside the others: Deferred, with
  // the checkpointed allocation still what counts.
  PodAllocation a;
  a.containers["app"] = {.allocated = res("500m", "500m", "64Mi", "128Mi"),
                         .actuated = res("500m", "500m", "64Mi", "128Mi")};
  a.containers["side"] = {.allocated = res("100m", "200m", "64Mi", "128Mi"),
                          .actuated = res("100m", "200m", "64Mi", "128Mi")};
  ASSERT_TRUE(writeAllocation(allocationPath(dir_.path(), "u1"), a));
  runtime::AdoptedPod left{.pod_hash = "hash", .sandbox = {.ip = "10.88.0.9"}};
  for (const char* name : {"app", "side"}) {
    left.containers.push_back({.name = name,
                               .id = std::string("c0ffee") + name,
                               .started_at = "2026-01-02T03:04:05Z",
                               .image = {.name = "busybox", .id = "busybox@sha256:aa"},
                               .handle = 1});
  }
  runtime_->leave("u1", left);
  others_.push_back(onePod(res("1200m", "", "", "")));
  Pod wanted = parse(kTwoContainers);
  wanted.containers[0].resources = res("1", "1", "64Mi", "128Mi");
  worker_ = std::make_shared<PodWorker>(ctx_, wanted, "hash");
  worker_->start();
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  EXPECT_EQ(runtime_->starts("app"), 0);
  EXPECT_EQ(worker_->pod().containers[0].resources.limits.at("cpu"), q("500m"));
  ASSERT_NE(cond(kPodResizePending), nullptr);
  EXPECT_EQ(cond(kPodResizePending)->reason, "Deferred");
  EXPECT_EQ(runtime_->calls("resize"), Strings{}) << "what was applied is not applied again";
  EXPECT_EQ(quantity(*ctr("app").allocated_resources, "cpu"), "500m");
}

}  // namespace
}  // namespace kernelet::agent
