// Live restore end to end (issue #16), with the real `kernelet run` on static
// pods in the test VM: the agent is killed (SIGKILL), stopped (SIGTERM) or
// replaced by another build while its pods run, and the next agent takes them
// over — the same processes, every log line, exits that happened meanwhile,
// probes and terminations resumed — or, after a "reboot" (nothing left
// running) or with a broken state file, cleans up and starts them anew.
//
// One agent and one set of pods are shared by the cases, in order: pod starts
// under TCG cost seconds each.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "agent/status/pod_status.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "support/static_agent.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

using namespace std::chrono;
namespace fs = std::filesystem;
using testing::StaticAgent;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

// The runtime's record of a pod, which the next agent reads back.
std::string podRecordPath(const std::string& root, const std::string& uid) {
  return root + "/pods/" + uid + "/runtime.json";
}

std::string podYaml(const std::string& name, const std::string& spec) {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n" + spec;
}

// A container running `script` under busybox sh, with the trigger dir mounted.
std::string ctr(const std::string& name, const std::string& script, const std::string& extra = "") {
  return "  - name: " + name + "\n    image: " + kImage +
         "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + script +
         "']\n    volumeMounts: [{name: trigger, mountPath: /trigger}]\n" + extra;
}

// What identifies a process beyond its pid: its start time in clock ticks
// since boot (field 22 of /proc/PID/stat).
std::optional<uint64_t> startTime(pid_t pid) {
  auto stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) {
    return std::nullopt;
  }
  size_t paren = stat->rfind(')');
  std::istringstream in(stat->substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; i++) {
  }
  return std::stoull(field);
}

struct RunId {
  pid_t pid = 0;
  uint64_t start = 0;
  std::string id;
  int restarts = 0;
};

class LiveRestore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::privilegedUnavailableReason().empty()) {
      return;
    }
    agent_ = new StaticAgent(KERNELET_BINARY, "restore");
    if (auto err = agent_->importImage(std::string(KERNELET_FIXTURES) + "/oci/busybox")) {
      ADD_FAILURE() << *err;
    }
    trigger_ = agent_->base() + "/trigger";
    fs::create_directories(trigger_);
  }
  static void TearDownTestSuite() {
    if (agent_ != nullptr) {
      // Whatever a failed case left running: an agent that stops its pods
      // takes it over and stops it.
      if (agent_->pid() > 0) {
        agent_->signal(SIGKILL);
      }
      // Its stop signal once it has adopted what is there: its "Ready" (the
      // log is appended to by every agent of the suite).
      size_t from = agent_->log().size();
      agent_->start();
      for (auto until = steady_clock::now() + seconds(120);
           agent_->log().find("] \"Ready\"", from) == std::string::npos &&
           steady_clock::now() < until;) {
        std::this_thread::sleep_for(milliseconds(100));
      }
      EXPECT_EQ(agent_->stop(), 0) << agent_->log().substr(0, 20000);
      delete agent_;
      agent_ = nullptr;
    }
  }
  void SetUp() override { KERNELET_REQUIRE_PRIVILEGED(); }

  static std::string volumes() {
    return "  volumes:\n  - name: trigger\n    hostPath: {path: " + trigger_ + "}\n";
  }

  PodSummary waitFor(const std::string& name, const std::function<bool(const PodSummary&)>& ok,
                     const std::string& what, seconds timeout = seconds(90)) {
    if (auto p = agent_->waitFor(name, ok, timeout)) {
      return *p;
    }
    std::optional<PodSummary> last = agent_->pod(name);
    ADD_FAILURE() << name << ": " << what << " not reached in " << timeout.count() << " s; phase "
                  << (last ? last->status.phase : "(no status)") << "\n"
                  << agent_->log().substr(0, 30000);
    return last.value_or(PodSummary{});
  }

  static const ContainerStatus* status(const PodSummary& p, const std::string& c) {
    return StaticAgent::statusOf(p, c);
  }

  // The container's one process, from its own cgroup (named by its id).
  static std::optional<RunId> runOf(const PodSummary& p, const std::string& c) {
    const ContainerStatus* s = status(p, c);
    if (s == nullptr || s->container_id.empty()) {
      return std::nullopt;
    }
    std::string id = s->container_id.substr(s->container_id.find("://") + 3);
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(agent_->cgroupTop(), ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().filename() == id) {
        auto procs = readFile(it->path().string() + "/cgroup.procs");
        if (!procs || procs->empty()) {
          return std::nullopt;
        }
        RunId r{
            .pid = static_cast<pid_t>(std::stol(*procs)), .id = id, .restarts = s->restart_count};
        r.start = startTime(r.pid).value_or(0);
        return r;
      }
    }
    return std::nullopt;
  }

  static bool running(const PodSummary& p, const std::string& c) {
    const ContainerStatus* s = status(p, c);
    return s != nullptr && s->state.kind == ContainerState::Kind::kRunning;
  }

  // Every "line N" of the printer's log, in order.
  static std::vector<int> printedLines() {
    std::vector<int> out;
    std::istringstream in(agent_->logs("printer", "app").out);
    static const std::regex line("^line ([0-9]+)$");
    for (std::string l; std::getline(in, l);) {
      std::smatch m;
      if (std::regex_match(l, m, line)) {
        out.push_back(std::stoi(m[1]));
      }
    }
    return out;
  }

  // Lines 1..N each once, in order; the first fault otherwise.
  static std::string gapsOrRepeats(const std::vector<int>& lines) {
    for (size_t i = 0; i < lines.size(); i++) {
      if (lines[i] != static_cast<int>(i) + 1) {
        return "line " + std::to_string(i + 1) + " reads " + std::to_string(lines[i]);
      }
    }
    return "";
  }

  static StaticAgent* agent_;
  static std::string trigger_;
};

