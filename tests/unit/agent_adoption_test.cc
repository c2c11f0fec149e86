// A pod a previous agent left, taken over by a new pod worker (issue #16):
// nothing that runs is started again, what ended meanwhile is handled as an
// exit that just happened, a termination goes on, and the statuses the worker
// publishes never say that a running container is not running.
#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono_literals;
using SysClock = std::chrono::system_clock;
using runtime::AdoptedContainer;
using runtime::AdoptedPod;
using runtime::RunEnd;

const char* const kApp = "spec:\n  containers:\n  - {name: app, image: busybox}\n";

AdoptedContainer runningApp(int restarts = 3) {
  return {.name = "app",
          .id = "c0ffee",
          .restart_count = restarts,
          .started_at = "2026-01-02T03:04:05Z",
          .image = {.name = "docker.io/library/busybox:latest", .id = "busybox@sha256:aa"},
          .handle = 1,  // running: the fake gives it a handle of its own
          .previous = RunEnd{.id = "beef",
                             .exit = {.exit_code = 2, .reason = "Error"},
                             .started_at = "2026-01-02T03:00:00Z",
                             .finished_at = "2026-01-02T03:04:04Z"}};
}

AdoptedContainer endedWhileAway(const std::string& name, int code, int restarts,
                                const std::string& finished_at) {
  // It ran for less than a second (a crash loop's run, not one long enough
  // to start the back-off over).
  return {.name = name,
          .id = "dead" + name,
          .restart_count = restarts,
          .started_at = finished_at,
          .image = {.name = "busybox", .id = "busybox@sha256:aa"},
          .ended = RunEnd{.id = "dead" + name,
                          .exit = {.exit_code = code, .reason = code == 0 ? "Completed" : "Error"},
                          .started_at = finished_at,
                          .finished_at = finished_at}};
}

AdoptedPod leftPod(std::vector<AdoptedContainer> containers, std::string hash = "hash") {
  return {.pod_hash = std::move(hash),
          .sandbox = {.ip = "10.88.0.9"},
          .containers = std::move(containers)};
}

class Adoption : public Lifecycle {
 protected:
  void SetUp() override {
    Lifecycle::SetUp();
    runtime_->addImage("busybox");
  }
  // Every status published so far shows `name` running as `id`.
  bool alwaysRunning(const std::string& name, const std::string& id) {
    for (const auto& s : history_) {
      for (const auto& c : s.container_statuses) {
        if (c.name == name &&
            (c.state.kind != Kind::kRunning || c.container_id != "kernelet://" + id)) {
          return false;
        }
      }
    }
    return !history_.empty();
  }
};

TEST_F(Adoption, RunningContainerIsTakenOverWithoutAStartOrAFlap) {
  runtime_->leave("u1", leftPod({runningApp()}));
  run(kApp);
  settle(std::chrono::milliseconds(50));
  EXPECT_EQ(runtime_->starts("app"), 0);
  EXPECT_EQ(runtime_->calls("createSandbox"), Strings{});
  EXPECT_EQ(runtime_->calls("adopt "), (Strings{"adopt u1"}));
  EXPECT_TRUE(alwaysRunning("app", "c0ffee")) << "the first status already shows it running";
  const ContainerStatus& app = ctr("app");
  EXPECT_EQ(app.restart_count, 3);
  EXPECT_EQ(app.state.started_at, "2026-01-02T03:04:05Z");
  EXPECT_EQ(app.image, "docker.io/library/busybox:latest");
  EXPECT_EQ(app.image_id, "busybox@sha256:aa");
  EXPECT_EQ(app.last_state.kind, Kind::kTerminated);
  EXPECT_EQ(app.last_state.exit_code, 2);
  EXPECT_EQ(app.last_state.container_id, "kernelet://beef");
  EXPECT_EQ(worker_->status().phase, "Running");
  EXPECT_EQ(worker_->status().pod_ip, "10.88.0.9");
  EXPECT_EQ(condition("Ready"), "True");
  EXPECT_FALSE(sawEvent("Normal Started")) << "nothing was started";

  // Its exit is watched from now on: restartPolicy Always restarts it, counted.
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 1 && running("app"); }, 5000ms));
  EXPECT_EQ(ctr("app").restart_count, 4);
  EXPECT_EQ(ctr("app").last_state.exit_code, 1);
}

TEST_F(Adoption, LivenessProbeOfAnAdoptedContainerRestartsIt) {
  runtime_->setExec("app", 1, "not alive");
  runtime_->leave("u1", leftPod({runningApp(0)}));
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    livenessProbe: {exec: {command: [check]}, periodSeconds: 1, failureThreshold: 2}
)");
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 1 && running("app"); }));
  EXPECT_GE(runtime_->calls("exec app").size(), 2u);
  EXPECT_EQ(runtime_->calls("signal ").at(0), "signal app 15");
  EXPECT_EQ(ctr("app").restart_count, 1);
  EXPECT_TRUE(sawEvent("Normal Killing app: Container app failed liveness probe"));
}

