// A pod's life driven through the pod worker with the fake runtime: no root,
// no kernel, and one of the pod's seconds lasts 10 ms, so back-offs and grace
// periods run at their real values without sleeping through them. Each test
// asserts what a user sees: the PodStatus, the Events and the order of the
// runtime calls.
#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

TEST_F(Lifecycle, InitContainersThenSidecarsThenContainersStartInOrder) {
  run(R"(spec:
  initContainers:
  - {name: setup, image: busybox}
  - {name: proxy, image: busybox, restartPolicy: Always}
  - {name: migrate, image: busybox}
  containers:
  - {name: app, image: busybox}
  - {name: worker, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("setup"); }));
  EXPECT_EQ(ctr("app").state.reason, "PodInitializing");
  EXPECT_EQ(worker_->status().phase, "Pending");
  settle(std::chrono::milliseconds(50));
  EXPECT_FALSE(runtime_->running("proxy")) << "the next init container waits for setup's exit";
  ASSERT_TRUE(runtime_->exit("setup", 0));
  ASSERT_TRUE(until([&] { return runtime_->running("migrate"); }));
  EXPECT_TRUE(runtime_->running("proxy")) << "a sidecar keeps running";
  EXPECT_FALSE(runtime_->running("app"));
  ASSERT_TRUE(runtime_->exit("migrate", 0));
  ASSERT_TRUE(until([&] { return running("app") && running("worker"); }));
  EXPECT_EQ(runtime_->calls("start "),
            (Strings{"start setup", "start proxy", "start migrate", "start app", "start worker"}));
  // One pull per container whose image was not there; then the store has it.
  EXPECT_EQ(runtime_->calls("pull "), (Strings{"pull busybox"}));
  EXPECT_EQ(runtime_->calls()[0], "createSandbox");
  EXPECT_EQ(runtime_->calls()[1], "setUpVolumes");
  EXPECT_EQ(worker_->status().phase, "Running");
  EXPECT_EQ(ctr("setup").state.reason, "Completed");
  EXPECT_TRUE(running("proxy"));
  EXPECT_EQ(condition("Initialized"), "True");
  EXPECT_EQ(condition("Ready"), "True");
  EXPECT_EQ(worker_->status().pod_ip, "10.88.0.7");
  EXPECT_TRUE(sawEvent("Normal Started app: Started container app"));
  // Each event names its container where the kubelet's does: init containers
  // (run-to-completion and sidecar alike) by spec.initContainers.
  for (const char* want :
       {"Started spec.initContainers{setup}", "Started spec.initContainers{proxy}",
        "Started spec.initContainers{migrate}", "Started spec.containers{app}"}) {
    EXPECT_NE(std::find(event_paths_.begin(), event_paths_.end(), want), event_paths_.end())
        << want;
  }
}

TEST_F(Lifecycle, RestartPolicyAlwaysBacksOffDoublingWithCrashLoopBackOff) {
  runtime_->addImage("busybox");
  run("spec:\n  containers:\n  - {name: app, image: busybox}\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  // The first failure restarts at once, as the kubelet's back-off does.
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  EXPECT_EQ(ctr("app").restart_count, 1);
  EXPECT_EQ(ctr("app").last_state.exit_code, 1);
  // The second waits 10 s, the third 20 s.
  ASSERT_TRUE(runtime_->exit("app", 2));
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "CrashLoopBackOff"; }));
  EXPECT_EQ(ctr("app").state.message,
            "back-off 10s restarting failed container=app pod=web_default(u1)");
  EXPECT_EQ(ctr("app").last_state.exit_code, 2);
  EXPECT_TRUE(
      sawEvent("Warning BackOff app: Back-off restarting failed container app in pod "
               "web_default(u1)"));
  EXPECT_EQ(worker_->status().phase, "Running");
  EXPECT_EQ(condition("Ready"), "False");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
  EXPECT_EQ(ctr("app").restart_count, 2);
  ASSERT_TRUE(runtime_->exit("app", 3));
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "CrashLoopBackOff"; }));
  EXPECT_EQ(ctr("app").state.message,
            "back-off 20s restarting failed container=app pod=web_default(u1)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(runtime_->starts("app"), 4);
}

