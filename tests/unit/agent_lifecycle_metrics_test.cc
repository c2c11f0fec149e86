// The kubelet metrics the pod worker counts (agent/stats/metrics.h): probe
// results, the pod start duration and the sync durations, as a pod goes
// through the pod worker with the fake runtime.
#include "agent/stats/metrics.h"
#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

TEST_F(Lifecycle, ProbesStartAndSyncsAreCounted) {
  auto& m = stats::kubeletMetrics();
  std::vector<std::string> failed{"Readiness", "failed", "app", "web", "default", "u1"};
  std::vector<std::string> ok{"Readiness", "successful", "app", "web", "default", "u1"};
  double failed_before = m.probe_total.value(failed), ok_before = m.probe_total.value(ok);
  uint64_t starts_before = m.pod_start_duration.count({});
  uint64_t creates_before = m.pod_worker_duration.count({"create"});
  uint64_t syncs_before = m.pod_worker_duration.count({"sync"});

  runtime_->addImage("busybox");
  runtime_->setExec("app", 1, "busy");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    readinessProbe: {exec: {command: [ready]}, periodSeconds: 1}
)");
  ASSERT_TRUE(until([&] { return m.probe_total.value(failed) >= failed_before + 2; }));
  runtime_->setExec("app", 0);
  ASSERT_TRUE(until([&] { return ctr("app").ready; }));
  EXPECT_GE(m.probe_total.value(ok), ok_before + 1);
  EXPECT_EQ(worker_->status().phase, "Running");
  // One start per pod, however often its status changes afterwards.
  EXPECT_EQ(m.pod_start_duration.count({}), starts_before + 1);
  EXPECT_EQ(m.pod_worker_duration.count({"create"}), creates_before + 1);
  // An exit makes the worker sync again: a "sync", not a "create".
  ASSERT_TRUE(runtime_->exit("app", 0));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2; }));
  EXPECT_GT(m.pod_worker_duration.count({"sync"}), syncs_before);
  EXPECT_EQ(m.pod_worker_duration.count({"create"}), creates_before + 1);
}

}  // namespace
}  // namespace kernelet::agent