TEST_F(Adoption, ExitWhileAwayUnderNeverFailsThePodWithItsCodeAndTime) {
  runtime_->leave("u1", leftPod({endedWhileAway("app", 7, 0, "2026-01-02T03:05:06Z")}));
  run("spec:\n  restartPolicy: Never\n  containers:\n  - {name: app, image: busybox}\n");
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Failed"; }));
  settle(std::chrono::milliseconds(50));
  EXPECT_EQ(runtime_->starts("app"), 0);
  const ContainerStatus& app = ctr("app");
  EXPECT_EQ(app.state.kind, Kind::kTerminated);
  EXPECT_EQ(app.state.exit_code, 7);
  EXPECT_EQ(app.state.reason, "Error");
  EXPECT_EQ(app.state.finished_at, "2026-01-02T03:05:06Z");
  EXPECT_EQ(app.container_id, "kernelet://deadapp");
  for (const auto& s : history_) {
    EXPECT_EQ(s.container_statuses.at(0).state.kind, Kind::kTerminated)
        << "never shown waiting or running";
  }
}

TEST_F(Adoption, ExitWhileAwayUnderAlwaysRestartsAfterTheBackOffItWasIn) {
  // Five restarts: the back-off it was in is 160 s, of which the time since
  // the exit (at most a second of wall-clock time, 100 of the pod's seconds)
  // has been served.
  runtime_->leave("u1", leftPod({endedWhileAway("app", 7, 5, runtime::nowRfc3339())}));
  run(kApp);
  ASSERT_FALSE(history_.empty());
  EXPECT_EQ(history_.front().container_statuses.at(0).state.reason, "CrashLoopBackOff");
  EXPECT_EQ(ctr("app").state.message,
            "back-off 160s restarting failed container=app pod=web_default(u1)");
  EXPECT_EQ(ctr("app").last_state.exit_code, 7);
  EXPECT_EQ(ctr("app").restart_count, 5);
  EXPECT_EQ(runtime_->starts("app"), 0);
  ASSERT_TRUE(until([&] { return running("app"); }, 5000ms));
  EXPECT_EQ(ctr("app").restart_count, 6);
  EXPECT_EQ(runtime_->starts("app"), 1);
}

TEST_F(Adoption, ExitLongAgoUnderAlwaysRestartsAtOnce) {
  runtime_->leave("u1", leftPod({endedWhileAway("app", 7, 1, "2026-01-02T03:05:06Z")}));
  run(kApp);
  ASSERT_TRUE(until([&] { return running("app"); }, 1000ms)) << "its back-off ran while away";
  EXPECT_EQ(ctr("app").restart_count, 2);
}

TEST_F(Adoption, CompletedInitContainerIsNotRunAgainAndTheRestStart) {
  AdoptedContainer sidecar = runningApp(0);
  sidecar.name = "proxy";
  runtime_->leave("u1", leftPod({endedWhileAway("setup", 0, 0, "2026-01-02T03:04:06Z"), sidecar}));
  run(R"(spec:
  initContainers:
  - {name: setup, image: busybox}
  - {name: proxy, image: busybox, restartPolicy: Always}
  containers:
  - {name: app, image: busybox}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(runtime_->calls("start "), (Strings{"start app"})) << "setup and proxy are not rerun";
  EXPECT_EQ(ctr("setup").state.reason, "Completed");
  EXPECT_TRUE(running("proxy"));
  EXPECT_EQ(condition("Initialized"), "True");
}

TEST_F(Adoption, TerminationWhoseKillTimeHasPassedKillsNow) {
  runtime_->ignoreStopSignal("app");
  AdoptedPod left = leftPod({runningApp()});
  left.kill_at = SysClock::now() - std::chrono::seconds(1);
  runtime_->leave("u1", left);
  bool terminated = false;
  auto t0 = std::chrono::steady_clock::now();
  // A grace of 300 s is 3 s here: what is left of the previous agent's wins.
  run("spec:\n  terminationGracePeriodSeconds: 300\n  containers:\n  - {name: app, image: "
      "busybox}\n");
  EXPECT_EQ(worker_->state(), PodState::kTerminating);
  worker_->terminate([&] { terminated = true; });
  ASSERT_TRUE(until([&] { return terminated; }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  EXPECT_EQ(runtime_->calls("kill "), (Strings{"kill app"}));
  EXPECT_EQ(runtime_->starts("app"), 0);
  EXPECT_EQ(ctr("app").state.exit_code, 137);
  EXPECT_FALSE(runtime_->hasSandbox("u1"));
}

TEST_F(Adoption, TerminationGoesOnWithWhatIsLeftOfItsGrace) {
  runtime_->ignoreStopSignal("app");
  AdoptedPod left = leftPod({runningApp()});
  left.kill_at = SysClock::now() + std::chrono::seconds(1);
  runtime_->leave("u1", left);
  run("spec:\n  terminationGracePeriodSeconds: 300\n  containers:\n  - {name: app, image: "
      "busybox}\n");
  // At most a second left, which is 10 ms here: not the pod's 300 s (3 s).
  ASSERT_TRUE(until([&] { return worker_->state() == PodState::kTerminated; }, 1000ms));
  EXPECT_EQ(runtime_->calls("signal "), (Strings{"signal app 15"}));
  EXPECT_EQ(runtime_->calls("kill "), (Strings{"kill app"}));
  auto noted = runtime_->killAt("u1");
  ASSERT_TRUE(noted.has_value());
  EXPECT_LE(noted.value(), SysClock::now() + std::chrono::seconds(1)) << "the SIGKILL time is kept";
}

TEST_F(Adoption, PodFromAnotherSpecIsReplaced) {
  runtime_->leave("u1", leftPod({runningApp()}, "an older hash"));
  run(kApp);
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 1 && running("app"); }));
  EXPECT_EQ(runtime_->calls("signal "), (Strings{"signal app 15"}));
  EXPECT_NE(ctr("app").container_id, "kernelet://c0ffee");
  EXPECT_EQ(ctr("app").restart_count, 4);
  EXPECT_TRUE(sawEvent("Normal Killing app: Container app definition changed"));
  // The runtime records the spec it runs now: the next agent does not replace them again.
  EXPECT_EQ(runtime_->sandboxHash("u1"), worker_->hash());
}