// A start answers later, as the real runtime's does: while it is pending the
// status keeps the old restartCount beside the old back-off message, never
// the new count with the back-off it already served.
TEST_F(Lifecycle, ARestartCountsOnceTheNewRunStartedNotWhileItStarts) {
  runtime_->addImage("busybox");
  runtime_->setAsyncStarts(true);
  run("spec:\n  containers:\n  - {name: app, image: busybox}\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "CrashLoopBackOff"; }));
  ASSERT_TRUE(until([&] { return running("app") && ctr("app").restart_count == 2; }));
  for (const auto& s : history_) {
    for (const auto& c : s.container_statuses) {
      if (c.state.reason == "CrashLoopBackOff") {
        EXPECT_EQ(c.restart_count, 1) << c.state.message;
      }
    }
  }
}

TEST_F(Lifecycle, RestartPolicyOnFailureRestartsOnlyFailures) {
  runtime_->addImage("busybox");
  run(R"(spec:
  restartPolicy: OnFailure
  containers:
  - {name: app, image: busybox}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  ASSERT_TRUE(runtime_->exit("app", 0));
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Succeeded"; }));
  settle(std::chrono::milliseconds(50));
  EXPECT_EQ(runtime_->starts("app"), 2);
  EXPECT_EQ(ctr("app").state.reason, "Completed");
  // A completed pod gives its sandbox back before it is deleted.
  EXPECT_FALSE(runtime_->hasSandbox("u1"));
  EXPECT_EQ(worker_->state(), PodState::kCompleted);
  ASSERT_TRUE(terminate());
  EXPECT_EQ(worker_->state(), PodState::kTerminated);
  EXPECT_EQ(worker_->status().phase, "Succeeded");
}

TEST_F(Lifecycle, RestartPolicyNeverLeavesAFailedPod) {
  runtime_->addImage("busybox");
  run(R"(spec:
  restartPolicy: Never
  containers:
  - {name: app, image: busybox}
  - {name: helper, image: busybox}
)");
  ASSERT_TRUE(until([&] { return running("app") && running("helper"); }));
  ASSERT_TRUE(runtime_->exit("app", 7));
  ASSERT_TRUE(runtime_->exit("helper", 0));
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Failed"; }));
  settle(std::chrono::milliseconds(50));
  EXPECT_EQ(runtime_->starts("app"), 1);
  EXPECT_EQ(ctr("app").state.exit_code, 7);
  EXPECT_EQ(ctr("app").state.reason, "Error");
  EXPECT_EQ(ctr("app").restart_count, 0);
  EXPECT_FALSE(runtime_->hasSandbox("u1"));
}

TEST_F(Lifecycle, AFailingInitContainerFailsTheNeverPodAndIsRetriedOtherwise) {
  runtime_->addImage("busybox");
  run(R"(spec:
  restartPolicy: Never
  initContainers: [{name: setup, image: busybox}]
  containers: [{name: app, image: busybox}]
)");
  ASSERT_TRUE(until([&] { return runtime_->running("setup"); }));
  ASSERT_TRUE(runtime_->exit("setup", 1));
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Failed"; }));
  EXPECT_EQ(runtime_->starts("app"), 0);
  EXPECT_EQ(ctr("app").state.reason, "PodInitializing");

  // restartPolicy Always: the init container is restarted, the app waits.
  worker_.reset();
  runtime_ = std::make_unique<FakeRuntime>(*timers_);
  runtime_->addImage("busybox");
  ctx_.runtime = runtime_.get();
  run("spec:\n  initContainers: [{name: setup, image: busybox}]\n"
      "  containers: [{name: app, image: busybox}]\n");
  ASSERT_TRUE(until([&] { return runtime_->running("setup"); }));
  ASSERT_TRUE(runtime_->exit("setup", 1));
  ASSERT_TRUE(until([&] { return runtime_->starts("setup") == 2; }));
  EXPECT_EQ(runtime_->starts("app"), 0);
  ASSERT_TRUE(until([&] { return runtime_->running("setup"); }));
  ASSERT_TRUE(runtime_->exit("setup", 1));
  ASSERT_TRUE(until([&] { return ctr("setup").state.reason == "CrashLoopBackOff"; }));
  ASSERT_TRUE(until([&] { return runtime_->running("setup"); }));
  ASSERT_TRUE(runtime_->exit("setup", 0));
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(ctr("setup").restart_count, 2);
  EXPECT_EQ(worker_->status().phase, "Running");
}

TEST_F(Lifecycle, TerminationStopsContainersBeforeSidecarsThenTheSandbox) {
  runtime_->addImage("busybox");
  run(R"(spec:
  initContainers: [{name: proxy, image: busybox, restartPolicy: Always}]
  containers: [{name: app, image: busybox}]
)");
  ASSERT_TRUE(until([&] { return running("proxy") && running("app"); }));
  ASSERT_TRUE(terminate());
  EXPECT_EQ(runtime_->calls("signal "), (Strings{"signal app 15", "signal proxy 15"}));
  auto calls = runtime_->calls();
  auto at = [&](const std::string& c) { return std::find(calls.begin(), calls.end(), c); };
  EXPECT_LT(at("exited app 143"), at("signal proxy 15")) << "the sidecar stops after the app";
  EXPECT_LT(at("exited proxy 143"), at("destroySandbox"));
  EXPECT_EQ(calls.back(), "destroySandbox");
  EXPECT_EQ(worker_->state(), PodState::kTerminated);
  EXPECT_EQ(worker_->status().phase, "Failed") << "143 is not a success";
  EXPECT_TRUE(sawEvent("Normal Killing app: Stopping container app"));
  EXPECT_FALSE(worker_->active());
}

TEST_F(Lifecycle, AContainerIgnoringItsStopSignalIsKilledWhenTheGracePeriodEnds) {
  runtime_->addImage("busybox");
  runtime_->ignoreStopSignal("app");
  run(R"(spec:
  terminationGracePeriodSeconds: 5
  containers: [{name: app, image: busybox}]
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(terminate());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(45));
  EXPECT_EQ(runtime_->calls("signal "), (Strings{"signal app 15"}));
  EXPECT_EQ(runtime_->calls("kill "), (Strings{"kill app"}));
  EXPECT_EQ(ctr("app").state.exit_code, 137);

  // A second delete with grace 0 kills at once, without waiting for the first's grace.
  worker_.reset();
  runtime_->ignoreStopSignal("app");
  run("spec:\n  terminationGracePeriodSeconds: 300\n  containers: [{name: app, image: busybox}]\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  bool done = false;
  worker_->terminate([&done] { done = true; });
  settle(std::chrono::milliseconds(30));
  EXPECT_FALSE(done);
  worker_->terminate({}, 0);
  ASSERT_TRUE(until([&done] { return done; }, std::chrono::milliseconds(500)));
}

TEST_F(Lifecycle, DeletionWhileTheImageIsPullingStartsNothing) {
  run("spec:\n  containers: [{name: app, image: busybox}]\n");
  EXPECT_EQ(runtime_->calls("pull "), (Strings{"pull busybox"}));
  ASSERT_TRUE(terminate());
  EXPECT_EQ(runtime_->starts("app"), 0);
  EXPECT_EQ(runtime_->calls().back(), "destroySandbox");
  EXPECT_EQ(worker_->state(), PodState::kTerminated);
  EXPECT_EQ(ctr("app").state.reason, "ContainerCreating");
}

TEST_F(Lifecycle, DeletionWhileAContainerStartsStopsItOnceStarted) {
  runtime_->addImage("busybox");
  runtime_->setAsyncStarts(true);
  run("spec:\n  containers: [{name: app, image: busybox}]\n");
  EXPECT_EQ(runtime_->calls("start "), (Strings{"start app"}));
  ASSERT_TRUE(terminate());
  // The start answered after the delete: the container was stopped, not left running.
  EXPECT_EQ(runtime_->calls("signal "), (Strings{"signal app 15"}));
  EXPECT_FALSE(runtime_->running("app"));
  EXPECT_FALSE(runtime_->hasSandbox("u1"));
}

TEST_F(Lifecycle, ANewImageRestartsARunningContainerButNotATerminatingOne) {
  runtime_->addImage("busybox:1");
  runtime_->addImage("busybox:2");
  run("spec:\n  containers: [{name: app, image: 'busybox:1'}]\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  Pod changed = worker_->pod();
  changed.containers[0].image = "busybox:2";
  worker_->update(changed);
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && running("app"); }));
  EXPECT_EQ(ctr("app").image, "busybox:2");
  EXPECT_EQ(runtime_->calls("signal "), (Strings{"signal app 15"}));
  EXPECT_TRUE(sawEvent("Normal Killing app: Container app definition changed, will be restarted"));
  EXPECT_EQ(ctr("app").restart_count, 1);

  // While terminating, a spec change starts nothing.
  runtime_->ignoreStopSignal("app");
  bool done = false;
  worker_->terminate([&done] { done = true; }, 1);
  changed.containers[0].image = "busybox:1";
  worker_->update(changed);
  ASSERT_TRUE(until([&done] { return done; }));
  EXPECT_EQ(runtime_->starts("app"), 2);
  EXPECT_EQ(ctr("app").state.exit_code, 137);
}

TEST_F(Lifecycle, AFailingLivenessProbeRestartsTheContainer) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 1, "not alive");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    livenessProbe: {exec: {command: [check]}, periodSeconds: 1, failureThreshold: 2}
)");
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2; }));
  EXPECT_TRUE(sawEvent("Warning Unhealthy app: Liveness probe failed: not alive"));
  EXPECT_TRUE(
      sawEvent("Normal Killing app: Container app failed liveness probe, will be restarted"));
  EXPECT_GE(runtime_->calls("exec app check").size(), 2u) << "failureThreshold 2";
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(ctr("app").restart_count, 1);
  EXPECT_EQ(ctr("app").last_state.exit_code, 143);
}

