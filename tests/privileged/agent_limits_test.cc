// What one hostile pod can do to the agent and to the node, end to end with
// `kernelet run` on static pods: a pod of hundreds of containers stops within
// its grace period when the agent gets SIGTERM, one over the container cap is
// refused, and containers run under RuntimeDefault seccomp unless
// --seccomp-default=false. Runs in the test VM.

#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "agent/lifecycle/admission.h"
#include "agent/status/pod_status.h"
#include "support/privileged.h"
#include "support/static_agent.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono;
using testing::CommandResult;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

// A fresh agent (root, logs, cgroup root) per test with the busybox fixture
// imported, at -v 2; failures name the pod's last phase and the agent's log.
class AgentLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    agent_ = std::make_unique<StaticAgent>(KERNELET_BINARY, "limits");
    auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox");
    ASSERT_FALSE(err) << *err;
  }

  void TearDown() override {
    if (agent_ && agent_->pid() > 0) {
      stopAgent();
    }
    agent_.reset();
  }

  void startAgent(std::vector<std::string> extra = {}) { agent_->start(std::move(extra), 2); }

  // SIGTERM, then the agent's exit status; `took` is how long it needed.
  int stopAgent(seconds limit = seconds(120), steady_clock::duration* took = nullptr) {
    testing::StopResult r = agent_->stopWithin(limit);
    if (r.killed) {
      ADD_FAILURE() << "agent did not stop in " << limit.count() << " s\n" << agentLog();
    }
    if (took != nullptr) {
      *took = r.took;
    }
    return r.status;
  }

  std::string agentLog() const { return agent_->log(); }

  void writeManifest(const std::string& name, const std::string& yaml) {
    agent_->writeManifest(name, yaml);
  }

  PodSummary waitFor(const std::string& name, const std::function<bool(const PodSummary&)>& ok,
                     const std::string& what, seconds timeout = seconds(60)) {
    if (auto p = agent_->waitFor(name, ok, timeout)) {
      return *p;
    }
    std::optional<PodSummary> last = agent_->pod(name);
    ADD_FAILURE() << name << ": " << what << " not reached in " << timeout.count() << " s; phase "
                  << (last ? last->status.phase : "(no status)") << "\n"
                  << agentLog().substr(0, 20000);
    return last.value_or(PodSummary{});
  }

  CommandResult logs(const std::string& pod, const std::string& container) {
    return agent_->logs(pod, container);
  }

  std::unique_ptr<StaticAgent> agent_;
};

std::string manyContainers(const std::string& name, size_t n, int grace) {
  std::string yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
                     "\nspec:\n  terminationGracePeriodSeconds: " + std::to_string(grace) +
                     "\n  containers:\n";
  for (size_t i = 0; i < n; i++) {
    // busybox sleep as its namespace's PID 1 ignores SIGTERM: every container
    // holds out until the grace period ends and it is killed.
    yaml += "  - {name: c" + std::to_string(i) + ", image: " + kImage +
            ", imagePullPolicy: Never, command: [sleep, '3600']}\n";
  }
  return yaml;
}

// A pod of 10,000 containers kept the agent from its SIGTERM for minutes. With
// starts paced a pod of 200 (under the cap) is terminated within its grace
// period, and the agent exits right after.
TEST_F(AgentLimits, APodOfManyContainersEndsWithinItsGracePeriodOnSigterm) {
  constexpr size_t kContainers = 200;
  constexpr int kGrace = 5;
  writeManifest("many.yaml", manyContainers("many", kContainers, kGrace));
  startAgent();
  // Some running is enough: the SIGTERM comes while the rest are starting.
  waitFor(
      "many",
      [&](const PodSummary& s) {
        size_t running = 0;
        for (const auto& c : s.status.container_statuses) {
          running += c.state.kind == ContainerState::Kind::kRunning ? 1 : 0;
        }
        return running >= 20;
      },
      "20 containers running", seconds(240));
  steady_clock::duration took{};
  int status = stopAgent(seconds(120), &took);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << agentLog();
  // The grace period, then the removal of 200 containers (rootfs mounts,
  // cgroups) and the agent's own exit: about 3.5 s under the VM's software
  // emulation. Before starts were paced the SIGTERM waited behind every start
  // and the statuses were written once per exit: 22.7 s. Since the status
  // grew (stopSignal, volumeMounts, user, resources per container) and each
  // exit reads its termination file, the exits are again 20-50 ms apart under
  // emulation: 17.7 s in the VM tier of 2026-12-02 (a regression to profile,
  // issue #20's note); the bound keeps it from growing further.
  EXPECT_GE(took, seconds(kGrace)) << "the containers got less than their grace period";
  EXPECT_LT(took, seconds(kGrace + 17))
      << "took " << duration_cast<milliseconds>(took).count() << " ms\n"
      << agentLog().substr(agentLog().size() > 20000 ? agentLog().size() - 20000 : 0);
  for (const char* what : {"\"Killing pod\"", "\"Pod terminated\""}) {
    size_t at = agentLog().find(what);
    if (at != std::string::npos) {
      size_t line = agentLog().rfind('\n', at) + 1;
      std::cerr << agentLog().substr(line, agentLog().find('\n', at) - line) << "\n";
    }
  }
  std::cerr << "[ figures ] " << kContainers << " containers: SIGTERM to exit in "
            << duration_cast<milliseconds>(took).count() << " ms (grace " << kGrace << " s)\n";
}