StaticAgent* LiveRestore::agent_ = nullptr;
std::string LiveRestore::trigger_;

const char* kPrinter = "i=0; while true; do i=$((i+1)); echo line $i; usleep 200000; done";

// The scenario of the issue: SIGKILL with a printing container, one that
// exits with 7 while no agent is there (under Never and under Always), one
// under a liveness probe and a pod being terminated; 15 s away.
TEST_F(LiveRestore, AgentKilledWithSigkillLeavesEveryPodAndTheNextOneAdoptsThem) {
  agent_->writeManifest("printer.yaml",
                        podYaml("printer", "  containers:\n" + ctr("app", kPrinter) + volumes()));
  std::string wait_then_7 = "while [ ! -e /trigger/go ]; do usleep 100000; done; exit 7";
  agent_->writeManifest("never.yaml", podYaml("never", "  restartPolicy: Never\n  containers:\n" +
                                                           ctr("app", wait_then_7) + volumes()));
  agent_->writeManifest("always.yaml",
                        podYaml("always", "  containers:\n" + ctr("app", wait_then_7) + volumes()));
  agent_->writeManifest(
      "probed.yaml",
      podYaml("probed",
              "  containers:\n" +
                  ctr("app",
                      "touch /tmp/healthy; while true; do [ -e /trigger/unhealthy ] && rm -f "
                      "/tmp/healthy; usleep 200000; done",
                      "    livenessProbe:\n      exec: {command: [cat, /tmp/healthy]}\n"
                      "      periodSeconds: 1\n      failureThreshold: 2\n") +
                  volumes()));
  // busybox sh as its namespace's PID 1 ignores SIGTERM: only the grace
  // period's SIGKILL ends it.
  agent_->writeManifest(
      "leaving.yaml",
      podYaml("leaving", "  terminationGracePeriodSeconds: 40\n  containers:\n" +
                             ctr("app", "while true; do usleep 200000; done") + volumes()));
  agent_->startLeavingPods();
  std::map<std::string, RunId> before;
  for (const char* name : {"printer", "never", "always", "probed", "leaving"}) {
    PodSummary p = waitFor(
        name, [](const PodSummary& s) { return running(s, "app"); }, "app running", seconds(180));
    auto r = runOf(p, "app");
    ASSERT_TRUE(r) << name << "\n" << agent_->log().substr(0, 20000);
    before[name] = *r;
  }
  // The pod being terminated when the agent dies.
  fs::remove(agent_->base() + "/manifests/leaving.yaml");
  auto removed = steady_clock::now();
  waitFor(
      "leaving",
      [](const PodSummary&) {
        return agent_->log().find("\"Killing pod\" pod=\"default/leaving-node1\"") !=
               std::string::npos;
      },
      "the pod's termination under way", seconds(30));

  ASSERT_EQ(agent_->signal(SIGKILL), SIGKILL);  // wait status of a SIGKILLed process
  std::ofstream(trigger_ + "/go") << "";        // the exit-7 containers end while it is away
  std::this_thread::sleep_for(seconds(15));
  EXPECT_EQ(::kill(before["printer"].pid, 0), 0) << "the printer died with the agent";
  agent_->startLeavingPods();

  // Running containers: the same process, the same count.
  for (const char* name : {"printer", "probed"}) {
    PodSummary p = waitFor(
        name,
        [&](const PodSummary& s) {
          return running(s, "app") && status(s, "app")->container_id.ends_with(before[name].id);
        },
        "adopted", seconds(60));
    auto r = runOf(p, "app");
    ASSERT_TRUE(r) << name;
    EXPECT_EQ(r->pid, before[name].pid) << name;
    EXPECT_EQ(r->start, before[name].start) << name;
    EXPECT_EQ(status(p, "app")->restart_count, before[name].restarts) << name;
  }
  // Exited with 7 while away: reported with its code and time; Never keeps it
  // down, Always starts it again.
  PodSummary never = waitFor(
      "never", [](const PodSummary& s) { return s.status.phase == "Failed"; }, "Failed");
  ASSERT_NE(status(never, "app"), nullptr);
  EXPECT_EQ(status(never, "app")->state.kind, ContainerState::Kind::kTerminated);
  EXPECT_EQ(status(never, "app")->state.exit_code, 7);
  EXPECT_EQ(status(never, "app")->state.container_id, "kernelet://" + before["never"].id);
  EXPECT_FALSE(status(never, "app")->state.finished_at.empty());
  EXPECT_EQ(status(never, "app")->restart_count, 0);
  PodSummary always = waitFor(
      "always",
      [](const PodSummary& s) {
        return status(s, "app") != nullptr && status(s, "app")->restart_count == 1 &&
               status(s, "app")->last_state.kind == ContainerState::Kind::kTerminated;
      },
      "restarted after its exit", seconds(60));
  EXPECT_EQ(status(always, "app")->last_state.exit_code, 7);
  EXPECT_FALSE(status(always, "app")->last_state.finished_at.empty());

  // The pod being terminated ends with what was left of its 40 s, not 40 s
  // more.
  for (auto deadline = steady_clock::now() + seconds(60);
       agent_->pod("leaving").has_value() && steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_FALSE(agent_->pod("leaving").has_value()) << "the terminating pod is still there";
  EXPECT_EQ(::kill(before["leaving"].pid, 0), -1);
  EXPECT_LT(steady_clock::now() - removed, seconds(15 + 40 + 10))
      << "the grace period started again";

  // The liveness probe runs again: failing, it restarts the container.
  std::ofstream(trigger_ + "/unhealthy") << "";
  waitFor(
      "probed",
      [](const PodSummary& s) {
        return status(s, "app") != nullptr && status(s, "app")->restart_count == 1;
      },
      "restarted by its liveness probe", seconds(60));
  fs::remove(trigger_ + "/unhealthy");

  // Every line, once, in order, those printed while away included.
  std::vector<int> lines = printedLines();
  EXPECT_GT(lines.size(), 15u / 0.2 * 0.5) << "too few lines";
  EXPECT_EQ(gapsOrRepeats(lines), "");
  EXPECT_EQ(agent_->log().find("Removed what a previous agent left"), std::string::npos);
}

// SIGTERM makes the agent exit at once, leaving the pods; a different build of
// kernelet then adopts them.
TEST_F(LiveRestore, SigtermLeavesThePodsAndAnotherBuildAdoptsThem) {
  if (agent_->pid() <= 0) {
    agent_->startLeavingPods();
  }
  PodSummary p = waitFor(
      "printer", [](const PodSummary& s) { return running(s, "app"); }, "Running");
  auto run = runOf(p, "app");
  ASSERT_TRUE(run);
  auto t0 = steady_clock::now();
  EXPECT_EQ(agent_->signal(SIGTERM, seconds(30)), 0) << agent_->log().substr(0, 20000);
  EXPECT_LT(steady_clock::now() - t0, seconds(10)) << "SIGTERM should not stop the pods";
  EXPECT_EQ(::kill(run->pid, 0), 0);
  agent_->startLeavingPods({}, 3, KERNELET_NEXT_BINARY);
  p = waitFor(
      "printer",
      [&](const PodSummary& s) {
        return running(s, "app") && status(s, "app")->container_id.ends_with(run->id) &&
               agent_->log().find("build=\"next\"") != std::string::npos;
      },
      "adopted by the other build");
  auto again = runOf(p, "app");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->pid, run->pid);
  EXPECT_EQ(again->start, run->start);
  std::this_thread::sleep_for(seconds(2));
  EXPECT_EQ(gapsOrRepeats(printedLines()), "");
}