TEST_F(Lifecycle, AStartupProbeGatesStartedAndReadinessFlipsReady) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 1);
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    startupProbe: {exec: {command: [started]}, periodSeconds: 1, failureThreshold: 1000}
    readinessProbe: {exec: {command: [ready]}, periodSeconds: 1}
)");
  ASSERT_TRUE(until([&] { return runtime_->calls("exec app started").size() >= 2; }));
  EXPECT_TRUE(running("app"));
  EXPECT_EQ(ctr("app").started, false);
  EXPECT_FALSE(ctr("app").ready);
  runtime_->setExec("app", 0);
  ASSERT_TRUE(until([&] { return ctr("app").ready; }));
  EXPECT_EQ(ctr("app").started, true);
  EXPECT_EQ(condition("Ready"), "True");
  runtime_->setExec("app", 1, "busy");
  ASSERT_TRUE(until([&] { return condition("Ready") == "False"; }));
  EXPECT_TRUE(running("app")) << "readiness never restarts";
  EXPECT_TRUE(sawEvent("Warning Unhealthy app: Readiness probe failed: busy"));
  runtime_->setExec("app", 0);
  ASSERT_TRUE(until([&] { return condition("Ready") == "True"; }));
  EXPECT_EQ(runtime_->starts("app"), 1);
}

