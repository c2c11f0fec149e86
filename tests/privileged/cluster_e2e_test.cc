// End-to-end tests of `kernelet run --kubeconfig` in the test VM: the agent,
// the test API server (schema checks on everything the agent writes) and
// kubectl as the user's client.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>
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

class ClusterE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    if (::access("/usr/bin/kubectl", X_OK) != 0) {
      GTEST_SKIP() << "kubectl is not installed";
    }
    std::string id = std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    base_ = "/tmp/kernelet-cluster-" + id;
    root_ = base_ + "/root";
    manifests_ = base_ + "/manifests";
    run_ = "/run/kernelet-cluster-" + std::to_string(::getpid());
    cgroup_root_ = "/kernelet-cluster-" + std::to_string(::getpid());
    fs::create_directories(manifests_);
    // Tokens live 20 s (the agent renews them after 16), so a test sees a renewal.
    auto s =
        testing::ApiServer::start(base_ + "/api", {.validate_agent = "admin", .token_ttl = 20});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    ASSERT_EQ(sh(std::string(KERNELET_BINARY) + " images --root-dir " + root_ + " import " +
                 KERNELET_FIXTURES + "/oci/busybox"),
              0);
    started_ = true;
  }

  void TearDown() override {
    if (!started_) {
      return;
    }
    if (agent_ > 0) {
      ::kill(agent_, SIGTERM);
      int st;
      ::waitpid(agent_, &st, 0);
    }
    EXPECT_EQ(server_->control("violations", "", false).value_or("?"), "[]")
        << "the agent sent what the schema refuses";
    server_.reset();
    fs::remove_all(base_);
    std::string top = "/sys/fs/cgroup" + cgroup_root_;
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir((top + q).c_str());
    }
  }

  int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

  // `leave_pods`: as under a service manager, SIGTERM leaves the pods running
  // for the next agent; else the agent stops them (TearDown's SIGTERM).
  void startAgent(const std::vector<std::string>& extra = {}, bool leave_pods = false) {
    std::vector<std::string> args = {KERNELET_BINARY,
                                     "run",
                                     "--port=0",  // several agents (and tests) at once
                                     "--kubeconfig",
                                     server_->kubeconfig(),
                                     "--pod-manifest-path",
                                     manifests_,
                                     "--root-dir",
                                     root_,
                                     "--pod-log-dir",
                                     base_ + "/logs",
                                     "--run-dir",
                                     run_,
                                     "--cgroup-root",
                                     cgroup_root_,
                                     "--hostname-override",
                                     "node1",
                                     "-v",
                                     "2"};
    if (!leave_pods) {
      args.push_back("--stop-pods-on-exit");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = testing::spawnLogged(std::move(args), base_ + "/agent.log");
  }

  std::string kubectl(const std::string& args) { return server_->kubectl(args); }

  // Polls `kubectl ARGS` until its output satisfies `ok`.
  std::string waitKubectl(const std::string& args,
                          const std::function<bool(const std::string&)>& ok,
                          const std::string& what, seconds timeout = seconds(90)) {
    auto deadline = steady_clock::now() + timeout;
    std::string out;
    while (steady_clock::now() < deadline) {
      out = kubectl(args);
      if (ok(out)) {
        return out;
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    ADD_FAILURE() << what << " not seen in " << timeout.count() << " s; last: " << out << "\n"
                  << readFile(base_ + "/agent.log").value_or("");
    return out;
  }

  void apply(const std::string& name, const std::string& yaml) {
    std::string file = base_ + "/" + name + ".yaml";
    std::ofstream(file) << yaml;
    std::string out = kubectl("apply -f " + file);
    ASSERT_NE(out.find("created"), std::string::npos) << out;
  }

  // What the pod's containers wrote, from the CRI log files of every run.
  std::string containerOutput(const std::string& pod) {
    std::string out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(base_ + "/logs", ec)) {
      if (e.path().string().find("/default_" + pod + "_") != std::string::npos &&
          e.path().extension() == ".log") {
        out += readFile(e.path().string()).value_or("");
      }
    }
    return out;
  }

  std::string waitOutput(const std::string& pod, const std::string& needle, seconds timeout) {
    auto deadline = steady_clock::now() + timeout;
    std::string out;
    while (steady_clock::now() < deadline) {
      out = containerOutput(pod);
      if (out.find(needle) != std::string::npos) {
        return out;
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    ADD_FAILURE() << "\"" << needle << "\" not in " << pod << "'s output after " << timeout.count()
                  << " s: " << out << "\n"
                  << readFile(base_ + "/agent.log").value_or("");
    return out;
  }

  std::string base_, root_, manifests_, run_, cgroup_root_;
  std::optional<testing::ApiServer> server_;
  pid_t agent_ = -1;
  bool started_ = false;
};

std::string podYaml(const std::string& name, const std::string& command,
                    const std::string& extra = "") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  nodeName: node1\n  terminationGracePeriodSeconds: 5\n" + extra +
         "  containers:\n  - name: app\n    image: " + kImage +
         "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + command + "']\n";
}

auto has(const std::string& needle) {
  return [needle](const std::string& s) { return s.find(needle) != std::string::npos; };
}

TEST_F(ClusterE2E, TheNodeIsReadyWithItsCapacityAndRenewsItsLease) {
  startAgent({"--kube-reserved", "cpu=100m,memory=100Mi", "--system-reserved", "memory=28Mi"});
  waitKubectl("get nodes", has("node1   Ready"), "node1 Ready");
  std::string cpu = kubectl("get node node1 -o jsonpath={.status.capacity.cpu}");
  EXPECT_EQ(cpu, std::to_string(std::thread::hardware_concurrency()));
  std::string pods = kubectl("get node node1 -o jsonpath={.status.capacity.pods}");
  EXPECT_EQ(pods, "110");
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  meminfo >> key >> kib;
  EXPECT_EQ(kubectl("get node node1 -o jsonpath={.status.capacity.memory}"),
            std::to_string(kib) + "Ki");
  // Allocatable: less both reservations and the 100Mi memory.available threshold.
  EXPECT_EQ(kubectl("get node node1 -o jsonpath={.status.allocatable.memory}"),
            std::to_string(kib - (228 << 10)) + "Ki");
  EXPECT_EQ(kubectl("get node node1 -o jsonpath={.status.allocatable.cpu}"),
            std::to_string(std::thread::hardware_concurrency() * 1000 - 100) + "m");
  EXPECT_EQ(kubectl("get node node1 -o jsonpath={.status.nodeInfo.containerRuntimeVersion}"),
            "kernelet://" KERNELET_VERSION_STRING);
  // Where the agent's own server listens (--port=0: a free port), and it does.
  int port = std::atoi(
      kubectl("get node node1 -o jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}").c_str());
  EXPECT_GT(port, 0);
  EXPECT_NE(port, 10250);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
      << "nothing listens on the node's kubeletEndpoint port " << port;
  ::close(fd);
  std::string lease_cmd = "get lease -n kube-node-lease node1 -o jsonpath={.spec.renewTime}";
  std::string first = waitKubectl(lease_cmd, has("Z"), "a lease");
  // Renewed every ~10 s.
  std::string second = waitKubectl(
      lease_cmd,
      [&](const std::string& s) { return s.find('Z') != std::string::npos && s != first; },
      "a renewed lease", seconds(30));
  EXPECT_NE(first, second);
  // The kubelet's node events: starting, then each condition as first seen.
  std::string events = waitKubectl(
      "get events --field-selector involvedObject.kind=Node -o jsonpath={.items[*].reason}",
      has("NodeReady"), "the NodeReady event");
  for (const char* reason : {"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure",
                             "NodeHasSufficientPID", "NodeReady"}) {
    EXPECT_NE(events.find(reason), std::string::npos) << reason << " missing: " << events;
  }
}

TEST_F(ClusterE2E, APodRunsReportsItsStatusAndIsDeletedWithinItsGracePeriod) {
  startAgent();
  waitKubectl("get nodes", has("node1   Ready"), "node1 Ready");
  apply("web", podYaml("web", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  std::string wide = waitKubectl("get pods -o wide", has("1/1     Running"), "web Running");
  EXPECT_NE(wide.find("10.88."), std::string::npos) << wide;
  EXPECT_NE(wide.find("node1"), std::string::npos) << wide;
  std::string yaml = kubectl("get pod web -o yaml");
  EXPECT_NE(yaml.find("qosClass: BestEffort"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("containerID: kernelet://"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("type: PodReadyToStartContainers"), std::string::npos) << yaml;
  // The kubelet's events, in order.
  std::string events = waitKubectl(
      "get events --field-selector involvedObject.name=web -o jsonpath={.items[*].reason}",
      has("Started"), "the Started event");
  EXPECT_EQ(events, "Pulled Created Started");
  auto t0 = steady_clock::now();
  std::string out = kubectl("delete pod web");  // waits until the object is gone
  EXPECT_NE(out.find("pod \"web\" deleted"), std::string::npos) << out;
  EXPECT_LT(steady_clock::now() - t0, seconds(20));
  EXPECT_NE(kubectl("get pods").find("No resources found"), std::string::npos);
}

TEST_F(ClusterE2E, ACrashingContainerShowsCrashLoopBackOffInKubectl) {
  startAgent();
  apply("crash", podYaml("crash", "exit 1"));
  std::string out = waitKubectl("get pods", has("CrashLoopBackOff"), "CrashLoopBackOff");
  EXPECT_NE(out.find("crash   0/1     CrashLoopBackOff   1"), std::string::npos) << out;
  std::string backoff = waitKubectl(
      "get events --field-selector reason=BackOff -o jsonpath={.items[*].message}",
      has("Back-off restarting failed container app in pod crash_default("), "a BackOff event");
  // Repeats are one Event with a count, not many.
  std::string started = waitKubectl(
      "get events --field-selector involvedObject.name=crash,reason=Started "
      "-o jsonpath={.items[*].count}",
      [](const std::string& s) { return s == "2" || s == "3"; }, "Started counted twice");
  EXPECT_EQ(started.find(' '), std::string::npos) << started;

  // A container killed by the kernel for its memory limit: OOMKilled, and the
  // node's OOMKilling event.
  apply("hog", podYaml("hog", "exec kt-alloc 64", "  restartPolicy: Never\n") +
                   "    resources:\n      limits: {memory: 16Mi}\n");
  waitKubectl("get pods hog", has("OOMKilled"), "hog OOMKilled");
  std::string oom = waitKubectl(
      "get events --field-selector involvedObject.kind=Node,reason=OOMKilling "
      "-o jsonpath={.items[*].message}",
      has("container app in pod default/hog"), "the OOMKilling event");
  EXPECT_NE(oom.find("Memory cgroup out of memory"), std::string::npos) << oom;
}

TEST_F(ClusterE2E, TerminationMessagesAndTheActiveDeadlineShowInKubectl) {
  startAgent();
  // The Kubernetes docs' termination-demo ("Determine the Reason for Pod
  // Failure"), busybox swapped for the fixture image and the sleep shortened.
  apply("termination-demo",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: termination-demo}\n"
        "spec:\n  nodeName: node1\n  containers:\n"
        "  - name: termination-demo-container\n    image: " +
            kImage +
            "\n    imagePullPolicy: Never\n    command: [\"/bin/sh\"]\n"
            "    args: [\"-c\", \"sleep 1 && echo Sleep expired > "
            "/dev/termination-log\"]\n");
  apply("fallback", podYaml("fallback", "echo starting; echo it went wrong >&2; exit 3",
                            "  restartPolicy: Never\n") +
                        "    terminationMessagePolicy: FallbackToLogsOnError\n");
  apply("deadline", podYaml("deadline", "exec sleep 600", "  activeDeadlineSeconds: 2\n"));
  // The docs' command, verbatim: the message of the run before the restart.
  std::string demo = waitKubectl(
      "get pod termination-demo -o go-template='{{range .status.containerStatuses}}"
      "{{.lastState.terminated.message}}{{end}}'",
      has("Sleep expired"), "the termination message in lastState");
  EXPECT_EQ(demo, "Sleep expired\n") << demo;
  std::string fallback = waitKubectl(
      "get pod fallback -o jsonpath={.status.containerStatuses[0].state.terminated.message}",
      has("it went wrong"), "the log's tail as the message");
  EXPECT_NE(fallback.find("starting\nit went wrong"), std::string::npos) << fallback;
  waitKubectl("get pod deadline -o jsonpath={.status.reason}", has("DeadlineExceeded"),
              "DeadlineExceeded");
  EXPECT_EQ(kubectl("get pod deadline -o jsonpath={.status.phase}"), "Failed");
  EXPECT_EQ(kubectl("get pod deadline -o jsonpath={.status.message}"),
            "Pod was active on the node longer than the specified deadline");
  waitKubectl(
      "get events --field-selector involvedObject.name=deadline,reason=DeadlineExceeded "
      "-o jsonpath={.items[*].type}",
      has("Normal"), "the DeadlineExceeded event");
  // Its container is stopped, not restarted.
  waitKubectl("get pod deadline -o jsonpath={.status.containerStatuses[0].state.terminated.reason}",
              has("Error"), "the deadline pod's container stopped");
  EXPECT_EQ(kubectl("get pod deadline -o jsonpath={.status.containerStatuses[0].restartCount}"),
            "0");
}

TEST_F(ClusterE2E, AStaticPodHasAMirrorPodThatComesBackWhenDeleted) {
  std::ofstream(manifests_ + "/static.yaml")
      << "apiVersion: v1\nkind: Pod\nmetadata: {name: stat}\nspec:\n  containers:\n  - name: "
         "app\n    image: "
      << kImage
      << "\n    imagePullPolicy: Never\n    command: [kt-sleep, "
         "'600']\n";
  startAgent();
  waitKubectl("get pods", has("stat-node1   1/1     Running"), "the mirror pod Running");
  std::string owner = kubectl("get pod stat-node1 -o jsonpath={.metadata.ownerReferences[0].kind}");
  EXPECT_EQ(owner, "Node");
  std::string mirror = kubectl(
      "get pod stat-node1 -o 'jsonpath={.metadata.annotations.kubernetes\\.io/config\\.mirror}'");
  EXPECT_EQ(mirror.size(), 32u) << mirror;
  std::string uid = kubectl("get pod stat-node1 -o jsonpath={.metadata.uid}");
  std::string id =
      kubectl("get pod stat-node1 -o jsonpath={.status.containerStatuses[0].containerID}");
  ASSERT_NE(id.find("kernelet://"), std::string::npos) << id;
  kubectl("delete pod stat-node1 --wait=false");
  waitKubectl(
      "get pod stat-node1 -o jsonpath={.metadata.uid}",
      [&](const std::string& s) { return !s.empty() && s != uid && s.find("NotFound") == s.npos; },
      "a new mirror pod");
  // The static pod itself kept running: the new mirror reports the same container.
  waitKubectl(
      "get pod stat-node1 -o jsonpath={.status.containerStatuses[0].containerID}",
      [&](const std::string& s) { return s == id; }, "the same container in the mirror");
  // Static pods get no service-account volume: the admission leaves mirror pods alone.
  EXPECT_EQ(kubectl("get pod stat-node1 -o jsonpath={.spec.volumes}"), "");
}

TEST_F(ClusterE2E, TheApiServerAwayRestartsNothingAndStatusesCatchUp) {
  startAgent();
  apply("steady", podYaml("steady", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  waitKubectl("get pods", has("steady   1/1     Running"), "steady Running");
  std::string id = kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}");
  server_->kill();
  std::this_thread::sleep_for(seconds(60));
  ASSERT_TRUE(server_->restart());
  // A pod created after the return runs too: the watch came back.
  apply("late", podYaml("late", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  waitKubectl("get pods", has("late     1/1     Running"), "late Running");
  EXPECT_EQ(kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}"), id);
  EXPECT_EQ(kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].restartCount}"), "0");
  std::string log = readFile(base_ + "/agent.log").value_or("");
  EXPECT_EQ(log.find("\"Container started\" pod=\"default/steady\"", log.find("steady") + 1),
            log.find("\"Container started\" pod=\"default/steady\""))
      << "steady's container started twice";
}

// A restarted agent adopts the pod: the API never hears that its running
// container is not running or not ready, and its id stays.
TEST_F(ClusterE2E, AnAgentRestartAdoptsThePodWithoutAStatusFlap) {
  startAgent({}, true);
  apply("steady", podYaml("steady", "while true; do sleep 1; done", "") +
                      "    readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: 1}\n");
  waitKubectl("get pods", has("1/1     Running"), "steady Running and ready");
  std::string id = kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}");
  std::string rv = kubectl("get pod steady -o jsonpath={.metadata.resourceVersion}");
  ::kill(agent_, SIGKILL);
  int st;
  ::waitpid(agent_, &st, 0);
  std::this_thread::sleep_for(seconds(5));
  startAgent({}, true);
  waitKubectl(
      "get nodes",
      [&](const std::string&) {
        return readFile(base_ + "/agent.log").value_or("").find("Adopted") != std::string::npos;
      },
      "the pod adopted");
  std::this_thread::sleep_for(seconds(5));  // the new agent's status writes, if any
  EXPECT_EQ(kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}"), id);
  // Every version of the pod since the restart, as a watch replays them.
  std::string events =
      kubectl("get --raw '/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv +
              "&timeoutSeconds=1'");
  std::istringstream lines(events);
  static const std::regex ready("\"ready\":\\s*true");
  int seen = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"steady\"") == std::string::npos) {
      continue;
    }
    seen++;
    EXPECT_NE(line.find("\"running\""), std::string::npos) << "a write said not running: " << line;
    EXPECT_TRUE(std::regex_search(line, ready)) << "a write said not ready: " << line;
  }
  // Stop the pod with the agent at the end.
  ::kill(agent_, SIGKILL);
  ::waitpid(agent_, &st, 0);
  size_t before = readFile(base_ + "/agent.log").value_or("").size();
  startAgent();
  // Adopted by this third agent before TearDown's SIGTERM stops it and the pod.
  waitKubectl(
      "get pods",
      [&](const std::string&) {
        return readFile(base_ + "/agent.log").value_or("").find("\"Adopted pod\"", before) !=
               std::string::npos;
      },
      "the pod adopted again");
  std::cout << seen << " pod updates after the restart\n";
}

TEST_F(ClusterE2E, ANewImageRestartsJustThatContainerAndALabelNothing) {
  ASSERT_EQ(sh(std::string(KERNELET_BINARY) + " images --root-dir " + root_ + " import " +
               KERNELET_FIXTURES + "/oci/layered"),
            0);
  startAgent();
  apply("swap", podYaml("swap",
                        "[ -e /etc/fixture-upper ] && echo image=layered || echo image=busybox; "
                        "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  waitKubectl("get pods swap", has("1/1     Running"), "swap Running");
  waitOutput("swap", "image=busybox", seconds(10));
  std::string ip = kubectl("get pod swap -o jsonpath={.status.podIP}");
  kubectl("label pod swap tier=web");
  kubectl(
      "patch pod swap -p "
      "'{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"fixtures.kernelet.test/"
      "layered:latest\"}]}}'");
  waitOutput("swap", "image=layered", seconds(30));
  waitKubectl(
      "get pod swap -o jsonpath={.status.containerStatuses[0].restartCount}",
      [](const std::string& s) { return s == "1"; }, "restartCount 1");
  EXPECT_EQ(kubectl("get pod swap -o jsonpath={.status.containerStatuses[0].image}"),
            "fixtures.kernelet.test/layered:latest");
  EXPECT_EQ(kubectl("get pod swap -o jsonpath={.status.podIP}"), ip);  // the sandbox stayed
  std::string killing = waitKubectl(
      "get events --field-selector involvedObject.name=swap,reason=Killing "
      "-o jsonpath={.items[*].message}",
      has("definition changed"), "the Killing event");
  EXPECT_NE(killing.find("Container app definition changed, will be restarted"), std::string::npos)
      << killing;
}

TEST_F(ClusterE2E, ProbesDecideReadinessAndRestartAnUnhealthyContainer) {
  startAgent();
  std::string yaml =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\nspec:\n  nodeName: node1\n"
      "  terminationGracePeriodSeconds: 2\n  containers:\n"
      // Serves HTTP: ready once its readiness probe passed.
      "  - name: web\n    image: " +
      kImage +
      "\n    imagePullPolicy: Never\n    command: [kt-http, '8080']\n"
      "    ports: [{name: http, containerPort: 8080}]\n"
      "    readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1}\n"
      // Alive while /tmp/alive exists (3 s): the exec probe then fails twice.
      "  - name: worker\n    image: " +
      kImage +
      "\n    imagePullPolicy: Never\n    command: [sh, -c, 'touch /tmp/alive; sleep 3; rm "
      "/tmp/alive; exec kt-sleep 600']\n"
      "    livenessProbe: {exec: {command: [cat, /tmp/alive]}, periodSeconds: 1, "
      "failureThreshold: 2}\n"
      // Nothing listens on 9999: never ready, never restarted.
      "  - name: idle\n    image: " +
      kImage +
      "\n    imagePullPolicy: Never\n    command: [kt-sleep, '600']\n"
      "    readinessProbe: {tcpSocket: {port: 9999}, periodSeconds: 1}\n";
  apply("probed", yaml);
  // A readiness gate: Running, its container ready, but the pod not Ready
  // until another controller sets the gate's condition True.
  apply("gated", podYaml("gated", "exec kt-sleep 600",
                         "  readinessGates: [{conditionType: example.com/lb-ready}]\n"));
  waitKubectl(
      "get pod probed -o 'jsonpath={.status.containerStatuses[?(@.name==\"web\")].ready}'",
      [](const std::string& s) { return s == "true"; }, "web ready");
  std::string unhealthy = waitKubectl(
      "get events --field-selector involvedObject.name=probed,reason=Unhealthy "
      "-o jsonpath={.items[*].message}",
      [](const std::string& s) {
        return s.find("Liveness probe failed: cat: can't open '/tmp/alive'") != std::string::npos &&
               s.find("Readiness probe failed: dial tcp 10.88.") != std::string::npos;
      },
      "the Unhealthy events");
  EXPECT_NE(unhealthy.find(":9999: connect: connection refused"), std::string::npos) << unhealthy;
  waitKubectl(
      "get pod probed -o "
      "'jsonpath={.status.containerStatuses[?(@.name==\"worker\")].restartCount}'",
      [](const std::string& s) { return s != "" && s != "0"; }, "worker restarted");
  std::string killing = kubectl(
      "get events --field-selector involvedObject.name=probed,reason=Killing "
      "-o jsonpath={.items[*].message}");
  EXPECT_NE(killing.find("Container worker failed liveness probe, will be restarted"),
            std::string::npos)
      << killing;
  EXPECT_EQ(
      kubectl(
          "get pod probed -o 'jsonpath={.status.containerStatuses[?(@.name==\"idle\")].ready}'"),
      "false");
  EXPECT_EQ(kubectl("get pod probed -o "
                    "'jsonpath={.status.containerStatuses[?(@.name==\"idle\")].restartCount}'"),
            "0");
  std::string ready =
      kubectl("get pod probed -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}'");
  EXPECT_EQ(ready, "False");

  auto condition = [&](const std::string& type, const std::string& field) {
    return kubectl("get pod gated -o 'jsonpath={.status.conditions[?(@.type==\"" + type + "\")]." +
                   field + "}'");
  };
  waitKubectl(
      "get pod gated -o 'jsonpath={.status.conditions[?(@.type==\"ContainersReady\")].status}'",
      [](const std::string& s) { return s == "True"; }, "gated's containers ready");
  EXPECT_EQ(kubectl("get pod gated -o jsonpath={.status.phase}"), "Running");
  EXPECT_EQ(condition("Ready", "status"), "False");
  EXPECT_EQ(condition("Ready", "reason"), "ReadinessGatesNotReady");
  EXPECT_EQ(condition("Ready", "message"),
            "corresponding condition of pod readiness gate \"example.com/lb-ready\" does not "
            "exist.");
  // The condition, as a load balancer controller sets it: through the status subresource.
  auto setGate = [&](const std::string& status) {
    std::string out = kubectl(
        "patch pod gated --subresource=status -p "
        "'{\"status\":{\"conditions\":[{\"type\":\"example.com/lb-ready\",\"status\":\"" +
        status + "\"}]}}'");
    EXPECT_NE(out.find("patched"), std::string::npos) << out;
  };
  setGate("False");
  waitKubectl(
      "get pod gated -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].message}'",
      has("the status of pod readiness gate \"example.com/lb-ready\" is not \"True\", but False"),
      "the gate's False");
  setGate("True");
  waitKubectl(
      "get pod gated -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}'",
      [](const std::string& s) { return s == "True"; }, "gated Ready");
  // The agent's own patches left the controller's condition alone.
  EXPECT_EQ(condition("example.com/lb-ready", "status"), "True");
}

// And the service variables (KUBERNETES_SERVICE_*, enableServiceLinks).
TEST_F(ClusterE2E, ConfigMapsSecretsAndTokensReachTheContainerAndStayCurrent) {
  startAgent();
  // (kubectl create configmap sends protobuf, which the test server does not speak.)
  apply("settings",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: debug, "
        "color: blue}\n");
  apply("creds",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {password: "
        "aHVudGVyMg==}\n");
  const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount";
  // Prints the env, the files, and each new value of the level and the token.
  apply("my-svc",
        "apiVersion: v1\nkind: Service\nmetadata: {name: my-svc}\nspec:\n  ports:\n  - {port: "
        "8080}\n");
  std::string command =
      "env | grep -E \"KUBERNETES_SERVICE|KUBERNETES_PORT|MY_SVC\" | sort; "
      "echo LEVEL=$LEVEL PASSWORD=$PASSWORD CFG_color=$CFG_color; echo secret=$(cat "
      "/etc/sec/password) ns=$(cat " +
      sa + "/namespace) ca=$(head -1 " + sa +
      "/ca.crt); while true; do l=$(cat /etc/cfg/level); t=$(cat " + sa +
      "/token); [ \"$l\" != \"$pl\" ] && echo level=$l; [ \"$t\" != \"$pt\" ] && echo "
      "token=$t; pl=$l; pt=$t; sleep 0.5; done";
  std::string yaml = podYaml("cfg", command,
                             "  volumes:\n  - {name: cfg, configMap: {name: settings}}\n"
                             "  - {name: sec, secret: {secretName: creds}}\n") +
                     "    env:\n    - name: LEVEL\n      valueFrom: {configMapKeyRef: {name: "
                     "settings, key: level}}\n    - name: PASSWORD\n      valueFrom: "
                     "{secretKeyRef: {name: creds, key: password}}\n    envFrom:\n    - "
                     "{prefix: CFG_, configMapRef: {name: settings}}\n    volumeMounts:\n    - "
                     "{name: cfg, mountPath: /etc/cfg}\n    - {name: sec, mountPath: /etc/sec}\n";
  apply("cfg", yaml);
  waitKubectl("get pods", has("cfg    1/1     Running"), "cfg Running");
  std::string out = waitOutput("cfg", "level=debug", seconds(30));
  EXPECT_NE(out.find("LEVEL=debug PASSWORD=hunter2 CFG_color=blue"), std::string::npos) << out;
  // The service variables: the API server's (10.96.0.1:443) and my-svc's,
  // a Service of the pod's namespace made before the pod.
  std::string svc_ip = kubectl("get service my-svc -o jsonpath={.spec.clusterIP}");
  ASSERT_TRUE(svc_ip.starts_with("10.96.")) << svc_ip;
  for (const std::string& var :
       {std::string("KUBERNETES_SERVICE_HOST=10.96.0.1"),
        std::string("KUBERNETES_SERVICE_PORT=443"),
        std::string("KUBERNETES_SERVICE_PORT_HTTPS=443"),
        std::string("KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443"), "MY_SVC_SERVICE_HOST=" + svc_ip,
        std::string("MY_SVC_SERVICE_PORT=8080"), "MY_SVC_PORT_8080_TCP_ADDR=" + svc_ip}) {
    EXPECT_NE(out.find(var + "\n"), std::string::npos) << var << " not in " << out;
  }
  // enableServiceLinks: false: the API server's variables, not the namespace's.
  apply("nolinks", podYaml("nolinks",
                           "env | grep -E \"KUBERNETES_SERVICE|MY_SVC\"; echo end-of-env; "
                           "exec sleep 600",
                           "  enableServiceLinks: false\n"));
  std::string nolinks = waitOutput("nolinks", "end-of-env", seconds(60));
  EXPECT_NE(nolinks.find("KUBERNETES_SERVICE_HOST=10.96.0.1"), std::string::npos) << nolinks;
  EXPECT_EQ(nolinks.find("MY_SVC"), std::string::npos) << nolinks;
  EXPECT_NE(out.find("secret=hunter2 ns=default ca=-----BEGIN CERTIFICATE-----"), std::string::npos)
      << out;
  // The token is the one the API server issued for this pod.
  std::string tokens = server_->control("tokens", "", false).value_or("");
  size_t at = out.find("token=");
  ASSERT_NE(at, std::string::npos) << out;
  std::string token = out.substr(at + 6, out.find('\n', at) - at - 6);
  EXPECT_NE(tokens.find("\"pod\": \"cfg\", \"token\": \"" + token + "\""), std::string::npos)
      << token << " not in " << tokens;

  // A changed ConfigMap reaches the file (the env stays as it started).
  kubectl("patch configmap settings -p '{\"data\":{\"level\":\"info\"}}'");
  waitOutput("cfg", "level=info", seconds(20));
  // The token is renewed before it expires (20 s here): a second one appears.
  out = waitOutput("cfg", "token=", seconds(1));
  auto renewed = [&] {
    std::string o = containerOutput("cfg");
    return o.find("token=", o.find("token=") + 1) != std::string::npos;
  };
  auto deadline = steady_clock::now() + seconds(40);
  while (!renewed() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_TRUE(renewed()) << containerOutput("cfg");
  EXPECT_EQ(kubectl("get pod cfg -o jsonpath={.status.containerStatuses[0].restartCount}"), "0");

  // A key that is not there yet: CreateContainerConfigError with the kubelet's
  // message, then Running as soon as the ConfigMap has it.
  apply("late", podYaml("late", "echo got=$K; sleep 600") +
                    "    env:\n    - name: K\n      valueFrom: {configMapKeyRef: {name: later, "
                    "key: k}}\n");
  waitKubectl("get pods late", has("CreateContainerConfigError"), "CreateContainerConfigError");
  EXPECT_EQ(
      kubectl("get pod late -o jsonpath={.status.containerStatuses[0].state.waiting.message}"),
      "configmap \"later\" not found");
  apply("later", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\ndata: {k: v}\n");
  waitKubectl("get pods late", has("1/1     Running"), "late Running", seconds(30));
  waitOutput("late", "got=v", seconds(10));

  // A pod whose ServiceAccount does not exist is refused by the API, as admission does.
  std::string refused = kubectl("run nosa --image=" + kImage +
                                " --overrides='{\"spec\":{\"serviceAccountName\":\"nope\"}}'");
  EXPECT_NE(refused.find("serviceaccount \"nope\" not found"), std::string::npos) << refused;

  // Each object has a watch of its own while a pod refers to it, and no longer.
  std::string watches = server_->control("watches", "", false).value_or("");
  for (const char* name : {"settings", "creds", "later", "kube-root-ca.crt"}) {
    EXPECT_NE(watches.find(std::string("metadata.name%3D") + name), std::string::npos)
        << name << " not watched: " << watches;
  }
  kubectl("delete pod cfg late nolinks --wait=true");
  auto gone = steady_clock::now() + seconds(10);
  while (steady_clock::now() < gone) {
    watches = server_->control("watches", "", false).value_or("");
    if (watches.find("/configmaps") == std::string::npos &&
        watches.find("/secrets") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_EQ(watches.find("/configmaps"), std::string::npos) << watches;
  EXPECT_EQ(watches.find("/secrets"), std::string::npos) << watches;
}

}  // namespace
}  // namespace kernelet
