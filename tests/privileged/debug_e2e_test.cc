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

#include "support/api_server.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";
// The fixture image is imported, never pulled (its :latest would mean Always).
const std::string kDebug = "debug target --image=" + kImage + " --image-pull-policy=Never ";

struct Cluster {
  std::string base, root, run_dir, cgroup_root;
  std::unique_ptr<testing::ApiServer> server;
  pid_t agent = -1;
  int agents = 0;  // how many were started: each logs to agent-N.log
  std::string setup_error;

  ~Cluster() {
    if (agent > 0) {
      ::kill(agent, SIGTERM);
      ::waitpid(agent, nullptr, 0);
    }
    server.reset();
    std::error_code ec;
    fs::remove_all(base, ec);
    std::string top = "/sys/fs/cgroup" + cgroup_root;
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir((top + q).c_str());
    }
  }

  std::string kubectl(const std::string& args) const { return server->kubectl(args); }
  std::string agentLog() const {
    std::string all;
    for (int i = 1; i <= agents; i++) {
      all += "--- agent " + std::to_string(i) + "\n" +
             readFile(base + "/agent-" + std::to_string(i) + ".log").value_or("");
    }
    return all;
  }

  bool agentExited() {
    int status = 0;
    if (agent > 0 && ::waitpid(agent, &status, WNOHANG) == agent) {
      agent = -1;
      return true;
    }
    return agent <= 0;
  }

  // Polls `kubectl ARGS` until `ok`; the last output either way.
  std::string waitKubectl(const std::string& args,
                          const std::function<bool(const std::string&)>& ok, bool& seen) {
    auto deadline = steady_clock::now() + seconds(240);
    std::string out;
    seen = false;
    while (steady_clock::now() < deadline) {
      out = kubectl(args);
      if (ok(out)) {
        seen = true;
        return out;
      }
      if (agentExited()) {
        return out + "\n(the agent has exited)";
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    return out;
  }

  void startAgent() {
    agents++;
    agent = testing::spawnLogged({KERNELET_BINARY,
                                  "run",
                                  "--kubeconfig",
                                  server->kubeconfig(),
                                  "--pod-manifest-path",
                                  base + "/manifests",
                                  "--root-dir",
                                  root,
                                  "--pod-log-dir",
                                  base + "/logs",
                                  "--run-dir",
                                  run_dir,
                                  "--cgroup-root",
                                  cgroup_root,
                                  "--hostname-override",
                                  "node1",
                                  "--node-ip",
                                  "127.0.0.1",
                                  "--port=0",
                                  "--client-ca-file",
                                  server->caFile(),
                                  "--authentication-token-webhook",
                                  "--authorization-mode",
                                  "Webhook",
                                  "--stop-pods-on-exit",
                                  "-v",
                                  "2"},
                                 base + "/agent-" + std::to_string(agents) + ".log");
  }

  void start() {
    std::string id = std::to_string(::getpid());
    base = "/tmp/kernelet-debug-" + id;
    root = base + "/root";
    run_dir = "/run/kernelet-debug-" + id;
    cgroup_root = "/kernelet-debug-" + id;
    fs::create_directories(base + "/manifests");
    testing::ApiServer::Options options;
    options.validate_agent = "admin";
    auto s = testing::ApiServer::start(base + "/api", options);
    if (!s) {
      setup_error = s.error().message();
      return;
    }
    server = std::make_unique<testing::ApiServer>(std::move(*s));
    std::string import = std::string(KERNELET_BINARY) + " images --root-dir " + root + " import " +
                         KERNELET_FIXTURES + "/oci/busybox >" + base + "/import.log 2>&1";
    if (std::system(import.c_str()) != 0) {
      setup_error = "image import: " + readFile(base + "/import.log").value_or("");
      return;
    }
    startAgent();
    std::string file = base + "/target.yaml";
    std::ofstream(file) << "apiVersion: v1\nkind: Pod\nmetadata: {name: target}\nspec:\n"
                           "  nodeName: node1\n  terminationGracePeriodSeconds: 1\n"
                           "  containers:\n"
                           "  - {name: app, image: '"
                        << kImage
                        << "', imagePullPolicy: Never, command: [sleep, '3600']}\n"
                           "  - {name: side, image: '"
                        << kImage << "', imagePullPolicy: Never, command: [sleep, '3601']}\n";
    std::string out = kubectl("apply -f " + file);
    if (out.find("created") == std::string::npos) {
      setup_error = "apply: " + out;
      return;
    }
    bool seen = false;
    std::string phase = waitKubectl(
        "get pod target -o jsonpath='{.status.phase}'",
        [](const std::string& s) { return s == "Running"; }, seen);
    if (!seen) {
      setup_error = "target not Running: " + phase + "\n" + agentLog();
    }
  }
};

Cluster* cluster = nullptr;

class DebugE2E : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete cluster;
    cluster = nullptr;
  }
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    if (::access("/usr/bin/kubectl", X_OK) != 0) {
      if (std::getenv("CI") != nullptr || testing::inTestVm()) {
        FAIL() << "kubectl is not installed";
      }
      GTEST_SKIP() << "kubectl is not installed";
    }
    if (cluster == nullptr) {
      cluster = new Cluster();
      cluster->start();
    }
    ASSERT_TRUE(cluster->setup_error.empty()) << cluster->setup_error;
  }
  std::string kubectl(const std::string& args) { return cluster->kubectl(args); }
  std::string get(const std::string& jsonpath) {
    return kubectl("get pod target -o jsonpath='{" + jsonpath + "}'");
  }
  std::string waitFor(const std::string& jsonpath, const std::string& want) {
    bool seen = false;
    std::string out = cluster->waitKubectl(
        "get pod target -o jsonpath='{" + jsonpath + "}'",
        [&want](const std::string& s) { return s == want; }, seen);
    return seen ? want : out + " (waited for " + want + ")" + context();
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
  bool seen = false;
  std::string events = cluster->waitKubectl(
      "get events -o jsonpath='{.items[*].involvedObject.fieldPath}'",
      [](const std::string& s) {
        return s.find("spec.ephemeralContainers{dbg}") != std::string::npos;
      },
      seen);
  EXPECT_TRUE(seen) << events;
}