// After a reboot nothing of the pods runs (nor the holder): the next agent
// cleans up what is left and starts them anew.
TEST_F(LiveRestore, AfterARebootTheNextAgentCleansUpAndStartsThePodsAnew) {
  if (agent_->pid() <= 0) {
    agent_->startLeavingPods();
  }
  PodSummary p = waitFor(
      "printer", [](const PodSummary& s) { return running(s, "app"); }, "Running");
  auto run = runOf(p, "app");
  ASSERT_TRUE(run);
  ASSERT_EQ(agent_->signal(SIGKILL), SIGKILL);
  // A reboot: every process of the pods and the holder gone, and the state
  // files the next agent finds written in another boot.
  ASSERT_TRUE(writeFile(agent_->cgroupTop() + "/kubepods/cgroup.kill", "1").has_value());
  testing::killProcessesMatching("kernelet-holder", agent_->runDir());
  for (int i = 0; i < 100 && ::kill(run->pid, 0) == 0; i++) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  for (const auto& e : fs::directory_iterator(agent_->root() + "/pods")) {
    std::string path = e.path().string() + "/runtime.json";
    if (auto text = readFile(path)) {
      static const std::regex boot("\"bootId\": *\"[^\"]*\"");
      std::string other = std::regex_replace(*text, boot, "\"bootId\":\"another-boot\"");
      ASSERT_NE(other, *text) << path;
      ASSERT_TRUE(writeFile(path, other).has_value());
    }
  }
  agent_->startLeavingPods();
  p = waitFor(
      "printer",
      [&](const PodSummary& s) {
        return running(s, "app") && !status(s, "app")->container_id.ends_with(run->id);
      },
      "running in a new container");
  EXPECT_NE(agent_->log().find("Removed what a previous agent left"), std::string::npos);
}

