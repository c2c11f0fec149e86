// End to end in the test VM: `kubectl debug` (ephemeral containers, issue #18)
// as a cluster's users run it. Real kubectl adds the container through the
// test API server's pods/NAME/ephemeralcontainers subresource; the agent
// starts it in the pod's sandbox (in its target's PID namespace with
// --target), reports it in ephemeralContainerStatuses, serves its logs and
// exec into it, leaves the pod's other containers alone, adopts it across an
// agent restart and stops it with the pod.
//
// One API server, one agent (restarted once) and one pod serve every case, in
// order:
//   target  app: `sleep 3600` (ps shows it to a debugger that targets app)
//           side: sleeps too
// Every failure prints what kubectl said and the agent's log.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "support/e2e_cluster.h"
#include "support/privileged.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = testing::kFixtureImage;
// The fixture image is imported, never pulled (its :latest would mean Always).
const std::string kDebug = "debug target --image=" + kImage + " --image-pull-policy=Never ";

// The API server, the agent and the pod every case shares; why they are not
// there, if they are not.
std::unique_ptr<testing::E2eCluster> cluster;
std::string setup_error;

void startCluster() {
  auto c = testing::E2eCluster::start(
      {.name = "debug", .server = {.validate_agent = "admin"}, .webhook_auth = true});
  if (!c) {
    setup_error = c.error().message();
    return;
  }
  cluster = std::move(*c);
  cluster->startAgent();
  auto applied =
      cluster->apply("target",
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: target}\nspec:\n"
                     "  nodeName: node1\n  terminationGracePeriodSeconds: 1\n"
                     "  containers:\n"
                     "  - {name: app, image: '" +
                         kImage +
                         "', imagePullPolicy: Never, command: [sleep, '3600']}\n"
                         "  - {name: side, image: '" +
                         kImage + "', imagePullPolicy: Never, command: [sleep, '3601']}\n");
  if (!applied) {
    setup_error = applied.error().message();
    return;
  }
  if (auto r = cluster->waitRunning({"target"}); !r) {
    setup_error = r.error().message();
  }
}

class DebugE2E : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { cluster.reset(); }
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    KERNELET_REQUIRE_TOOLS("/usr/bin/kubectl");
    if (!cluster && setup_error.empty()) {
      startCluster();
    }
    ASSERT_TRUE(setup_error.empty()) << setup_error;
  }
  std::string kubectl(const std::string& args) { return cluster->kubectl(args); }
  std::string get(const std::string& jsonpath) {
    return kubectl("get pod target -o jsonpath='{" + jsonpath + "}'");
  }
  std::string waitFor(const std::string& jsonpath, const std::string& want) {
    auto p = cluster->poll("get pod target -o jsonpath='{" + jsonpath + "}'",
                           [&want](const std::string& s) { return s == want; });
    return p.seen ? want : p.out + " (waited for " + want + ")" + context();
  }
  // Each regular container's id and restart count: what must not change.
  std::string regular() {
    return get(".status.containerStatuses[*].containerID") + " " +
           get(".status.containerStatuses[*].restartCount");
  }
  std::string context() { return "\nagent log:\n" + cluster->agentLog(); }
};

TEST_F(DebugE2E, ATargetingDebuggerSeesTheTargetsProcessesAndEndsWithItsCode) {
  std::string before = regular();
  std::string out = kubectl(kDebug +
                            "target -c dbg --target=app -- sh -c "
                            "'ps; echo debug-done; exit 3'");
  EXPECT_NE(out.find("Targeting container \"app\""), std::string::npos) << out;
  EXPECT_EQ(waitFor(".status.ephemeralContainerStatuses[?(@.name==\"dbg\")].state.terminated."
                    "exitCode",
                    "3"),
            "3");
  EXPECT_EQ(get(".status.ephemeralContainerStatuses[?(@.name==\"dbg\")].state.terminated.reason"),
            "Error");
  std::string logs = kubectl("logs target -c dbg");
  EXPECT_NE(logs.find("sleep 3600"), std::string::npos) << "the target's process:\n" << logs;
  EXPECT_EQ(logs.find("sleep 3601"), std::string::npos) << "not side's:\n" << logs;
  EXPECT_NE(logs.find("debug-done"), std::string::npos) << logs;
  EXPECT_EQ(regular(), before) << "the other containers were restarted" << context();
  EXPECT_EQ(get(".status.phase"), "Running");
  EXPECT_EQ(get(".status.ephemeralContainerStatuses[?(@.name==\"dbg\")].restartCount"), "0");
  // Its events name it as the kubelet's do (Pulled, Created, Started).
  auto events = cluster->poll("get events -o jsonpath='{.items[*].involvedObject.fieldPath}'",
                              [](const std::string& s) {
                                return s.find("spec.ephemeralContainers{dbg}") != std::string::npos;
                              });
  EXPECT_TRUE(events.seen) << events.out;
}