TEST_F(Lifecycle, AFailingStartupProbeRestartsTheContainer) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 1, "not yet");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    startupProbe: {exec: {command: [started]}, periodSeconds: 1, failureThreshold: 3}
)");
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2; }));
  EXPECT_EQ(runtime_->calls("exec app started").size(), 3u);
  EXPECT_TRUE(
      sawEvent("Normal Killing app: Container app failed startup probe, will be restarted"));
}

TEST_F(Lifecycle, AFailedPullShowsErrImagePullThenImagePullBackOffUntilARetrySucceeds) {
  runtime_->failPulls("registry.example/app:1", 2, "manifest unknown");
  run("spec:\n  containers: [{name: app, image: 'registry.example/app:1'}]\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  // Each failure shows as ErrImagePull, then from the pod's next sync on as
  // ImagePullBackOff until the retry (10 s, then 20 s: agent_image_pull_test).
  EXPECT_EQ(waitingReasons("app"), (Strings{"ContainerCreating", "ErrImagePull", "ImagePullBackOff",
                                            "ErrImagePull", "ImagePullBackOff"}));
  EXPECT_EQ(runtime_->calls("pull "), Strings(3, "pull registry.example/app:1"));
  EXPECT_TRUE(sawEvent(
      "Warning Failed app: Failed to pull image \"registry.example/app:1\": manifest unknown"));
  EXPECT_TRUE(
      sawEvent("Normal Pulled app: Successfully pulled image \"registry.example/app:1\" in "));
  EXPECT_EQ(ctr("app").restart_count, 0);
}

TEST_F(Lifecycle, NeverPullingAnAbsentImageWaitsWithErrImageNeverPull) {
  run(R"(spec:
  containers: [{name: app, image: busybox, imagePullPolicy: Never}]
)");
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "ErrImageNeverPull"; }));
  EXPECT_EQ(ctr("app").state.message,
            "Container image \"busybox\" is not present with pull policy of Never");
  runtime_->addImage("busybox");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_TRUE(runtime_->calls("pull ").empty());
}

