#include <gtest/gtest.h>

#include "agent/app/pods_cli.h"
#include "agent/status/pod_status.h"

namespace kernelet::agent {
namespace {

using Kind = ContainerState::Kind;

Pod pod(const std::string& restart, std::vector<std::string> init, std::vector<std::string> regular,
        std::vector<std::string> sidecars = {}) {
  Pod p;
  p.name = "p";
  p.restart_policy = restart;
  for (const auto& s : sidecars) {
    p.init_containers.push_back({.name = s, .restart_policy = "Always"});
  }
  for (const auto& n : init) {
    p.init_containers.push_back({.name = n});
  }
  for (const auto& n : regular) {
    p.containers.push_back({.name = n});
  }
  return p;
}

ContainerStatus running(const std::string& name) {
  return {.name = name,
          .state = {.kind = Kind::kRunning, .started_at = "2026-01-01T00:00:00Z"},
          .ready = true,
          .started = true};
}
ContainerStatus exited(const std::string& name, int code, const std::string& reason = "") {
  return {.name = name,
          .state = {.kind = Kind::kTerminated,
                    .reason = reason.empty() ? (code == 0 ? "Completed" : "Error") : reason,
                    .exit_code = code}};
}
ContainerStatus waiting(const std::string& name, const std::string& reason,
                        std::optional<int> last_exit = {}) {
  ContainerStatus s{.name = name, .state = {.kind = Kind::kWaiting, .reason = reason}};
  if (last_exit) {
    s.last_state = exited(name, *last_exit).state;
    s.restart_count = 1;
  }
  return s;
}

TEST(PodPhase, AsTheKubeletsGetPhase) {
  // Nothing started yet.
  EXPECT_EQ(podPhase(pod("Always", {}, {"a"}), {}, {waiting("a", "ContainerCreating")}), "Pending");
  EXPECT_EQ(podPhase(pod("Always", {}, {"a", "b"}), {}, {running("a"), running("b")}), "Running");
  // A crash looping container keeps an Always pod Running.
  EXPECT_EQ(podPhase(pod("Always", {}, {"a"}), {}, {waiting("a", "CrashLoopBackOff", 1)}),
            "Running");
  EXPECT_EQ(podPhase(pod("Never", {}, {"a", "b"}), {}, {exited("a", 0), exited("b", 0)}),
            "Succeeded");
  EXPECT_EQ(podPhase(pod("Never", {}, {"a", "b"}), {}, {exited("a", 0), exited("b", 2)}), "Failed");
  // OnFailure: a failed container is on its way back.
  EXPECT_EQ(podPhase(pod("OnFailure", {}, {"a"}), {}, {exited("a", 1)}), "Running");
  EXPECT_EQ(podPhase(pod("OnFailure", {}, {"a"}), {}, {exited("a", 0)}), "Succeeded");
  // Init containers hold the pod Pending; a failed one fails a Never pod.
  EXPECT_EQ(
      podPhase(pod("Always", {"i"}, {"a"}), {running("i")}, {waiting("a", "PodInitializing")}),
      "Pending");
  EXPECT_EQ(
      podPhase(pod("Never", {"i"}, {"a"}), {exited("i", 1)}, {waiting("a", "PodInitializing")}),
      "Failed");
  EXPECT_EQ(podPhase(pod("OnFailure", {"i"}, {"a"}), {waiting("i", "CrashLoopBackOff", 1)},
                     {waiting("a", "PodInitializing")}),
            "Pending");
  // A running sidecar does not keep a pod whose app finished from completing.
  EXPECT_EQ(podPhase(pod("Never", {}, {"a"}, {"side"}), {exited("side", 137)}, {exited("a", 0)}),
            "Succeeded");
  EXPECT_EQ(podPhase(pod("Never", {}, {"a"}, {"side"}), {running("side")}, {running("a")}),
            "Running");
}

TEST(PodConditions, ReasonsAndMessagesAsTheKubeletWritesThem) {
  Pod p = pod("Always", {"init"}, {"a", "b"});
  PodStatus s;
  s.init_container_statuses = {running("init")};
  s.container_statuses = {waiting("a", "PodInitializing"), waiting("b", "PodInitializing")};
  computeConditions(p, s, true, nullptr, "2026-01-01T00:00:00Z");
  ASSERT_EQ(s.conditions.size(), 5u);
  EXPECT_EQ(s.conditions[0].type, "PodReadyToStartContainers");
  EXPECT_EQ(s.conditions[0].status, "True");
  EXPECT_EQ(s.conditions[1].type, "Initialized");
  EXPECT_EQ(s.conditions[1].reason, "ContainersNotInitialized");
  EXPECT_EQ(s.conditions[1].message, "containers with incomplete status: [init]");
  EXPECT_EQ(s.conditions[2].type, "Ready");
  EXPECT_EQ(s.conditions[2].message, "containers with unready status: [a b]");
  EXPECT_EQ(s.conditions[3].type, "ContainersReady");
  EXPECT_EQ(s.conditions[4].type, "PodScheduled");
  EXPECT_EQ(s.conditions[4].status, "True");

  // Later: all ready. Transition times move only for conditions that changed.
  PodStatus t;
  t.init_container_statuses = {exited("init", 0)};
  t.container_statuses = {running("a"), running("b")};
  computeConditions(p, t, true, &s, "2026-01-01T00:01:00Z");
  EXPECT_EQ(t.phase, "Running");
  EXPECT_EQ(t.conditions[0].last_transition_time, "2026-01-01T00:00:00Z");
  EXPECT_EQ(t.conditions[2].status, "True");
  EXPECT_EQ(t.conditions[2].reason, "");
  EXPECT_EQ(t.conditions[2].last_transition_time, "2026-01-01T00:01:00Z");

  // A finished pod: Ready False with PodCompleted.
  Pod job = pod("Never", {}, {"a"});
  PodStatus done;
  done.container_statuses = {exited("a", 0)};
  computeConditions(job, done, false, nullptr, "x");
  EXPECT_EQ(done.phase, "Succeeded");
  EXPECT_EQ(done.conditions[0].status, "False");
  EXPECT_EQ(done.conditions[2].reason, "PodCompleted");
}

// readinessGates: with the containers ready, Ready waits for each gate's
// condition (set by another controller) to be True, in the kubelet's words;
// with containers not ready, Ready says that alone.
TEST(PodConditions, ReadinessGatesHoldReadyUntilTheirConditionsAreTrue) {
  Pod p = pod("Always", {}, {"a"});
  p.readiness_gates = {"example.com/lb", "example.com/dns"};
  auto ready = [&](const std::vector<ContainerStatus>& ctrs) {
    PodStatus s;
    s.container_statuses = ctrs;
    computeConditions(p, s, true, nullptr, "t");
    EXPECT_EQ(s.conditions[3].type, "ContainersReady");
    return std::pair(s.conditions[2], s.conditions[3]);
  };
  auto [r, c] = ready({running("a")});
  EXPECT_EQ(r.type, "Ready");
  EXPECT_EQ(r.status, "False");
  EXPECT_EQ(r.reason, "ReadinessGatesNotReady");
  EXPECT_EQ(r.message,
            "corresponding condition of pod readiness gate \"example.com/lb\" does not exist., "
            "corresponding condition of pod readiness gate \"example.com/dns\" does not exist.");
  EXPECT_EQ(c.status, "True");  // the containers are ready all the same

  p.gate_conditions = {{"example.com/lb", "False"}, {"example.com/dns", "True"}};
  std::tie(r, c) = ready({running("a")});
  EXPECT_EQ(r.status, "False");
  EXPECT_EQ(r.reason, "ReadinessGatesNotReady");
  EXPECT_EQ(r.message,
            "the status of pod readiness gate \"example.com/lb\" is not \"True\", but False");

  p.gate_conditions["example.com/lb"] = "Unknown";
  EXPECT_EQ(ready({running("a")}).first.message,
            "the status of pod readiness gate \"example.com/lb\" is not \"True\", but Unknown");

  // Containers not ready: their message, not the gates'.
  std::tie(r, c) = ready({waiting("a", "ContainerCreating")});
  EXPECT_EQ(r.status, "False");
  EXPECT_EQ(r.reason, "ContainersNotReady");
  EXPECT_EQ(r.message, "containers with unready status: [a]");

  p.gate_conditions["example.com/lb"] = "True";
  std::tie(r, c) = ready({running("a")});
  EXPECT_EQ(r.status, "True");
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.message, "");
}

TEST(PodJson, RoundTripsWhatKernletPodsShows) {
  Pod p = pod("Always", {}, {"a"});
  p.namespace_ = "ns";
  p.uid = "u1";
  p.labels["app"] = "x";
  PodStatus s;
  s.pod_ip = "10.88.0.9";
  s.container_statuses = {waiting("a", "CrashLoopBackOff", 1)};
  computeConditions(p, s, true, nullptr, "2026-01-01T00:00:00Z");
  std::string json = podJson(p, s, "2026-01-01T00:00:00Z");
  auto back = parsePodJson(json, "f");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->name, "p");
  EXPECT_EQ(back->namespace_, "ns");
  EXPECT_EQ(back->uid, "u1");
  EXPECT_EQ(back->containers, 1u);
  EXPECT_EQ(back->status.phase, "Running");
  EXPECT_EQ(back->status.pod_ip, "10.88.0.9");
  ASSERT_EQ(back->status.container_statuses.size(), 1u);
  EXPECT_EQ(back->status.container_statuses[0].state.reason, "CrashLoopBackOff");
  EXPECT_EQ(back->status.container_statuses[0].last_state.exit_code, 1);
  EXPECT_EQ(back->status.container_statuses[0].restart_count, 1);
  EXPECT_NE(json.find("\"imageID\": \"\""), std::string::npos);  // required by the schema

