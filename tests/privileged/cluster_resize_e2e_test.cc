// End to end in the test VM: in-place pod resize (issue #20, KEP 1287 as in
// Kubernetes 1.35) as a cluster's users do it, with real kubectl through the
// test API server's pods/NAME/resize subresource:
//   - cpu (resizePolicy NotRequired): the container's cgroup has the new
//     cpu.max and cpu.weight within 2 s, and it was not restarted;
//   - memory (RestartContainer): the container is restarted once
//     (restartCount 1) and its new cgroup has the new memory.max;
//   - more cpu than the node has: PodResizePending, reason Infeasible, with
//     the kubelet's message; nothing changes;
//   - a negative value is refused by the API server; the agent runs on.
//
// One API server, one agent and one pod serve every case, in order. Every
// failure prints what kubectl said and the agent's log.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
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

struct Cluster {
  std::string base, root, run_dir, cgroup_root;
  std::unique_ptr<testing::ApiServer> server;
  pid_t agent = -1;
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
  std::string agentLog() const { return readFile(base + "/agent.log").value_or(""); }

  bool agentExited() {
    int status = 0;
    if (agent > 0 && ::waitpid(agent, &status, WNOHANG) == agent) {
      agent = -1;
      return true;
    }
    return agent <= 0;
  }

  // Polls `fn` until it returns `want`, at most `limit`; its last answer.
  std::string waitFor(const std::function<std::string()>& fn, const std::string& want,
                      milliseconds limit) {
    auto deadline = steady_clock::now() + limit;
    std::string out = fn();
    while (out != want && steady_clock::now() < deadline && !agentExited()) {
      std::this_thread::sleep_for(milliseconds(50));
      out = fn();
    }
    return out;
  }

  void start() {
    std::string id = std::to_string(::getpid());
    base = "/tmp/kernelet-resize-" + id;
    root = base + "/root";
    run_dir = "/run/kernelet-resize-" + id;
    cgroup_root = "/kernelet-resize-" + id;
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
                                  "--stop-pods-on-exit",
                                  "-v",
                                  "2"},
                                 base + "/agent.log");
    std::string file = base + "/web.yaml";
    std::ofstream(file) << "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"
                           "  nodeName: node1\n  terminationGracePeriodSeconds: 1\n"
                           "  containers:\n"
                           "  - name: app\n    image: '"
                        << kImage
                        << "'\n    imagePullPolicy: Never\n    command: [sleep, '3600']\n"
                           "    resizePolicy:\n"
                           "    - {resourceName: cpu, restartPolicy: NotRequired}\n"
                           "    - {resourceName: memory, restartPolicy: RestartContainer}\n"
                           "    resources:\n"
                           "      requests: {cpu: 100m, memory: 32Mi}\n"
                           "      limits: {cpu: 200m, memory: 64Mi}\n";
    std::string out = kubectl("apply -f " + file);
    if (out.find("created") == std::string::npos) {
      setup_error = "apply: " + out;
      return;
    }
    std::string phase =
        waitFor([this] { return kubectl("get pod web -o jsonpath='{.status.phase}'"); }, "Running",
                milliseconds(240000));
    if (phase != "Running") {
      setup_error = "web not Running: " + phase + "\n" + agentLog();
    }
  }
};

Cluster* cluster = nullptr;

class ResizeE2E : public ::testing::Test {
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
    return kubectl("get pod web -o jsonpath='{" + jsonpath + "}'");
  }
  std::string waitGet(const std::string& jsonpath, const std::string& want,
                      milliseconds limit = milliseconds(60000)) {
    std::string out = cluster->waitFor([&] { return get(jsonpath); }, want, limit);
    return out == want ? out : out + " (waited for " + want + ")" + context();
  }
  std::string resize(const std::string& resources) {
    return kubectl(
        "patch pod web --subresource resize --patch "
        "'{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":" +
        resources + "}]}}'");
  }
  // The running app container's cgroup directory (asked of the API once:
  // kubectl takes a second or more under emulation).
  std::string cgroupDir() {
    std::string id = get(".status.containerStatuses[0].containerID");
    std::string uid = get(".metadata.uid");
    if (id.rfind("kernelet://", 0) == 0) {
      id = id.substr(11);
    }
    return "/sys/fs/cgroup" + cluster->cgroup_root + "/kubepods/burstable/pod" + uid + "/" + id;
  }
  // The running app container's cgroup file `name`.
  std::string cgroupFile(const std::string& name, std::string dir = "") {
    if (dir.empty()) {
      dir = cgroupDir();
    }
    std::string text = readFile(dir + "/" + name).value_or("(no " + dir + "/" + name + ")");
    while (!text.empty() && text.back() == '\n') {
      text.pop_back();
    }
    return text;
  }
  std::string context() { return "\nagent log:\n" + cluster->agentLog(); }
};