TEST_F(AgentLimits, APodOverTheContainerCapIsRefusedWithAClearMessage) {
  writeManifest("toomany.yaml", manyContainers("toomany", kMaxContainersPerPod + 1, 1));
  writeManifest("fine.yaml", manyContainers("fine", 1, 1));
  startAgent();
  PodSummary s = waitFor(
      "toomany", [](const PodSummary& p) { return p.status.phase == "Failed"; }, "Failed");
  EXPECT_EQ(s.status.reason, "FailedValidation");
  EXPECT_EQ(s.status.message,
            "Pod was rejected: spec.containers: Too many: 251 containers (init containers "
            "included): must have at most 250");
  waitFor(
      "fine", [](const PodSummary& p) { return p.status.phase == "Running"; }, "Running");
  EXPECT_EQ(stopAgent(), 0);
}

// Numbers no int64 or double holds, and one of 300,000 digits, in a static
// manifest killed the agent with nothing in its log. Annotations are strings:
// the pod runs with them; a field that wants a number names itself.
TEST_F(AgentLimits, HugeNumbersInAManifestNeitherCrashTheAgentNorAreLost) {
  std::string digits(300000, '7');
  writeManifest("big.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\n  annotations:\n"
                "    digits: " +
                    digits +
                    "\n    int: 123456789012345678901234567890\n"
                    "    float: 1e400\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  "
                    "- {name: c, image: " +
                    kImage + ", imagePullPolicy: Never, command: [sleep, '3600']}\n");
  writeManifest("grace.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: grace}\nspec:\n"
                "  terminationGracePeriodSeconds: 99999999999999999999\n"
                "  containers: [{name: c, image: " +
                    kImage + "}]\n");
  startAgent();
  waitFor(
      "big", [](const PodSummary& p) { return p.status.phase == "Running"; }, "Running");
  for (auto until = steady_clock::now() + seconds(10);
       agentLog().find("grace.yaml") == std::string::npos && steady_clock::now() < until;) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_NE(agentLog().find("line 5: spec.terminationGracePeriodSeconds: must be an integer "
                            "between -9223372036854775808 and 9223372036854775807"),
            std::string::npos)
      << agentLog();
  int status = 0;
  ASSERT_EQ(::waitpid(agent_->pid(), &status, WNOHANG), 0)
      << "the agent died: " << status << agentLog();
  EXPECT_EQ(stopAgent(), 0);
}

// A user namespace gives CAP_SYS_ADMIN over namespaces of its own (here a UTS
// namespace, as over a new mount namespace): RuntimeDefault refuses unshare
// without CAP_SYS_ADMIN, and is kernelet's default.
std::string usernsPod() {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: userns\nspec:\n  restartPolicy: Never\n"
         "  containers:\n  - name: c\n    image: " +
         kImage +
         "\n    imagePullPolicy: Never\n    command: [unshare, -U, -r, kt-syscall, unshare]\n";
}

TEST_F(AgentLimits, ByDefaultAContainerCannotCreateAUserNamespace) {
  writeManifest("userns.yaml", usernsPod());
  startAgent();
  PodSummary s = waitFor(
      "userns", [](const PodSummary& p) { return p.status.phase == "Failed"; }, "Failed");
  CommandResult l = logs("userns", "c");
  EXPECT_EQ(l.out.find("unshare: ok"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("unshare"), std::string::npos) << l.out;  // busybox says why
  EXPECT_EQ(stopAgent(), 0);
}

TEST_F(AgentLimits, SeccompDefaultFalseLeavesContainersUnconfinedAsTheKubelet) {
  writeManifest("userns.yaml", usernsPod());
  startAgent({"--seccomp-default=false"});
  waitFor(
      "userns", [](const PodSummary& p) { return p.status.phase == "Succeeded"; }, "Succeeded");
  CommandResult l = logs("userns", "c");
  EXPECT_NE(l.out.find("unshare: ok"), std::string::npos) << l.out;
  EXPECT_EQ(stopAgent(), 0);
}

}  // namespace
}  // namespace kernelet::agent