TEST_F(DebugE2E, ExecReachesARunningDebuggerInThePodsSandbox) {
  std::string out = kubectl(kDebug + "target -c shell -- sleep 3602");
  auto started = cluster->poll(
      "get pod target -o jsonpath='{.status.ephemeralContainerStatuses[?(@.name==\"shell\")]."
      "state.running.startedAt}'",
      [](const std::string& s) { return !s.empty(); });
  ASSERT_TRUE(started.seen) << out << context();
  // Its own PID namespace (no target): only itself and the exec.
  std::string ps = kubectl("exec target -c shell -- ps -o args");
  EXPECT_NE(ps.find("sleep 3602"), std::string::npos) << ps;
  EXPECT_EQ(ps.find("sleep 3600"), std::string::npos) << ps;
  // The pod's UTS namespace: the pod's hostname.
  EXPECT_EQ(kubectl("exec target -c shell -- hostname"), "target\n");
  // A running debugger is one of the pod's containers in the node's stats,
  // read from its own group: what metrics-server reads, and the Summary.
  auto metrics = cluster->poll(
      "get --raw /api/v1/nodes/node1/proxy/metrics/resource", [](const std::string& s) {
        return s.find("container_memory_working_set_bytes{container=\"shell\",namespace=\"" +
                      std::string("default\",pod=\"target\"}")) != std::string::npos;
      });
  EXPECT_TRUE(metrics.seen) << metrics.out << context();
  std::string summary = kubectl("get --raw /api/v1/nodes/node1/proxy/stats/summary");
  EXPECT_NE(summary.find("{\"name\":\"shell\",\"startTime\":\""), std::string::npos) << summary;
}

TEST_F(DebugE2E, ARestartedAgentAdoptsTheRunningDebugger) {
  std::string id = get(".status.ephemeralContainerStatuses[?(@.name==\"shell\")].containerID");
  ASSERT_FALSE(id.empty());
  std::string before = regular();
  ASSERT_FALSE(cluster->agentExited()) << context();
  cluster->stopAgent(SIGKILL);
  cluster->startAgent();
  // The new agent owns it: exec works, and it was neither restarted nor lost.
  auto out = cluster->poll("exec target -c shell -- echo adopted",
                           [](const std::string& s) { return s == "adopted\n"; });
  ASSERT_TRUE(out.seen) << out.out << context();
  EXPECT_EQ(get(".status.ephemeralContainerStatuses[?(@.name==\"shell\")].containerID"), id);
  EXPECT_NE(get(".status.ephemeralContainerStatuses[?(@.name==\"shell\")].state.running."
                "startedAt"),
            "");
  EXPECT_EQ(get(".status.ephemeralContainerStatuses[?(@.name==\"dbg\")].state.terminated."
                "exitCode"),
            "3");
  EXPECT_EQ(regular(), before) << context();
}

TEST_F(DebugE2E, TheDebuggerGoesWithThePod) {
  std::string out = kubectl("delete pod target --wait=true --timeout=120s");
  EXPECT_NE(out.find("deleted"), std::string::npos) << out << context();
  // No process of the pod is left: sleep 3602 (the debugger) ran in it.
  bool found = false;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string cmd = readFile(e.path().string() + "/cmdline").value_or("");
    found = found || cmd.starts_with(std::string("sleep\0003602", 10));
  }
  EXPECT_FALSE(found) << "the debugger outlived its pod" << context();
}

}  // namespace
}  // namespace kernelet