// A state file this agent cannot read (corrupt, or from a newer agent) is
// named in the log; its pod is cleaned up and started anew, never twice.
TEST_F(LiveRestore, ABrokenStateFileIsReportedAndItsPodStartedAnewOnce) {
  if (agent_->pid() <= 0) {
    agent_->startLeavingPods();
  }
  PodSummary p = waitFor(
      "printer", [](const PodSummary& s) { return running(s, "app"); }, "Running");
  auto run = runOf(p, "app");
  ASSERT_TRUE(run);
  ASSERT_EQ(agent_->signal(SIGTERM, seconds(30)), 0);
  std::string record = podRecordPath(agent_->root(), p.uid);
  ASSERT_TRUE(fs::exists(record)) << record;
  { std::ofstream(record, std::ios::trunc) << "{\"version\": 99"; }
  agent_->startLeavingPods();
  p = waitFor(
      "printer",
      [&](const PodSummary& s) {
        return running(s, "app") && !status(s, "app")->container_id.ends_with(run->id);
      },
      "running in a new container");
  EXPECT_NE(agent_->log().find(record), std::string::npos) << "the log should name " << record;
  EXPECT_EQ(::kill(run->pid, 0), -1) << "the old container still runs beside the new one";
}

}  // namespace
}  // namespace kernelet::agent