TEST_F(ResizeE2E, CpuIsResizedLiveInTheCgroupWithin2Seconds) {
  ASSERT_EQ(cgroupFile("cpu.max"), "20000 100000");
  std::string weight_before = cgroupFile("cpu.weight");
  std::string id = get(".status.containerStatuses[0].containerID");
  std::string dir = cgroupDir();
  std::string out = resize("{\"requests\":{\"cpu\":\"300m\"},\"limits\":{\"cpu\":\"500m\"}}");
  ASSERT_NE(out.find("patched"), std::string::npos) << out;
  auto patched = steady_clock::now();
  std::string cpu_max = cluster->waitFor([&] { return cgroupFile("cpu.max", dir); }, "50000 100000",
                                         milliseconds(2000));
  auto took = duration_cast<milliseconds>(steady_clock::now() - patched);
  EXPECT_EQ(cpu_max, "50000 100000") << context();
  EXPECT_LE(took.count(), 2000);
  EXPECT_NE(cgroupFile("cpu.weight"), weight_before);
  EXPECT_EQ(cgroupFile("memory.max"), "67108864");
  // Not restarted; the status says what is allocated and applied.
  EXPECT_EQ(get(".status.containerStatuses[0].restartCount"), "0");
  EXPECT_EQ(get(".status.containerStatuses[0].containerID"), id);
  EXPECT_EQ(waitGet(".status.containerStatuses[0].resources.limits.cpu", "500m"), "500m");
  EXPECT_EQ(get(".status.containerStatuses[0].allocatedResources.cpu"), "300m");
  EXPECT_EQ(get(".status.conditions[?(@.type==\"PodResizePending\")].status"), "");
  EXPECT_EQ(waitGet(".status.conditions[?(@.type==\"PodResizeInProgress\")].status", ""), "");
  // The pod cgroup follows: cpu.max is the sum of the limits (one container).
  std::string uid = get(".metadata.uid");
  std::string pod_max = readFile("/sys/fs/cgroup" + cluster->cgroup_root +
                                 "/kubepods/burstable/pod" + uid + "/cpu.max")
                            .value_or("?");
  EXPECT_EQ(pod_max, "50000 100000\n");
}

TEST_F(ResizeE2E, MemoryWithRestartContainerRestartsItOnceWithTheNewLimit) {
  std::string out = resize("{\"limits\":{\"memory\":\"128Mi\"}}");
  ASSERT_NE(out.find("patched"), std::string::npos) << out;
  EXPECT_EQ(waitGet(".status.containerStatuses[0].restartCount", "1"), "1");
  EXPECT_EQ(waitGet(".status.containerStatuses[0].started", "true"), "true");
  EXPECT_EQ(
      cluster->waitFor([&] { return cgroupFile("memory.max"); }, "134217728", milliseconds(10000)),
      "134217728")
      << context();
  EXPECT_EQ(waitGet(".status.containerStatuses[0].resources.limits.memory", "128Mi"), "128Mi");
  std::string events = kubectl(
      "get events --field-selector involvedObject.name=web -o jsonpath={.items[*].message}");
  EXPECT_NE(events.find("Container app resize requires restart"), std::string::npos) << events;
}

TEST_F(ResizeE2E, MoreCpuThanTheNodeHasIsInfeasible) {
  std::string out = resize("{\"requests\":{\"cpu\":\"1000\"},\"limits\":{\"cpu\":\"1000\"}}");
  ASSERT_NE(out.find("patched"), std::string::npos) << out;
  EXPECT_EQ(waitGet(".status.conditions[?(@.type==\"PodResizePending\")].reason", "Infeasible"),
            "Infeasible");
  std::string message = get(".status.conditions[?(@.type==\"PodResizePending\")].message");
  EXPECT_EQ(
      message.rfind("Node didn't have enough capacity: cpu, requested: 1000000, capacity: ", 0), 0u)
      << message;
  // Nothing of it was applied.
  EXPECT_EQ(cgroupFile("cpu.max"), "50000 100000");
  EXPECT_EQ(get(".status.containerStatuses[0].allocatedResources.cpu"), "300m");
  // Back to what fits: the condition goes.
  out = resize("{\"requests\":{\"cpu\":\"300m\"},\"limits\":{\"cpu\":\"500m\"}}");
  ASSERT_NE(out.find("patched"), std::string::npos) << out;
  EXPECT_EQ(waitGet(".status.conditions[?(@.type==\"PodResizePending\")].status", ""), "");
}

TEST_F(ResizeE2E, BadValuesAreRefusedByTheApiServerAndTheNodeRunsOn) {
  std::string out = resize("{\"requests\":{\"cpu\":\"-1\"}}");
  EXPECT_NE(out.find("The Pod \"web\" is invalid: spec.containers[0].resources.requests[cpu]: "
                     "Invalid value: \"-1\": must be greater than or equal to 0"),
            std::string::npos)
      << out;
  out = resize("{\"limits\":{\"memory\":\"lots\"}}");
  EXPECT_NE(out.find("quantities must match the regular expression"), std::string::npos) << out;
  // The main update may not change resources.
  out = kubectl(
      "patch pod web --patch "
      "'{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"limits\":{\"cpu\":\"1\"}}}]}}"
      "'");
  EXPECT_NE(out.find("pod updates may not change fields other than"), std::string::npos) << out;
  EXPECT_FALSE(cluster->agentExited()) << context();
  EXPECT_EQ(get(".status.phase"), "Running");
}

}  // namespace
}  // namespace kernelet
