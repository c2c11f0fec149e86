// What one hostile pod can do to the agent and to the node, end to end with
// `kernelet run` on static pods: a pod of hundreds of containers stops within
// its grace period when the agent gets SIGTERM, one over the container cap is
// refused, and containers run under RuntimeDefault seccomp unless
// --seccomp-default=false. Runs in the test VM.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "agent/admission.h"
#include "agent/pod_status.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

struct Cmd {
  int status = -1;
  std::string out, err;
};

Cmd runCommand(std::vector<std::string> args) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return {};
  }
  auto argv = testing::argvOf(args);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  Cmd r;
  r.out = testing::readAll(out[0]);
  r.err = testing::readAll(err[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

// The agent_e2e_test fixture's essentials: a fresh root, log and cgroup root
// per test, the busybox fixture imported, pods read from their status files.
class AgentLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    std::string id = std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    base_ = "/tmp/kernelet-limits-" + id;
    root_ = base_ + "/root";
    manifests_ = base_ + "/manifests";
    logs_ = base_ + "/logs";
    run_ = "/run/kernelet-limits-" + std::to_string(::getpid());
    cgroup_root_ = "/kernelet-limits-" + std::to_string(::getpid());
    fs::create_directories(manifests_);
    Cmd imp = runCommand({KERNELET_BINARY, "images", "--root-dir", root_, "import",
                          std::string(KERNELET_FIXTURES) + "/oci/busybox"});
    ASSERT_EQ(imp.status, 0) << imp.err;
    started_ = true;
  }

  void TearDown() override {
    if (!started_) {
      return;
    }
    if (agent_ > 0) {
      stopAgent();
    }
    fs::remove_all(base_);
    std::string top = "/sys/fs/cgroup" + cgroup_root_;
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir((top + q).c_str());
    }
  }

  void startAgent(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {KERNELET_BINARY,
                                     "run",
                                     "--pod-manifest-path",
                                     manifests_,
                                     "--root-dir",
                                     root_,
                                     "--pod-log-dir",
                                     logs_,
                                     "--run-dir",
                                     run_,
                                     "--cgroup-root",
                                     cgroup_root_,
                                     "--hostname-override",
                                     "node1",
                                     "-v",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = testing::spawnLogged(std::move(args), base_ + "/agent.log");
  }

  // SIGTERM, then the agent's exit status; `took` is how long it needed.
  int stopAgent(seconds limit = seconds(120), steady_clock::duration* took = nullptr) {
    auto t0 = steady_clock::now();
    ::kill(agent_, SIGTERM);
    int status = -1;
    while (::waitpid(agent_, &status, WNOHANG) == 0) {
      if (steady_clock::now() > t0 + limit) {
        ::kill(agent_, SIGKILL);
        ::waitpid(agent_, &status, 0);
        ADD_FAILURE() << "agent did not stop in " << limit.count() << " s\n" << agentLog();
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (took != nullptr) {
      *took = steady_clock::now() - t0;
    }
    agent_ = -1;
    return status;
  }

  std::string agentLog() const { return readFile(base_ + "/agent.log").value_or(""); }

  void writeManifest(const std::string& name, const std::string& yaml) {
    std::string tmp = manifests_ + "/." + name + ".tmp";
    std::ofstream(tmp) << yaml;
    fs::rename(tmp, manifests_ + "/" + name);
  }

  std::optional<PodSummary> pod(const std::string& name) const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ + "/pods", ec)) {
      auto text = readFile(e.path().string() + "/status.json");
      if (!text) {
        continue;
      }
      auto p = parsePodJson(*text, e.path().string());
      if (p && p->name == name + "-node1") {
        return *p;
      }
    }
    return std::nullopt;
  }

  PodSummary waitFor(const std::string& name, const std::function<bool(const PodSummary&)>& ok,
                     const std::string& what, seconds timeout = seconds(60)) {
    auto deadline = steady_clock::now() + timeout;
    std::optional<PodSummary> last;
    while (steady_clock::now() < deadline) {
      last = pod(name);
      if (last && ok(*last)) {
        return *last;
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    ADD_FAILURE() << name << ": " << what << " not reached in " << timeout.count() << " s; phase "
                  << (last ? last->status.phase : "(no status)") << "\n"
                  << agentLog().substr(0, 20000);
    return last.value_or(PodSummary{});
  }

  Cmd logs(const std::string& pod, const std::string& container) {
    return runCommand({KERNELET_BINARY, "logs", "--root-dir", root_, "--pod-log-dir", logs_,
                       pod + "-node1", container});
  }

  std::string base_, root_, manifests_, logs_, run_, cgroup_root_;
  pid_t agent_ = -1;
  bool started_ = false;
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
  // and the statuses were written once per exit: 22.7 s.
  EXPECT_GE(took, seconds(kGrace)) << "the containers got less than their grace period";
  EXPECT_LT(took, seconds(kGrace + 10))
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
  ASSERT_EQ(::waitpid(agent_, &status, WNOHANG), 0) << "the agent died: " << status << agentLog();
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
  Cmd l = logs("userns", "c");
  EXPECT_EQ(l.out.find("unshare: ok"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("unshare"), std::string::npos) << l.out;  // busybox says why
  EXPECT_EQ(stopAgent(), 0);
}

TEST_F(AgentLimits, SeccompDefaultFalseLeavesContainersUnconfinedAsTheKubelet) {
  writeManifest("userns.yaml", usernsPod());
  startAgent({"--seccomp-default=false"});
  waitFor(
      "userns", [](const PodSummary& p) { return p.status.phase == "Succeeded"; }, "Succeeded");
  Cmd l = logs("userns", "c");
  EXPECT_NE(l.out.find("unshare: ok"), std::string::npos) << l.out;
  EXPECT_EQ(stopAgent(), 0);
}

}  // namespace
}  // namespace kernelet::agent