  auto bad = parsePodJson("{not json", "/var/lib/kernelet/pods/x/status.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("/var/lib/kernelet/pods/x/status.json"), std::string::npos);
}

// A status file nested 100k deep (corrupt, or written by someone else) is an
// error for `kernelet pods`, not a stack overflow (the recursive parser crashed).
TEST(PodJson, ADeeplyNestedStatusIsAnErrorNotACrash) {
  constexpr size_t kDepth = 100000;
  std::string deep = R"({"metadata":{"name":"x"},"status":{"phase":)" + std::string(kDepth, '[') +
                     std::string(kDepth, ']') + "}}";
  auto r = parsePodJson(deep, "status.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "read pod status `status.json`: offset 553: nested deeper than 512 levels");
}

TEST(DisplayStatus, LikeKubectlGetPods) {
  PodSummary p;
  p.status.phase = "Running";
  p.status.container_statuses = {running("a")};
  EXPECT_EQ(displayStatus(p), "Running");
  p.status.container_statuses = {waiting("a", "CrashLoopBackOff", 1)};
  EXPECT_EQ(displayStatus(p), "CrashLoopBackOff");
  p.status.container_statuses = {exited("a", 137, "OOMKilled")};
  EXPECT_EQ(displayStatus(p), "OOMKilled");
  p.status.container_statuses = {exited("a", 0)};
  p.status.phase = "Succeeded";
  EXPECT_EQ(displayStatus(p), "Completed");
  p.status.init_container_statuses = {exited("i1", 0), running("i2"),
                                      waiting("i3", "PodInitializing")};
  p.status.init_container_statuses[1].started = false;  // a regular init container
  EXPECT_EQ(displayStatus(p), "Init:1/3");
  p.status.init_container_statuses = {waiting("i1", "CrashLoopBackOff", 1)};
  EXPECT_EQ(displayStatus(p), "Init:CrashLoopBackOff");
  p.status.init_container_statuses = {exited("i1", 1)};
  EXPECT_EQ(displayStatus(p), "Init:Error");
  PodSummary rejected;
  rejected.status.phase = "Failed";
  rejected.status.reason = "OutOfcpu";
  EXPECT_EQ(displayStatus(rejected), "OutOfcpu");
}

TEST(HumanAge, LikeKubectl) {
  EXPECT_EQ(humanAge(5), "5s");
  EXPECT_EQ(humanAge(119), "119s");
  EXPECT_EQ(humanAge(192), "3m12s");
  EXPECT_EQ(humanAge(600), "10m");
  EXPECT_EQ(humanAge(5 * 3600), "5h");
  EXPECT_EQ(humanAge(3 * 86400), "3d");
}

TEST(CriLogMessages, StripsTimestampsAndJoinsPartials) {
  std::string log =
      "2026-01-01T00:00:00.1Z stdout F hello\n"
      "2026-01-01T00:00:00.2Z stderr P first half \n"
      "2026-01-01T00:00:00.3Z stderr F second half\n";
  EXPECT_EQ(criLogMessages(log), "hello\nfirst half second half\n");
}

}  // namespace
}  // namespace kernelet::agent
