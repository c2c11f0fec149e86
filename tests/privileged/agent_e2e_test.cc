// End-to-end tests of `kernelet run` with static pod manifests: the real
// binary, the fixture images, pods observed through the status files the agent
// writes and `kernelet logs`, as a user would. Runs in the test VM.

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "agent/status/pod_status.h"
#include "cgroups/cgroups.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using Kind = ContainerState::Kind;

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

class AgentE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    std::string id = std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    base_ = "/tmp/kernelet-e2e-" + id;
    root_ = base_ + "/root";
    manifests_ = base_ + "/manifests";
    logs_ = base_ + "/logs";
    run_ = "/run/kernelet-e2e-" + std::to_string(::getpid());
    cgroup_root_ = "/kernelet-e2e-" + std::to_string(::getpid());
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
    expectNothingLeft();
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
                                     "3"};
    if (stop_pods_on_exit_) {
      args.push_back("--stop-pods-on-exit");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = testing::spawnLogged(std::move(args), base_ + "/agent.log");
  }

  // SIGTERM, then the agent's exit status (with --stop-pods-on-exit, as
  // startAgent passes unless told otherwise, it terminates every pod first).
  int stopAgent(int sig = SIGTERM) {
    ::kill(agent_, sig);
    int status = -1;
    auto deadline = steady_clock::now() + seconds(90);
    while (::waitpid(agent_, &status, WNOHANG) == 0) {
      if (steady_clock::now() > deadline) {
        ::kill(agent_, SIGKILL);
        ::waitpid(agent_, &status, 0);
        ADD_FAILURE() << "agent did not stop in 90 s\n" << agentLog();
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
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

  // Waits until `ok` holds for the pod; fails with its last status and the agent log.
  PodSummary waitFor(const std::string& name, const std::function<bool(const PodSummary&)>& ok,
                     const std::string& what, seconds timeout = seconds(60)) {
    auto deadline = steady_clock::now() + timeout;
    std::optional<PodSummary> last;
    while (steady_clock::now() < deadline) {
      last = pod(name);
      if (last && ok(*last)) {
        return *last;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << name << ": " << what << " not reached in " << timeout.count() << " s; phase "
                  << (last ? last->status.phase : "(no status)") << "\n"
                  << agentLog();
    return last.value_or(PodSummary{});
  }

  static const ContainerStatus* statusOf(const PodSummary& p, const std::string& name) {
    for (const auto* list : {&p.status.init_container_statuses, &p.status.container_statuses}) {
      for (const auto& c : *list) {
        if (c.name == name) {
          return &c;
        }
      }
    }
    return nullptr;
  }

  Cmd logs(const std::string& pod, const std::string& container, bool previous = false) {
    std::vector<std::string> args = {KERNELET_BINARY, "logs", "--root-dir",   root_,
                                     "--pod-log-dir", logs_,  pod + "-node1", container};
    if (previous) {
      args.push_back("--previous");
    }
    return runCommand(args);
  }

  // `kernelet logs` once its output holds `needle` (or after 30 s, as it is then).
  Cmd logsWith(const std::string& pod, const std::string& container, const std::string& needle) {
    auto deadline = steady_clock::now() + seconds(30);
    Cmd l = logs(pod, container);
    while (l.out.find(needle) == std::string::npos && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(100));
      l = logs(pod, container);
    }
    return l;
  }

  void expectNothingLeft() {
    std::string kubepods = "/sys/fs/cgroup" + cgroup_root_ + "/kubepods";
    for (const char* q : {"", "/burstable", "/besteffort"}) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(kubepods + q, ec)) {
        EXPECT_FALSE(e.path().filename().string().starts_with("pod"))
            << "cgroup left: " << e.path();
      }
    }
    std::ifstream mounts("/proc/self/mountinfo");
    for (std::string line; std::getline(mounts, line);) {
      EXPECT_EQ(line.find(base_), std::string::npos) << "mount left: " << line;
      EXPECT_EQ(line.find(run_ + "/"), std::string::npos) << "mount left: " << line;
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/class/net", ec)) {
      EXPECT_FALSE(e.path().filename().string().starts_with("kv")) << "veth left: " << e.path();
    }
    EXPECT_EQ(testing::countEntries(run_ + "/netns"), 0);
  }

  bool stop_pods_on_exit_ = true;
  std::string base_, root_, manifests_, logs_, run_, cgroup_root_;
  pid_t agent_ = -1;
  bool started_ = false;
};

std::string podYaml(const std::string& name, const std::string& spec) {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n" + spec;
}

std::string ctr(const std::string& name, const std::string& script, const std::string& extra = "") {
  return "  - name: " + name + "\n    image: " + kImage +
         "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + script + "']\n" + extra;
}

TEST_F(AgentE2E, APodRunsAndItsContainersMeetOnLocalhost) {
  writeManifest("web.yaml",
                podYaml("web",
                        "  terminationGracePeriodSeconds: 2\n  containers:\n"
                        "  - name: server\n    image: " +
                            kImage +
                            "\n    imagePullPolicy: Never\n    command: [kt-http, '8080', 'hi "
                            "from server']\n" +
                            ctr("client",
                                "trap \"exit 0\" TERM; while true; do wget -qO- "
                                "http://127.0.0.1:8080/ && echo; sleep 1; done",
                                "    env:\n    - name: MY_IP\n      valueFrom: {fieldRef: "
                                "{fieldPath: status.podIP}}\n")));
  // gRPC probes go from the node to the pod's IP, as httpGet: one server
  // answers SERVING to a readiness probe, the other NOT_SERVING to a
  // liveness probe, which restarts its container.
  std::string grpc_probe = "grpc: {port: PORT}, periodSeconds: 1, failureThreshold: 1}\n";
  auto grpcCtr = [&](const std::string& name, const std::string& port, const std::string& answer,
                     const std::string& probe) {
    std::string p = grpc_probe;
    p.replace(p.find("PORT"), 4, port);
    return "  - name: " + name + "\n    image: " + kImage +
           "\n    imagePullPolicy: Never\n    command: [kt-grpc, '" + port + "', " + answer +
           "]\n    " + probe + ": {" + p;
  };
  writeManifest("grpc.yaml",
                podYaml("grpc", "  terminationGracePeriodSeconds: 1\n  containers:\n" +
                                    grpcCtr("healthy", "9000", "SERVING", "readinessProbe") +
                                    grpcCtr("sick", "9001", "NOT_SERVING", "livenessProbe")));
  startAgent();
  PodSummary g = waitFor(
      "grpc",
      [](const PodSummary& s) {
        const ContainerStatus* healthy = statusOf(s, "healthy");
        const ContainerStatus* sick = statusOf(s, "sick");
        return healthy != nullptr && healthy->ready && sick != nullptr && sick->restart_count >= 1;
      },
      "the SERVING container ready and the NOT_SERVING one restarted");
  EXPECT_EQ(statusOf(g, "sick")->last_state.kind, Kind::kTerminated);
  PodSummary p = waitFor(
      "web",
      [](const PodSummary& s) {
        return s.status.phase == "Running" && s.status.container_statuses.size() == 2 &&
               s.status.container_statuses[0].ready && s.status.container_statuses[1].ready;
      },
      "Running with both containers ready");
  EXPECT_TRUE(p.status.pod_ip.starts_with("10.88.")) << p.status.pod_ip;
  EXPECT_EQ(p.namespace_, "default");
  EXPECT_EQ(statusOf(p, "server")->state.kind, Kind::kRunning);
  EXPECT_TRUE(statusOf(p, "server")->container_id.starts_with("kernelet://"));
  Cmd l = logsWith("web", "client", "hi from server");
  EXPECT_NE(l.out.find("hi from server"), std::string::npos) << l.out << l.err;
  Cmd table = runCommand({KERNELET_BINARY, "pods", "--root-dir", root_});
  EXPECT_NE(table.out.find("web-node1"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("2/2"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("Running"), std::string::npos) << table.out;
  EXPECT_EQ(stopAgent(), 0);
}

TEST_F(AgentE2E, ACrashingContainerBacksOffIntoCrashLoopBackOff) {
  writeManifest("crash.yaml", podYaml("crash", "  containers:\n" + ctr("app", "echo run; exit 1")));
  startAgent();
  // The first restart is immediate, then the waits are 10 s, 20 s, ...
  PodSummary p = waitFor(
      "crash",
      [](const PodSummary& s) {
        const auto& c = s.status.container_statuses;
        return !c.empty() && c[0].restart_count == 1 && c[0].state.reason == "CrashLoopBackOff";
      },
      "CrashLoopBackOff after one restart");
  const ContainerStatus* c = statusOf(p, "app");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(p.status.phase, "Running");
  EXPECT_EQ(c->last_state.kind, Kind::kTerminated);
  EXPECT_EQ(c->last_state.exit_code, 1);
  EXPECT_EQ(c->last_state.reason, "Error");
  EXPECT_NE(c->state.message.find("back-off 10s restarting failed container=app"),
            std::string::npos)
      << c->state.message;
  auto at_one = steady_clock::now();
  p = waitFor(
      "crash",
      [](const PodSummary& s) {
        const auto& c = s.status.container_statuses;
        return !c.empty() && c[0].restart_count == 2 && c[0].state.reason == "CrashLoopBackOff";
      },
      "the second restart", seconds(60));
  // Not before the 10 s back-off ran out.
  EXPECT_GE(steady_clock::now() - at_one, seconds(9));
  EXPECT_NE(statusOf(p, "app")->state.message.find("back-off 20s"), std::string::npos)
      << statusOf(p, "app")->state.message;
  Cmd prev = logs("crash", "app", true);
  EXPECT_EQ(prev.out, "run\n") << prev.err;
  Cmd table = runCommand({KERNELET_BINARY, "pods", "--root-dir", root_});
  EXPECT_NE(table.out.find("CrashLoopBackOff"), std::string::npos) << table.out;
}

TEST_F(AgentE2E, NeverAndOnFailurePodsEndSucceededOrFailed) {
  writeManifest("ok.yaml",
                podYaml("ok", "  restartPolicy: Never\n  containers:\n" + ctr("app", "exit 0")));
  writeManifest("bad.yaml",
                podYaml("bad", "  restartPolicy: Never\n  containers:\n" + ctr("app", "exit 3")));
  // Fails once, then succeeds: OnFailure restarts it, the pod ends Succeeded.
  writeManifest("retry.yaml",
                podYaml("retry", "  restartPolicy: OnFailure\n  containers:\n" +
                                     ctr("app",
                                         "if [ -f /w/once ]; then exit 0; fi; touch "
                                         "/w/once; exit 1",
                                         "    volumeMounts: [{name: w, mountPath: /w}]\n") +
                                     "  volumes: [{name: w, emptyDir: {}}]\n"));
  startAgent();
  PodSummary ok = waitFor(
      "ok", [](const PodSummary& s) { return s.status.phase == "Succeeded"; }, "Succeeded");
  EXPECT_EQ(statusOf(ok, "app")->state.reason, "Completed");
  PodSummary bad = waitFor(
      "bad", [](const PodSummary& s) { return s.status.phase == "Failed"; }, "Failed");
  EXPECT_EQ(statusOf(bad, "app")->state.exit_code, 3);
  EXPECT_EQ(statusOf(bad, "app")->state.reason, "Error");
  EXPECT_EQ(statusOf(bad, "app")->restart_count, 0);
  PodSummary retry = waitFor(
      "retry", [](const PodSummary& s) { return s.status.phase == "Succeeded"; }, "Succeeded");
  EXPECT_EQ(statusOf(retry, "app")->restart_count, 1);
  EXPECT_EQ(statusOf(retry, "app")->last_state.exit_code, 1);
  // Finished pods keep their status, not their sandbox: it goes once the pod
  // finished, asynchronously (the status may be read before).
  auto deadline = steady_clock::now() + seconds(20);
  while (testing::countEntries(run_ + "/netns") > 0 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(testing::countEntries(run_ + "/netns"), 0);
}

TEST_F(AgentE2E, InitContainersRunInOrderAndAFailingOneBlocksTheApp) {
  writeManifest("init.yaml",
                podYaml("init", "  initContainers:\n" +
                                    ctr("first", "echo first > /w/order",
                                        "    volumeMounts: [{name: w, mountPath: /w}]\n") +
                                    ctr("second", "echo second >> /w/order",
                                        "    volumeMounts: [{name: w, mountPath: /w}]\n") +
                                    "  containers:\n" +
                                    ctr("app", "cat /w/order; exec kt-sleep 600",
                                        "    volumeMounts: [{name: w, mountPath: /w}]\n") +
                                    "  volumes: [{name: w, emptyDir: {}}]\n"));
  writeManifest("blocked.yaml",
                podYaml("blocked", "  initContainers:\n" + ctr("setup", "exit 1") +
                                       "  containers:\n" + ctr("app", "exec kt-sleep 600")));
  startAgent();
  PodSummary p = waitFor(
      "init",
      [](const PodSummary& s) {
        return s.status.phase == "Running" && !s.status.container_statuses.empty() &&
               s.status.container_statuses[0].ready;
      },
      "Running after its init containers");
  EXPECT_EQ(statusOf(p, "first")->state.reason, "Completed");
  EXPECT_EQ(statusOf(p, "second")->state.reason, "Completed");
  Cmd l = logsWith("init", "app", "second\n");
  EXPECT_EQ(l.out, "first\nsecond\n");

  PodSummary b = waitFor(
      "blocked",
      [](const PodSummary& s) {
        return !s.status.init_container_statuses.empty() &&
               s.status.init_container_statuses[0].state.reason == "CrashLoopBackOff";
      },
      "Init:CrashLoopBackOff");
  EXPECT_EQ(b.status.phase, "Pending");
  EXPECT_EQ(statusOf(b, "app")->state.kind, Kind::kWaiting);
  EXPECT_EQ(statusOf(b, "app")->state.reason, "PodInitializing");
  EXPECT_EQ(statusOf(b, "app")->restart_count, 0);
  Cmd table = runCommand({KERNELET_BINARY, "pods", "--root-dir", root_});
  EXPECT_NE(table.out.find("Init:CrashLoopBackOff"), std::string::npos) << table.out;
}

TEST_F(AgentE2E, ASidecarRunsBesideTheAppAndStopsAfterIt) {
  writeManifest(
      "side.yaml",
      podYaml("side", "  restartPolicy: Never\n  initContainers:\n" +
                          ctr("proxy", "trap \"exit 0\" TERM; kt-http 9090 sidecar & wait",
                              "    restartPolicy: Always\n") +
                          "  containers:\n" +
                          ctr("app", "sleep 1; wget -qO- http://127.0.0.1:9090/; echo")));
  startAgent();
  PodSummary p = waitFor(
      "side", [](const PodSummary& s) { return s.status.phase == "Succeeded"; },
      "Succeeded once the app is done, the sidecar stopped");
  EXPECT_EQ(statusOf(p, "app")->state.exit_code, 0);
  EXPECT_EQ(statusOf(p, "proxy")->state.kind, Kind::kTerminated);
  Cmd l = logs("side", "app");
  EXPECT_EQ(l.out, "sidecar\n") << l.err;
}

TEST_F(AgentE2E, AMemoryHogIsOomKilledAndReportedSo) {
  writeManifest("hog.yaml",
                podYaml("hog", "  restartPolicy: Never\n  containers:\n" +
                                   ctr("app", "exec kt-alloc 64",
                                       "    resources:\n      limits: {memory: 16Mi}\n")));
  startAgent();
  PodSummary p = waitFor(
      "hog", [](const PodSummary& s) { return s.status.phase == "Failed"; }, "Failed");
  EXPECT_EQ(statusOf(p, "app")->state.reason, "OOMKilled");
  EXPECT_EQ(statusOf(p, "app")->state.exit_code, 137);
}

TEST_F(AgentE2E, RemovingTheManifestTerminatesWithinTheGracePeriodAndLeavesNothing) {
  // kt-sleep exits on SIGTERM; the other ignores it and is killed when the grace ends.
  writeManifest("polite.yaml",
                podYaml("polite", "  containers:\n  - name: app\n    image: " + kImage +
                                      "\n    imagePullPolicy: Never\n    command: [kt-sleep, "
                                      "'600']\n    resources:\n      requests: {cpu: 100m}\n"));
  writeManifest(
      "stubborn.yaml",
      podYaml("stubborn", "  terminationGracePeriodSeconds: 2\n  containers:\n" +
                              ctr("app", "trap \"\" TERM; while true; do sleep 1; done")));
  startAgent();
  for (const char* name : {"polite", "stubborn"}) {
    waitFor(
        name,
        [](const PodSummary& s) {
          return s.status.phase == "Running" && s.status.container_statuses[0].ready;
        },
        "Running");
  }
  // Running means exec'ed, not that kt-sleep has its SIGTERM handler yet: as
  // its namespace's PID 1 it would drop a SIGTERM that came first (the kernel
  // ignores unhandled signals for an init), as under any runtime.
  size_t at = agentLog().find("\"Container started\" pod=\"default/polite-node1\"");
  ASSERT_NE(at, std::string::npos);
  std::string pid = agentLog().substr(agentLog().find("pid=\"", at) + 5);
  pid = pid.substr(0, pid.find('"'));
  auto handled = [&] {
    std::string status = readFile("/proc/" + pid + "/status").value_or("");
    size_t cgt = status.find("SigCgt:");
    return cgt != std::string::npos &&
           (std::stoull(status.substr(cgt + 7, 17), nullptr, 16) & (1ULL << (SIGTERM - 1))) != 0;
  };
  for (auto until = steady_clock::now() + seconds(10); !handled() && steady_clock::now() < until;) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(handled()) << "kt-sleep (pid " << pid << ") never caught SIGTERM";
  auto t0 = steady_clock::now();
  fs::remove(manifests_ + "/polite.yaml");
  fs::remove(manifests_ + "/stubborn.yaml");
  auto deadline = t0 + seconds(30);
  while ((pod("polite") || pod("stubborn")) && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_FALSE(pod("polite"));
  EXPECT_FALSE(pod("stubborn"));
  auto took = steady_clock::now() - t0;
  EXPECT_GE(took, seconds(2)) << "the stubborn pod got less than its grace period";
  EXPECT_LT(took, seconds(10)) << "not killed when the grace period ended";
  EXPECT_NE(agentLog().find("\"Killing pod\" pod=\"default/polite-node1\" gracePeriod=\"30\""),
            std::string::npos);
  expectNothingLeft();  // while the agent still runs
  EXPECT_EQ(stopAgent(), 0);
}

// The Kubernetes documentation's lifecycle example ("Attach Handlers to
// Container Lifecycle Events"), with the fixture image and files in a hostPath
// the test reads: postStart writes its message before the container counts as
// Running; deleting the pod runs preStop before SIGTERM, and its sleep delays
// the container's end.
TEST_F(AgentE2E, PostStartRunsBeforeRunningAndPreStopDelaysTheDeletion) {
  std::string shared = base_ + "/shared";
  fs::create_directories(shared);
  writeManifest(
      "lifecycle.yaml",
      podYaml("lifecycle-demo",
              "  containers:\n" +
                  ctr("lifecycle-demo-container",
                      "trap \"echo SIGTERM >> /shared/order; exit 0\" TERM; "
                      "while true; do sleep 1; done",
                      "    lifecycle:\n"
                      "      postStart:\n"
                      "        exec:\n"
                      "          command: [\"/bin/sh\", \"-c\", \"echo Hello from the postStart "
                      "handler > /shared/message\"]\n"
                      "      preStop:\n"
                      "        exec:\n"
                      "          command: [\"/bin/sh\", \"-c\", \"echo preStop >> /shared/order; "
                      "sleep 3\"]\n"
                      "    volumeMounts:\n    - {name: shared, mountPath: /shared}\n") +
                  "  volumes:\n  - {name: shared, hostPath: {path: " + shared +
                  ", type: Directory}}\n"));
  startAgent();
  // Whenever the status says Running, the postStart has written its message.
  bool message_before_running = true;
  waitFor(
      "lifecycle-demo",
      [&](const PodSummary& s) {
        const ContainerStatus* c = statusOf(s, "lifecycle-demo-container");
        bool up = c != nullptr && c->state.kind == Kind::kRunning;
        if (up && !fs::exists(shared + "/message")) {
          message_before_running = false;
        }
        return up && c->ready;
      },
      "Running and Ready");
  EXPECT_TRUE(message_before_running) << "Running before the postStart hook returned";
  EXPECT_EQ(readFile(shared + "/message").value_or(""), "Hello from the postStart handler\n");

  auto t0 = steady_clock::now();
  fs::remove(manifests_ + "/lifecycle.yaml");
  auto deadline = t0 + seconds(40);
  while (pod("lifecycle-demo") && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_FALSE(pod("lifecycle-demo")) << agentLog();
  auto took = steady_clock::now() - t0;
  EXPECT_GE(took, seconds(3)) << "the preStop's sleep did not delay the stop";
  EXPECT_LT(took, seconds(25)) << "SIGTERM did not follow the preStop";
  EXPECT_EQ(readFile(shared + "/order").value_or(""), "preStop\nSIGTERM\n") << agentLog();
  EXPECT_NE(agentLog().find("\"Running preStop hook\""), std::string::npos);
  EXPECT_EQ(agentLog().find("\"PreStop hook failed\""), std::string::npos);
  EXPECT_EQ(stopAgent(), 0);
}

TEST_F(AgentE2E, AMalformedManifestIsReportedAndTheOthersKeepRunning) {
  writeManifest("good.yaml", podYaml("good", "  containers:\n" + ctr("app", "exec kt-sleep 600")));
  startAgent();
  waitFor(
      "good", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  std::string before = pod("good")->status.container_statuses[0].container_id;
  writeManifest("broken.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  "
                "containers:\n  - name: app\n");
  auto deadline = steady_clock::now() + seconds(20);
  while (agentLog().find("broken.yaml") == std::string::npos && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  std::string log = agentLog();
  EXPECT_NE(log.find("broken.yaml`: line 7: spec.containers[0].image: required"), std::string::npos)
      << log;
  EXPECT_FALSE(pod("broken"));
  auto good = pod("good");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status.phase, "Running");
  EXPECT_EQ(good->status.container_statuses[0].container_id, before);  // not restarted
}

TEST_F(AgentE2E, AChangedSpecRestartsThePod) {
  writeManifest("v.yaml", podYaml("v", "  terminationGracePeriodSeconds: 1\n  containers:\n" +
                                           ctr("app", "echo one; exec kt-sleep 600")));
  startAgent();
  PodSummary one = waitFor(
      "v", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  writeManifest("v.yaml", podYaml("v", "  terminationGracePeriodSeconds: 1\n  containers:\n" +
                                           ctr("app", "echo two; exec kt-sleep 600")));
  PodSummary two = waitFor(
      "v", [&](const PodSummary& s) { return s.uid != one.uid && s.status.phase == "Running"; },
      "Running with the new spec");
  Cmd l = logsWith("v", "app", "\n");
  EXPECT_EQ(l.out, "two\n");
  // The old pod (another uid) goes within its grace period, beside the new one.
  auto deadline = steady_clock::now() + seconds(20);
  while (testing::countEntries(root_ + "/pods") != 1 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(testing::countEntries(root_ + "/pods"), 1);
}

TEST_F(AgentE2E, APodThatDoesNotFitIsRejectedWithOutOfcpu) {
  writeManifest(
      "huge.yaml",
      podYaml("huge", "  containers:\n" +
                          ctr("app", "true", "    resources:\n      requests: {cpu: '1000'}\n")));
  startAgent();
  PodSummary p = waitFor(
      "huge", [](const PodSummary& s) { return s.status.phase == "Failed"; }, "Failed");
  EXPECT_EQ(p.status.reason, "OutOfcpu");
  EXPECT_NE(p.status.message.find("Node didn't have enough resource: cpu, requested: 1000000"),
            std::string::npos)
      << p.status.message;
}

// Issue #19 part D in one pod, as a user sees it: sysctls (safe ones and one
// allowed by --allowed-unsafe-sysctls) in both containers and not on the node,
// the docs' hostAliases and dnsConfig examples, setHostnameAsFQDN; beside it a
// pod with a sysctl the node does not allow (SysctlForbidden) and one whose
// FQDN is too long for the kernel (its sandbox is never made).
TEST_F(AgentE2E, SysctlsHostAliasesDnsConfigAndFqdnHostname) {
  auto nodeValue = [](const char* path) { return readFile(path).value_or("(unreadable)"); };
  const std::string node_range = nodeValue("/proc/sys/net/ipv4/ip_local_port_range");
  const std::string node_rmid = nodeValue("/proc/sys/kernel/shm_rmid_forced");
  const std::string node_msgmax = nodeValue("/proc/sys/kernel/msgmax");
  const std::string show =
      "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/kernel/shm_rmid_forced "
      "/proc/sys/kernel/msgmax; ";
  writeManifest(
      "net.yaml",
      podYaml("net",
              "  hostname: db\n  subdomain: backend\n  setHostnameAsFQDN: true\n"
              "  securityContext:\n    sysctls:\n"
              "    - {name: net.ipv4.ip_local_port_range, value: \"1024 65000\"}\n"
              "    - {name: kernel/shm_rmid_forced, value: \"1\"}\n"
              "    - {name: kernel.msgmax, value: \"12345\"}\n"
              "  hostAliases:\n  - ip: 127.0.0.1\n    hostnames: [foo.local, bar.local]\n"
              "  - ip: 10.1.2.3\n    hostnames: [foo.remote, bar.remote]\n"
              "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [192.0.2.1]\n"
              "    searches: [ns1.svc.cluster-domain.example, my.dns.search.suffix]\n"
              "    options:\n    - {name: ndots, value: \"2\"}\n    - name: edns0\n"
              "  containers:\n" +
                  ctr("a", show + "echo; hostname; cat /etc/hosts /etc/resolv.conf; echo END; "
                                  "exec kt-sleep 600") +
                  ctr("b", show + "echo END; exec kt-sleep 600")));
  writeManifest(
      "sem.yaml",
      podYaml("sem",
              "  securityContext:\n    sysctls: [{name: kernel.sem, value: \"1 2 3 4\"}]\n"
              "  containers:\n" +
                  ctr("app", "true")));
  writeManifest("long.yaml", podYaml("long", "  hostname: " + std::string(40, 'h') +
                                                 "\n  subdomain: backend\n  setHostnameAsFQDN: "
                                                 "true\n  containers:\n" +
                                                 ctr("app", "true")));
  startAgent({"--allowed-unsafe-sysctls", "kernel.msg*"});
  PodSummary net = waitFor(
      "net", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  const std::string sysctls = "1024\t65000\n1\n12345\n";
  Cmd a = logsWith("net", "a", "END");
  EXPECT_EQ(a.out, sysctls + "\ndb.backend.default.svc.cluster.local\n" +
                       "# Kubernetes-managed hosts file.\n"
                       "127.0.0.1\tlocalhost\n"
                       "::1\tlocalhost ip6-localhost ip6-loopback\n"
                       "fe00::0\tip6-localnet\n"
                       "fe00::0\tip6-mcastprefix\n"
                       "fe00::1\tip6-allnodes\n"
                       "fe00::2\tip6-allrouters\n" +
                       net.status.pod_ip + "\tdb.backend.default.svc.cluster.local\tdb\n" +
                       "\n# Entries added by HostAliases.\n"
                       "127.0.0.1\tfoo.local\tbar.local\n"
                       "10.1.2.3\tfoo.remote\tbar.remote\n"
                       "nameserver 192.0.2.1\n"
                       "search ns1.svc.cluster-domain.example my.dns.search.suffix\n"
                       "options ndots:2 edns0\n"
                       "END\n")
      << a.err;
  Cmd b = logsWith("net", "b", "END");
  EXPECT_EQ(b.out, sysctls + "END\n") << b.err;
  // The node's own values are untouched.
  EXPECT_EQ(nodeValue("/proc/sys/net/ipv4/ip_local_port_range"), node_range);
  EXPECT_EQ(nodeValue("/proc/sys/kernel/shm_rmid_forced"), node_rmid);
  EXPECT_EQ(nodeValue("/proc/sys/kernel/msgmax"), node_msgmax);

  PodSummary sem = waitFor(
      "sem", [](const PodSummary& s) { return s.status.phase == "Failed"; }, "Failed");
  EXPECT_EQ(sem.status.reason, "SysctlForbidden");
  EXPECT_EQ(sem.status.message,
            "Pod was rejected: forbidden sysctl: \"kernel.sem\" not allowlisted");

  std::string fqdn = std::string(40, 'h') + ".backend.default.svc.cluster.local";
  PodSummary long_pod = waitFor(
      "long",
      [](const PodSummary& s) {
        return s.status.message.find("failed to construct FQDN") != std::string::npos;
      },
      "its sandbox refused");
  EXPECT_EQ(long_pod.status.message,
            "failed to construct FQDN from pod hostname and cluster domain, FQDN " + fqdn +
                " is too long (64 characters is the max, 74 characters requested)");
  EXPECT_EQ(long_pod.status.phase, "Pending");
}

// Node allocatable is enforced on kubepods, as the kubelet does by default:
// pods together cannot use what the reservations set aside.
TEST_F(AgentE2E, ReservationsLimitTheKubepodsCgroupAndAPodThatAsksTooMuchIsRejected) {
  int64_t cpus = std::thread::hardware_concurrency();
  // Fits the capacity, not what the 200m reserved leave.
  std::string request = std::to_string(cpus * 1000 - 100) + "m";
  writeManifest(
      "big.yaml",
      podYaml("big",
              "  containers:\n" +
                  ctr("app", "true", "    resources:\n      requests: {cpu: " + request + "}\n")));
  startAgent(
      {"--kube-reserved", "cpu=200m,memory=64Mi,pid=100", "--system-reserved", "memory=32Mi"});
  PodSummary p = waitFor(
      "big", [](const PodSummary& s) { return s.status.phase == "Failed"; }, "Failed");
  EXPECT_EQ(p.status.reason, "OutOfcpu");
  std::string kubepods = "/sys/fs/cgroup" + cgroup_root_ + "/kubepods/";
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  meminfo >> key >> kib;
  EXPECT_EQ(readFile(kubepods + "memory.max").value_or(""),
            std::to_string(kib * 1024 - (96 << 20)) + "\n");
  int64_t pid_max = std::stoll(readFile("/proc/sys/kernel/pid_max").value_or("0"));
  EXPECT_EQ(readFile(kubepods + "pids.max").value_or(""), std::to_string(pid_max - 100) + "\n");
  EXPECT_EQ(
      readFile(kubepods + "cpu.weight").value_or(""),
      std::to_string(cgroups::sharesToWeight(cgroups::milliCpuToShares(cpus * 1000 - 200))) + "\n");
}

TEST_F(AgentE2E, DownwardApiEnvAndFilesAndTheResourceLimitsReachTheContainer) {
  writeManifest(
      "env.yaml",
      podYaml(
          "env",
          "  containers:\n" +
              ctr("app",
                  "echo $POD_NAME $POD_NS $GREETING; cat /info/labels; echo; "
                  "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; "
                  "cat /proc/self/oom_score_adj; hostname; exec kt-sleep 600",
                  "    env:\n"
                  "    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n"
                  "    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n"
                  "    - {name: GREETING, value: 'hello $(POD_NAME)'}\n"
                  "    resources:\n      requests: {cpu: 250m, memory: 32Mi}\n"
                  "      limits: {cpu: 500m, memory: 64Mi}\n"
                  "    volumeMounts: [{name: info, mountPath: /info}]\n") +
              "  volumes:\n  - name: info\n    downwardAPI:\n      items:\n"
              "      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n") +
          "");
  std::string text = readFile(manifests_ + "/env.yaml").value_or("");
  text.replace(text.find("  name: env\n"), 12, "  name: env\n  labels: {app: demo}\n");
  writeManifest("env.yaml", text);
  startAgent();
  waitFor(
      "env", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  Cmd l = logsWith("env", "app", "\nenv-node1\n");
  int64_t mem_total_kib = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  meminfo >> key >> mem_total_kib;
  int64_t burstable_score =
      std::clamp<int64_t>(1000 - (1000LL * (32 << 20)) / (mem_total_kib * 1024), 3, 999);
  EXPECT_EQ(l.out,
            "env-node1 default hello env-node1\n"
            "app=\"demo\"\n\n" +
                std::to_string(64 << 20) +
                "\n"
                "50000 100000\n" +
                // Burstable: 1000 - 1000 * 32Mi / node memory (the kubelet's rule).
                std::to_string(burstable_score) +
                "\n"
                "env-node1\n")
      << l.err;
}

// The agent holds descriptors for every container (a node of pods needs more
// than the usual 1024); its containers keep the limit it was started with.
TEST_F(AgentE2E, TheAgentRaisesItsOpenFileLimitAndContainersKeepTheOneItWasGiven) {
  rlimit mine{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &mine), 0);
  if (mine.rlim_max == RLIM_INFINITY || mine.rlim_max <= 256) {
    GTEST_SKIP() << "the hard open-file limit leaves no room: " << mine.rlim_max;
  }
  // So low that the agent soon holds more descriptors than its containers may
  // open: a container start must not count the agent's against its limit.
  rlimit given{16, mine.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &given), 0);
  for (const char* name : {"fds1", "fds2", "fds3"}) {
    writeManifest(
        std::string(name) + ".yaml",
        podYaml(name, "  containers:\n" + ctr("app",
                                              "echo open files $(ulimit -Sn) $(ulimit -Hn); "
                                              "exec kt-sleep 600")));
  }
  startAgent();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &mine), 0);
  for (const char* name : {"fds1", "fds2", "fds3"}) {
    Cmd l = logsWith(name, "app", "open files");
    EXPECT_EQ(l.out, "open files 16 " + std::to_string(mine.rlim_max) + "\n") << name << l.err;
  }
  std::string limits = readFile("/proc/" + std::to_string(agent_) + "/limits").value_or("");
  size_t at = limits.find("Max open files");
  ASSERT_NE(at, std::string::npos) << limits;
  std::istringstream line(limits.substr(at + 14));
  std::string soft, hard;
  line >> soft >> hard;
  EXPECT_EQ(soft, std::to_string(mine.rlim_max)) << limits;
  EXPECT_EQ(hard, std::to_string(mine.rlim_max)) << limits;
}

TEST_F(AgentE2E, SecurityContextAndVolumesApply) {
  fs::create_directories(base_ + "/hostdata");
  std::ofstream(base_ + "/hostdata/hello") << "from host\n";
  writeManifest(
      "sec.yaml",
      podYaml("sec", "  securityContext: {runAsUser: 1000, runAsGroup: 3000}\n  containers:\n" +
                         ctr("app",
                             "id -u; id -g; touch /x 2>/dev/null && echo rw || echo ro; "
                             "grep -E \"^(CapEff|NoNewPrivs|Seccomp):\" /proc/self/status; "
                             "grep \" /mem \" /proc/mounts | cut -d\" \" -f3; cat /host/hello; "
                             "exec kt-sleep 600",
                             "    securityContext:\n      readOnlyRootFilesystem: true\n"
                             "      allowPrivilegeEscalation: false\n"
                             "      capabilities: {drop: [ALL]}\n"
                             "      seccompProfile: {type: RuntimeDefault}\n"
                             "    volumeMounts:\n    - {name: mem, mountPath: /mem}\n"
                             "    - {name: host, mountPath: /host, readOnly: true}\n") +
                         "  volumes:\n  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}\n"
                         "  - {name: host, hostPath: {path: " +
                         base_ + "/hostdata, type: Directory}}\n"));
  writeManifest(
      "root.yaml",
      podYaml("root", "  containers:\n" +
                          ctr("app", "true", "    securityContext: {runAsNonRoot: true}\n")));
  startAgent();
  waitFor(
      "sec", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  Cmd l = logsWith("sec", "app", "from host");
  EXPECT_EQ(l.out,
            "1000\n3000\nro\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
            "tmpfs\nfrom host\n")
      << l.err;
  PodSummary root = waitFor(
      "root",
      [](const PodSummary& s) {
        return !s.status.container_statuses.empty() &&
               s.status.container_statuses[0].state.reason == "CreateContainerConfigError";
      },
      "CreateContainerConfigError");
  EXPECT_NE(statusOf(root, "app")
                ->state.message.find("container has runAsNonRoot and image will run as root"),
            std::string::npos)
      << statusOf(root, "app")->state.message;
  EXPECT_EQ(root.status.phase, "Pending");
}

// Even with --stop-pods-on-exit (make run's mode), an agent killed hard cannot
// stop its pods: the next one adopts them (the same container, one pod cgroup)
// instead of killing and starting them again. live_restore_test covers the rest.
TEST_F(AgentE2E, AnAgentKilledHardLeavesItsPodsToTheNextOne) {
  writeManifest("survivor.yaml",
                podYaml("survivor", "  containers:\n" + ctr("app", "exec kt-sleep 600")));
  startAgent();
  PodSummary first = waitFor(
      "survivor", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  stopAgent(SIGKILL);
  startAgent();
  PodSummary again = waitFor(
      "survivor",
      [&](const PodSummary& s) {
        std::string log = agentLog();
        size_t adopted = log.rfind("Adopted");
        return s.status.phase == "Running" && !s.status.container_statuses.empty() &&
               s.status.container_statuses[0].ready && adopted != std::string::npos &&
               adopted > log.rfind("Starting kernelet");
      },
      "adopted by the next agent");
  EXPECT_EQ(again.status.container_statuses[0].container_id,
            first.status.container_statuses[0].container_id);
  EXPECT_EQ(again.status.container_statuses[0].restart_count, 0);
  std::string kubepods = "/sys/fs/cgroup" + cgroup_root_ + "/kubepods/besteffort";
  int groups = 0;
  for (const auto& e : fs::directory_iterator(kubepods)) {
    groups += e.path().filename().string().starts_with("pod") ? 1 : 0;
  }
  EXPECT_EQ(groups, 1);
  EXPECT_EQ(stopAgent(), 0);
}

TEST_F(AgentE2E, ASigtermWithoutStopPodsOnExitLeavesThePodsToTheNextAgent) {
  writeManifest("stays.yaml",
                podYaml("stays", "  containers:\n" + ctr("app", "exec kt-sleep 600")));
  stop_pods_on_exit_ = false;
  startAgent();
  waitFor(
      "stays", [](const PodSummary& s) { return s.status.phase == "Running"; }, "Running");
  auto t0 = steady_clock::now();
  int status = stopAgent(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << agentLog();
  EXPECT_LT(steady_clock::now() - t0, seconds(10)) << "no grace period is waited for";
  EXPECT_NE(agentLog().find("Leaving 1 pods running"), std::string::npos) << agentLog();
  EXPECT_EQ(agentLog().find("Killing pod"), std::string::npos) << "no pod was terminated";
  auto left = pod("stays");
  ASSERT_TRUE(left.has_value()) << "its status file stays for the next agent";
  EXPECT_EQ(left.value().status.phase, "Running");
  // The next agent takes the pod over (or, until the runtime adopts, cleans
  // up and starts it again); stopped with --stop-pods-on-exit, nothing is left.
  stop_pods_on_exit_ = true;
  size_t before = agentLog().size();  // the log is appended to
  startAgent();
  // The status file says Running already: wait until the next agent wrote it.
  auto deadline = steady_clock::now() + seconds(60);
  auto written = [&] {
    std::string log = agentLog();
    size_t ready = log.find("Node ready", before);
    return ready != std::string::npos && log.find("Pod status", ready) != std::string::npos;
  };
  while (!written() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(written()) << agentLog();
  waitFor(
      "stays",
      [](const PodSummary& s) {
        return s.status.phase == "Running" && !s.status.container_statuses.empty() &&
               s.status.container_statuses[0].ready;
      },
      "Running under the next agent");
  EXPECT_EQ(stopAgent(), 0);
}

}  // namespace
}  // namespace kernelet::agent
