// Ephemeral containers (kubectl debug): decoded with what the API forbids
// refused by name, started once in the running pod without touching its other
// containers, never restarted, in their target's PID namespace, reported in
// ephemeralContainerStatuses, stopped with the pod, adopted after a restart.
#include "agent/status/pod_status.h"
#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono_literals;

Result<std::vector<ManifestPod>> decodePod(const std::string& ephemeral) {
  return parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"
      "  containers: [{name: app, image: busybox}]\n"
      "  volumes: [{name: data, emptyDir: {}}]\n"
      "  ephemeralContainers:\n" +
          ephemeral,
      "web.yaml");
}

std::string decodeError(const std::string& ephemeral) {
  auto pods = decodePod(ephemeral);
  return pods ? "(decoded)" : pods.error().message();
}

TEST(EphemeralDecode, TheContainerFieldsAndItsTarget) {
  auto pods = decodePod(
      "  - name: debugger\n    image: busybox\n    command: [sh, -c, ps]\n"
      "    targetContainerName: app\n    resources: {}\n    terminationMessagePolicy: File\n"
      "    volumeMounts: [{name: data, mountPath: /data}]\n");
  ASSERT_TRUE(pods) << pods.error().message();
  const Pod& p = (*pods)[0].pod;
  ASSERT_EQ(p.ephemeral_containers.size(), 1u);
  const EphemeralContainer& e = p.ephemeral_containers[0];
  EXPECT_EQ(e.name, "debugger");
  EXPECT_EQ(e.image, "busybox");
  EXPECT_EQ(e.command, (Strings{"sh", "-c", "ps"}));
  EXPECT_EQ(e.target_container_name, "app");
  ASSERT_EQ(e.volume_mounts.size(), 1u);
  EXPECT_EQ(e.volume_mounts[0].mount_path, "/data");
}

TEST(EphemeralDecode, FieldsTheApiForbidsAreRefusedByName) {
  const std::string forbidden = ": Forbidden: cannot be set for an Ephemeral Container";
  EXPECT_EQ(decodeError("  - {name: d, image: i, ports: [{containerPort: 80}]}\n"),
            "parse manifest `web.yaml`: line 8: spec.ephemeralContainers[0].ports" + forbidden);
  EXPECT_EQ(decodeError("  - {name: d, image: i, resources: {limits: {cpu: 1}}}\n"),
            "parse manifest `web.yaml`: line 8: spec.ephemeralContainers[0].resources" + forbidden);
  EXPECT_EQ(
      decodeError("  - {name: d, image: i, livenessProbe: {tcpSocket: {port: 1}}}\n"),
      "parse manifest `web.yaml`: line 8: spec.ephemeralContainers[0].livenessProbe" + forbidden);
  for (const char* key : {"readinessProbe", "startupProbe", "lifecycle"}) {
    EXPECT_NE(
        decodeError(std::string("  - {name: d, image: i, ") + key + ": {exec: {command: [x]}}}\n")
            .find(std::string("spec.ephemeralContainers[0].") + key + forbidden),
        std::string::npos)
        << key;
  }
  EXPECT_NE(decodeError("  - {name: d, image: i, restartPolicy: Always}\n")
                .find("spec.ephemeralContainers[0].restartPolicy" + forbidden),
            std::string::npos);
  EXPECT_NE(decodeError("  - {name: d, image: i, volumeMounts: [{name: data, mountPath: /d, "
                        "subPath: x}]}\n")
                .find("spec.ephemeralContainers[0].volumeMounts[0].subPath" + forbidden),
            std::string::npos);
}

TEST(EphemeralDecode, NamesTargetsAndMountsAreChecked) {
  EXPECT_NE(decodeError("  - {name: app, image: i}\n")
                .find("spec.ephemeralContainers[0].name: duplicate container name \"app\""),
            std::string::npos);
  EXPECT_NE(decodeError("  - {name: d, image: i, targetContainerName: nope}\n")
                .find("spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\""),
            std::string::npos);
  EXPECT_NE(decodeError("  - {name: d}\n").find("spec.ephemeralContainers[0].image: required"),
            std::string::npos);
  EXPECT_NE(decodeError("  - {name: d, image: i, volumeMounts: [{name: gone, mountPath: /g}]}\n")
                .find("container d volumeMounts: no volume named \"gone\""),
            std::string::npos);
  EXPECT_NE(decodeError("  {name: d}\n").find("spec.ephemeralContainers: must be a list"),
            std::string::npos);
}