TEST_F(Adoption, ReadyIsKeptFromTheLastWrittenStatusUntilTheProbeFails) {
  PodStatus last;
  last.container_statuses.push_back({.name = "app",
                                     .container_id = "kernelet://c0ffee",
                                     .state = {.kind = Kind::kRunning},
                                     .ready = true});
  ctx_.last_status = [&](const std::string& uid) -> std::optional<PodStatus> {
    return uid == "u1" ? std::optional(last) : std::nullopt;
  };
  runtime_->setExec("app", 1);
  runtime_->leave("u1", leftPod({runningApp()}));
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    readinessProbe: {exec: {command: [ready]}, periodSeconds: 1, failureThreshold: 3}
)");
  ASSERT_FALSE(history_.empty());
  EXPECT_TRUE(history_.front().container_statuses.at(0).ready);
  EXPECT_EQ(condition("Ready"), "True");
  ASSERT_TRUE(until([&] { return condition("Ready") == "False"; }));
  EXPECT_GE(runtime_->calls("exec app").size(), 3u) << "ready until failureThreshold failures";
}

TEST_F(Adoption, WithoutALastStatusAProbedContainerStartsNotReady) {
  runtime_->setExec("app", 0);
  runtime_->leave("u1", leftPod({runningApp()}));
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    readinessProbe: {exec: {command: [ready]}, periodSeconds: 1}
)");
  ASSERT_FALSE(history_.empty());
  EXPECT_FALSE(history_.front().container_statuses.at(0).ready);
  EXPECT_EQ(history_.front().container_statuses.at(0).state.kind, Kind::kRunning);
  ASSERT_TRUE(until([&] { return condition("Ready") == "True"; }));
}

TEST_F(Adoption, NothingLeftStartsAsUsual) {
  run(kApp);
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(runtime_->calls("adopt "), Strings{});
  EXPECT_EQ(runtime_->calls()[0], "createSandbox");
}

TEST_F(Adoption, TerminationTellsTheRuntimeWhenItsSigkillIsDue) {
  run("spec:\n  terminationGracePeriodSeconds: 7\n  containers:\n  - {name: app, image: "
      "busybox}\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  auto before = SysClock::now();
  ASSERT_TRUE(terminate());
  auto noted = runtime_->killAt("u1");
  ASSERT_TRUE(noted.has_value());
  // 7 of the pod's seconds are 70 ms here.
  EXPECT_GE(noted.value(), before + std::chrono::milliseconds(70));
  EXPECT_LE(noted.value(), SysClock::now() + std::chrono::milliseconds(70));
}

TEST_F(Adoption, AWorkerLeftRunningReleasesItsPodWithoutStoppingIt) {
  runtime_->setExec("app", 0);
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    livenessProbe: {exec: {command: [check]}, periodSeconds: 1}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  runtime_->leaveRunning();
  ctx_.leaving = true;
  size_t calls = runtime_->calls().size();
  worker_.reset();
  settle(std::chrono::milliseconds(50));  // no timer of it fires
  Strings after(runtime_->calls().begin() + static_cast<std::ptrdiff_t>(calls),
                runtime_->calls().end());
  EXPECT_EQ(after, (Strings{"release app"}));
}

}  // namespace
}  // namespace kernelet::agent