TEST_F(Lifecycle, StartAndCreateErrorsAreRetried) {
  runtime_->addImage("busybox");
  runtime_->failStarts("app", 1, "CreateContainerConfigError", "secret \"s\" not found");
  runtime_->failStarts("app", 1, "StartError", "exec `/app`: No such file or directory");
  run("spec:\n  containers: [{name: app, image: busybox}]\n");
  // A config error waits and is retried, and does not count as a restart.
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "CreateContainerConfigError"; }));
  EXPECT_EQ(ctr("app").state.message, "secret \"s\" not found");
  EXPECT_TRUE(sawEvent("Warning Failed app: Error: secret \"s\" not found"));
  // A StartError is a run that failed: exit 128, counted, restarted at once the first time.
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(ctr("app").last_state.reason, "StartError");
  EXPECT_EQ(ctr("app").last_state.exit_code, 128);
  EXPECT_EQ(ctr("app").restart_count, 1);
  EXPECT_EQ(runtime_->starts("app"), 3);
}

TEST_F(Lifecycle, ASandboxThatCannotBeCreatedIsRetried) {
  runtime_->addImage("busybox");
  runtime_->failSandbox(1, "netlink: busy");
  run("spec:\n  containers: [{name: app, image: busybox}]\n");
  EXPECT_TRUE(
      sawEvent("Warning FailedCreatePodSandBox : Failed to create pod sandbox: create sandbox "
               "`u1`: netlink: "
               "busy"))
      << events_[0];
  EXPECT_EQ(worker_->status().message, "create sandbox `u1`: netlink: busy");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_EQ(worker_->status().message, "");
  EXPECT_EQ(runtime_->calls("createSandbox").size(), 2u);
}

TEST_F(Lifecycle, ARejectedPodIsFailedAndNothingRuns) {
  Pod pod = parse(R"(spec:
  containers:
  - name: app
    image: busybox
    resources: {requests: {cpu: "3"}}
)");
  worker_ = std::make_shared<PodWorker>(ctx_, pod, "hash");
  Admission adm = admit(worker_->pod(), {}, ctx_.node);
  ASSERT_FALSE(adm.admitted);
  worker_->reject(adm.reason, adm.message);
  EXPECT_EQ(worker_->status().phase, "Failed");
  EXPECT_EQ(worker_->status().reason, "OutOfcpu");
  EXPECT_EQ(worker_->status().message.rfind("Pod was rejected: ", 0), 0u);
  EXPECT_EQ(worker_->state(), PodState::kRejected);
  EXPECT_FALSE(worker_->active());
  EXPECT_TRUE(runtime_->calls().empty());
  ASSERT_TRUE(terminate());
  EXPECT_EQ(worker_->status().reason, "OutOfcpu");
  EXPECT_TRUE(runtime_->calls().empty());
}

// An API pod that sets a field kernelet refuses: rejected as the kubelet's
// rejectPod does (phase Failed, the reason, "Pod was rejected: " and the
// message naming the field) with a Warning event, and nothing of it runs.
TEST_F(Lifecycle, APodWithARefusedFieldIsRejectedWithAWarningEvent) {
  auto pods = parseManifests(R"({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "uid": "u1"},
    "spec": {"containers": [{"name": "app", "image": "busybox",
      "volumeDevices": [{"name": "v", "devicePath": "/dev/xvda"}]}]}})",
                             "pod default/web", RefusedFields::kRecord);
  ASSERT_TRUE(pods) << pods.error().message();
  worker_ = std::make_shared<PodWorker>(ctx_, (*pods)[0].pod, "hash");
  Admission adm = admit(worker_->pod(), {}, ctx_.node);
  ASSERT_FALSE(adm.admitted);
  worker_->reject(adm.reason, adm.message);
  EXPECT_EQ(worker_->status().phase, "Failed");
  EXPECT_EQ(worker_->status().reason, "UnsupportedPodSpec");
  EXPECT_EQ(worker_->status().message,
            "Pod was rejected: spec.containers[0].volumeDevices: not supported by kernelet");
  EXPECT_TRUE(
      sawEvent("Warning UnsupportedPodSpec : spec.containers[0].volumeDevices: not supported by "
               "kernelet"))
      << (events_.empty() ? "(no events)" : events_[0]);
  EXPECT_TRUE(runtime_->calls().empty());
}

}  // namespace
}  // namespace kernelet::agent
