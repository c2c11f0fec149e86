// End-to-end tests of `kernelet run --kubeconfig` in the test VM: the agent,
// the test API server (schema checks on everything the agent writes) and
// kubectl as the user's client.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
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
    auto s = testing::ApiServer::start(base_ + "/api", {.validate_agent = "admin"});
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

  void startAgent() {
    std::vector<std::string> args = {KERNELET_BINARY,
                                     "run",
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
    auto argv = testing::argvOf(args);
    int log =
        ::open((base_ + "/agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    agent_ = ::fork();
    if (agent_ == 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log);
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
  startAgent();
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
  EXPECT_EQ(kubectl("get node node1 -o jsonpath={.status.nodeInfo.containerRuntimeVersion}"),
            "kernelet://" KERNELET_VERSION_STRING);
  std::string lease_cmd = "get lease -n kube-node-lease node1 -o jsonpath={.spec.renewTime}";
  std::string first = waitKubectl(lease_cmd, has("Z"), "a lease");
  // Renewed every ~10 s.
  std::string second = waitKubectl(
      lease_cmd,
      [&](const std::string& s) { return s.find('Z') != std::string::npos && s != first; },
      "a renewed lease", seconds(30));
  EXPECT_NE(first, second);
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
  kubectl("delete pod stat-node1 --wait=false");
  waitKubectl(
      "get pod stat-node1 -o jsonpath={.metadata.uid}",
      [&](const std::string& s) { return !s.empty() && s != uid && s.find("NotFound") == s.npos; },
      "a new mirror pod");
  // The static pod itself kept running.
  EXPECT_EQ(fs::exists(root_ + "/pods"), true);
}

TEST_F(ClusterE2E, TheApiServerAwayRestartsNothingAndStatusesCatchUp) {
  startAgent();
  apply("steady", podYaml("steady", "trap \"exit 0\" TERM; while true; do sleep 1; done"));
  waitKubectl("get pods", has("steady   1/1     Running"), "steady Running");
  std::string id = kubectl("get pod steady -o jsonpath={.status.containerStatuses[0].containerID}");
  server_->kill();
  std::this_thread::sleep_for(seconds(30));
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

}  // namespace
}  // namespace kernelet
