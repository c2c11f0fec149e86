// End-to-end tests of `kernelet run --kubeconfig` in the test VM: the agent,
// the test API server (schema checks on everything the agent writes) and
// kubectl as the user's client.
//
// One API server and one agent serve every case, to stay cheap: each case
// makes pods of its own names and asks about them by name (never a listing
// of all pods, whose columns would widen with another case's names), and its
// pods are deleted when it ends. The cases that take the agent or the API
// server away are in cluster_restart_e2e_test, the ConfigMap, Secret and
// token case (which counts every watch the agent holds) in
// cluster_config_e2e_test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e_cluster.h"
#include "support/privileged.h"

namespace kernelet {
namespace {

using namespace std::chrono;
using testing::has;
using testing::podYaml;

const std::string kImage = testing::kFixtureImage;

class ClusterE2E : public testing::E2eClusterTest {
 protected:
  static void TearDownTestSuite() {
    if (shared_) {
      // Its pods' last status writes are checked too.
      shared_->stopAgent();
      EXPECT_EQ(shared_->violations(), "[]") << "the agent sent what the schema refuses";
      shared_.reset();
    }
  }

  // Tokens live 20 s (the agent renews them after 16), as in
  // cluster_config_e2e_test; `layered` for the image swap.
  testing::E2eCluster::Options options() const override {
    return {.name = "cluster",
            .server = {.validate_agent = "admin", .token_ttl = 20},
            .images = {"busybox", "layered"}};
  }

  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    KERNELET_REQUIRE_TOOLS("/usr/bin/kubectl");
    if (!shared_ && setup_error_.empty()) {
      auto c = testing::E2eCluster::start(options());
      if (!c) {
        setup_error_ = c.error().message();
      } else {
        shared_ = std::move(*c);
        shared_->startAgent(
            {"--kube-reserved", "cpu=100m,memory=100Mi", "--system-reserved", "memory=28Mi"});
      }
    }
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    c_ = shared_.get();
    violations_before_ = c_->violations();
  }

  void TearDown() override {
    if (c_ == nullptr) {
      return;
    }
    // What this case made goes, so that it does not load the next cases.
    for (const auto& m : manifests_) {
      c_->removeManifest(m);
    }
    if (!applied_.empty()) {
      std::string names;
      for (const auto& p : applied_) {
        names += " " + p;
      }
      kubectl("delete pod" + names + " --ignore-not-found --wait=false");
    }
    EXPECT_EQ(c_->violations(), violations_before_) << "the agent sent what the schema refuses";
  }

  void writeManifest(const std::string& file, const std::string& yaml) {
    manifests_.push_back(file);
    c_->writeManifest(file, yaml);
  }
  std::string waitOutput(const std::string& pod, const std::string& needle, seconds timeout) {
    return c_->waitOutput(pod, needle, timeout);
  }

  static inline std::unique_ptr<testing::E2eCluster> shared_;
  static inline std::string setup_error_;
  std::string violations_before_;
  std::vector<std::string> manifests_;
};

TEST_F(ClusterE2E, TheNodeIsReadyWithItsCapacityAndRenewsItsLease) {
  // (The suite's agent runs with --kube-reserved cpu=100m,memory=100Mi
  // --system-reserved memory=28Mi.)
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
  waitKubectl("get nodes", has("node1   Ready"), "node1 Ready");
  apply("web", podYaml("web", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  std::string wide = waitKubectl("get pod web -o wide", has("1/1     Running"), "web Running");
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
  EXPECT_NE(kubectl("get pod web").find("NotFound"), std::string::npos);
}

TEST_F(ClusterE2E, ACrashingContainerShowsCrashLoopBackOffInKubectl) {
  apply("crash", podYaml("crash", "exit 1"));
  std::string out = waitKubectl("get pod crash", has("CrashLoopBackOff"), "CrashLoopBackOff");
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
  writeManifest(
      "static.yaml",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: stat}\nspec:\n  containers:\n  - name: "
      "app\n    image: " +
          kImage + "\n    imagePullPolicy: Never\n    command: [kt-sleep, '600']\n");
  waitKubectl("get pod stat-node1", has("stat-node1   1/1     Running"), "the mirror pod Running");
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

TEST_F(ClusterE2E, ANewImageRestartsJustThatContainerAndALabelNothing) {
  // (The suite imported the layered image beside busybox.)
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

}  // namespace
}  // namespace kernelet