TEST(EphemeralStatus, WrittenAndReadBackWithoutStarted) {
  PodStatus s;
  s.container_statuses.push_back({.name = "app"});
  ContainerStatus d{.name = "debugger", .image = "busybox"};
  d.state = {.kind = Kind::kTerminated, .reason = "Completed", .exit_code = 3};
  s.ephemeral_container_statuses.push_back(d);
  std::string json = podStatusJson(s);
  EXPECT_NE(json.find("\"ephemeralContainerStatuses\""), std::string::npos) << json;
  EXPECT_EQ(json.find("\"started\""), std::string::npos) << json;
  auto back = parsePodJson("{\"metadata\":{\"name\":\"web\"},\"status\":" + json + "}", "t");
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_EQ(back->status.ephemeral_container_statuses.size(), 1u);
  EXPECT_EQ(back->status.ephemeral_container_statuses[0].name, "debugger");
  EXPECT_EQ(back->status.ephemeral_container_statuses[0].state.exit_code, 3);
  EXPECT_TRUE(back->status.container_statuses[0].name == "app");
}

class Ephemeral : public Lifecycle {
 protected:
  void SetUp() override {
    Lifecycle::SetUp();
    runtime_->addImage("busybox");
  }
  // The running pod's spec with an ephemeral container added, as the API
  // sends it after kubectl debug.
  Pod withDebugger(const std::string& name, const std::string& target) {
    Pod p = worker_->pod();
    EphemeralContainer e;
    e.name = name;
    e.image = "busybox";
    e.command = {"sh", "-c", "ps"};
    e.target_container_name = target;
    p.ephemeral_containers.push_back(e);
    return p;
  }
  const ContainerStatus* ephemeralStatus(const std::string& name) {
    for (const auto& c : worker_->status().ephemeral_container_statuses) {
      if (c.name == name) {
        return &c;
      }
    }
    return nullptr;
  }
};

const char* const kTwo =
    "spec:\n  containers:\n  - {name: app, image: busybox}\n  - {name: side, image: busybox}\n";

TEST_F(Ephemeral, AddedToARunningPodStartsOnceInTheTargetsPidNamespace) {
  run(kTwo);
  ASSERT_TRUE(until([&] { return running("app") && running("side"); }));
  std::string app_id = ctr("app").container_id;
  worker_->update(withDebugger("debugger", "app"));
  ASSERT_TRUE(until([&] { return runtime_->running("debugger"); }));
  EXPECT_EQ(runtime_->sharedPidWith("debugger"), "app");
  ASSERT_NE(ephemeralStatus("debugger"), nullptr);
  EXPECT_EQ(ephemeralStatus("debugger")->state.kind, Kind::kRunning);
  EXPECT_FALSE(ephemeralStatus("debugger")->started.has_value());
  EXPECT_FALSE(ephemeralStatus("debugger")->ready);
  EXPECT_TRUE(sawEvent("Normal Started debugger: Started container debugger"));
  // The others were left alone: one start each, same run, not in the
  // ephemeral list; the pod stays Running and Ready.
  EXPECT_EQ(runtime_->starts("app"), 1);
  EXPECT_EQ(runtime_->starts("side"), 1);
  EXPECT_EQ(runtime_->calls("signal "), Strings{});
  EXPECT_EQ(ctr("app").container_id, app_id);
  EXPECT_EQ(worker_->status().container_statuses.size(), 2u);

  // Its exit is final, whatever the pod's restartPolicy (Always).
  ASSERT_TRUE(runtime_->exit("debugger", 3));
  ASSERT_TRUE(until([&] { return ephemeralStatus("debugger")->state.kind == Kind::kTerminated; }));
  settle(300ms);  // longer than the first back-off (10 pod seconds)
  EXPECT_EQ(runtime_->starts("debugger"), 1);
  EXPECT_EQ(ephemeralStatus("debugger")->state.exit_code, 3);
  EXPECT_EQ(ephemeralStatus("debugger")->state.reason, "Error");
  EXPECT_EQ(ephemeralStatus("debugger")->restart_count, 0);
  EXPECT_EQ(worker_->status().phase, "Running");
  EXPECT_EQ(condition("Ready"), "True");
  EXPECT_EQ(runtime_->starts("app"), 1);

  // A second one starts as well; the first is not started again, nor is a
  // changed copy of it (the API refuses changes) taken.
  Pod next = withDebugger("second", "");
  next.ephemeral_containers[0].image = "other";
  worker_->update(next);
  ASSERT_TRUE(until([&] { return runtime_->running("second"); }));
  EXPECT_EQ(runtime_->sharedPidWith("second"), "");
  EXPECT_EQ(runtime_->starts("debugger"), 1);
  EXPECT_EQ(worker_->pod().ephemeral_containers[0].image, "busybox");
  EXPECT_EQ(worker_->status().ephemeral_container_statuses.size(), 2u);

  // It goes with the pod.
  ASSERT_TRUE(terminate());
  EXPECT_FALSE(runtime_->running("second"));
  auto signals = runtime_->calls("signal ");
  EXPECT_NE(std::find(signals.begin(), signals.end(), "signal second 15"), signals.end());
}