TEST_F(DebugE2E, ExecReachesARunningDebuggerInThePodsSandbox) {
  std::string out = kubectl(kDebug + "target -c shell -- sleep 3602");
  bool seen = false;
  cluster->waitKubectl(
      "get pod target -o jsonpath='{.status.ephemeralContainerStatuses[?(@.name==\"shell\")]."
      "state.running.startedAt}'",
      [](const std::string& s) { return !s.empty(); }, seen);
  ASSERT_TRUE(seen) << out << context();
  // Its own PID namespace (no target): only itself and the exec.
  std::string ps = kubectl("exec target -c shell -- ps -o args");
  EXPECT_NE(ps.find("sleep 3602"), std::string::npos) << ps;
  EXPECT_EQ(ps.find("sleep 3600"), std::string::npos) << ps;
  // The pod's UTS namespace: the pod's hostname.
  EXPECT_EQ(kubectl("exec target -c shell -- hostname"), "target\n");
  // A running debugger is one of the pod's containers in the node's stats,
  // read from its own group: what metrics-server reads, and the Summary.
  std::string metrics = cluster->waitKubectl(
      "get --raw /api/v1/nodes/node1/proxy/metrics/resource",
      [](const std::string& s) {
        return s.find("container_memory_working_set_bytes{container=\"shell\",namespace=\"" +
                      std::string("default\",pod=\"target\"}")) != std::string::npos;
      },
      seen);
  EXPECT_TRUE(seen) << metrics << context();
  std::string summary = kubectl("get --raw /api/v1/nodes/node1/proxy/stats/summary");
  EXPECT_NE(summary.find("{\"name\":\"shell\",\"startTime\":\""), std::string::npos) << summary;
}

TEST_F(DebugE2E, ARestartedAgentAdoptsTheRunningDebugger) {
  std::string id = get(".status.ephemeralContainerStatuses[?(@.name==\"shell\")].containerID");
  ASSERT_FALSE(id.empty());
  std::string before = regular();
  ASSERT_EQ(::kill(cluster->agent, SIGKILL), 0);
  ::waitpid(cluster->agent, nullptr, 0);
  cluster->agent = -1;
  cluster->startAgent();
  // The new agent owns it: exec works, and it was neither restarted nor lost.
  bool seen = false;
  std::string out = cluster->waitKubectl(
      "exec target -c shell -- echo adopted", [](const std::string& s) { return s == "adopted\n"; },
      seen);
  ASSERT_TRUE(seen) << out << context();
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