TEST_F(Ephemeral, ATargetThatDoesNotRunIsACreateContainerConfigError) {
  run("spec:\n  restartPolicy: Never\n  containers:\n"
      "  - {name: app, image: busybox}\n  - {name: done, image: busybox}\n");
  ASSERT_TRUE(until([&] { return running("app") && running("done"); }));
  ASSERT_TRUE(runtime_->exit("done", 0));
  ASSERT_TRUE(until([&] { return ctr("done").state.kind == Kind::kTerminated; }));
  worker_->update(withDebugger("debugger", "done"));
  ASSERT_TRUE(until([&] {
    const ContainerStatus* s = ephemeralStatus("debugger");
    return s != nullptr && s->state.reason == "CreateContainerConfigError";
  }));
  EXPECT_EQ(ephemeralStatus("debugger")->state.message, "unable to find target container done");
  EXPECT_TRUE(sawEvent("Warning Failed debugger: Error: unable to find target container done"));
  EXPECT_EQ(runtime_->starts("debugger"), 0);
  EXPECT_EQ(worker_->status().phase, "Running");
}

TEST_F(Ephemeral, ItKeepsNoPodAliveAndStopsWithIt) {
  run("spec:\n  restartPolicy: Never\n  containers: [{name: app, image: busybox}]\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  worker_->update(withDebugger("debugger", "app"));
  ASSERT_TRUE(until([&] { return runtime_->running("debugger"); }));
  // The pod's only container completes: the pod is done, and the debugger goes.
  ASSERT_TRUE(runtime_->exit("app", 0));
  ASSERT_TRUE(until([&] { return !runtime_->running("debugger"); }));
  auto signals = runtime_->calls("signal ");
  EXPECT_NE(std::find(signals.begin(), signals.end(), "signal debugger 15"), signals.end());
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Succeeded"; }));
  EXPECT_EQ(runtime_->starts("debugger"), 1);
}

TEST_F(Ephemeral, AdoptedRunningAfterAnAgentRestartAndNeverStartedAgain) {
  runtime::AdoptedContainer app{.name = "app",
                                .id = "a1",
                                .started_at = "2026-01-02T03:04:05Z",
                                .image = {.name = "busybox", .id = "busybox@sha256:aa"},
                                .handle = 1};
  runtime::AdoptedContainer dbg = app;
  dbg.name = "debugger";
  dbg.id = "d1";
  runtime_->leave("u1",
                  {.pod_hash = "hash", .sandbox = {.ip = "10.88.0.9"}, .containers = {app, dbg}});
  run("spec:\n  containers: [{name: app, image: busybox}]\n"
      "  ephemeralContainers: [{name: debugger, image: busybox, targetContainerName: app}]\n");
  settle(50ms);
  EXPECT_EQ(runtime_->starts("app"), 0);
  EXPECT_EQ(runtime_->starts("debugger"), 0);
  ASSERT_NE(ephemeralStatus("debugger"), nullptr);
  EXPECT_EQ(ephemeralStatus("debugger")->state.kind, Kind::kRunning);
  EXPECT_EQ(ephemeralStatus("debugger")->container_id, "kernelet://d1");
  ASSERT_TRUE(runtime_->exit("debugger", 0));
  ASSERT_TRUE(until([&] { return ephemeralStatus("debugger")->state.kind == Kind::kTerminated; }));
  settle(300ms);
  EXPECT_EQ(runtime_->starts("debugger"), 0);
  EXPECT_EQ(ephemeralStatus("debugger")->state.reason, "Completed");
}

TEST_F(Ephemeral, OneLeftExitedWhileNoAgentRanIsReportedNotStarted) {
  runtime::AdoptedContainer app{.name = "app",
                                .id = "a1",
                                .started_at = "2026-01-02T03:04:05Z",
                                .image = {.name = "busybox", .id = "busybox@sha256:aa"},
                                .handle = 1};
  runtime::AdoptedContainer dbg{.name = "debugger",
                                .id = "d1",
                                .started_at = "2026-01-02T03:04:05Z",
                                .image = {.name = "busybox", .id = "busybox@sha256:aa"}};
  // The holder did not hear its exit: the kubelet's lost container.
  runtime_->leave("u1",
                  {.pod_hash = "hash", .sandbox = {.ip = "10.88.0.9"}, .containers = {app, dbg}});
  run("spec:\n  containers: [{name: app, image: busybox}]\n"
      "  ephemeralContainers: [{name: debugger, image: busybox}]\n");
  settle(300ms);
  EXPECT_EQ(runtime_->starts("debugger"), 0);
  ASSERT_NE(ephemeralStatus("debugger"), nullptr);
  EXPECT_EQ(ephemeralStatus("debugger")->state.kind, Kind::kTerminated);
  EXPECT_EQ(ephemeralStatus("debugger")->state.reason, "ContainerStatusUnknown");
  EXPECT_EQ(ephemeralStatus("debugger")->state.exit_code, 137);
}

}  // namespace
}  // namespace kernelet::agent
