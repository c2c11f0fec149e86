#pragma once
// A cluster for the end-to-end tests of `kernelet run --kubeconfig` in the
// test VM: the test API server, fixture images imported into the agent's root
// dir, and the agent joined to it as node1, with kubectl as the user's
// client. What the cluster, streams, debug, pull and threads tests share.
//
// Its dirs (/tmp/kernelet-NAME-PID, /run/kernelet-NAME-PID) and cgroup root
// (/kernelet-NAME-PID) carry the test process's pid, so that the VM tier can
// run two such tests at once; the destructor stops the agent (which stops its
// pods: --stop-pods-on-exit unless told to leave them), the API server, and
// removes the dirs and the cgroup root.
//
// A case that shares one cluster with its suite makes it in its first SetUp
// (after the privilege check) and drops it in TearDownTestSuite.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/api_server.h"
#include "support/privileged.h"
#include "sys/result.h"

namespace kernelet::testing {

// The fixture image every e2e pod runs (imported, never pulled: its :latest
// would mean imagePullPolicy Always).
inline constexpr char kFixtureImage[] = "fixtures.kernelet.test/busybox:latest";

// A pod for node1 of one container `app` running `sh -c COMMAND` in the
// fixture image, terminationGracePeriodSeconds 5; `extra`: more spec lines.
std::string podYaml(const std::string& name, const std::string& command,
                    const std::string& extra = "");

// A predicate for poll()/waitKubectl(): the output holds `needle`.
std::function<bool(const std::string&)> has(const std::string& needle);

// Empty when every tool (an absolute path) is there, else the first one missing.
std::string missingTool(const std::vector<std::string>& tools);

class E2eCluster {
 public:
  struct Options {
    std::string name;  // in the paths: /tmp/kernelet-NAME-PID
    ApiServer::Options server;
    // Fixture image layouts (KERNELET_FIXTURES/oci/X) imported before the agent starts.
    std::vector<std::string> images = {"busybox"};
    std::string binary;  // the kernelet under test; empty: this build's
    int verbosity = 2;   // the agent's -v: what its log (and so a failure) shows
    // The node server as the API server reaches it: --node-ip 127.0.0.1,
    // the API server's client certificate (--client-ca-file) and its
    // TokenReview/SubjectAccessReview for bearer tokens (Webhook).
    bool webhook_auth = false;
  };

  // Dirs, the API server and the images; no agent yet (startAgent).
  static Result<std::unique_ptr<E2eCluster>> start(Options options);
  ~E2eCluster();
  E2eCluster(const E2eCluster&) = delete;
  E2eCluster& operator=(const E2eCluster&) = delete;

  // `kernelet run --kubeconfig ... EXTRA` as node1, logging to agent-N.log
  // (N counts the starts). `leave_pods`: as under a service manager, SIGTERM
  // leaves the pods running for the next agent; else they stop with it.
  void startAgent(const std::vector<std::string>& extra = {}, bool leave_pods = false);
  // Sends `sig` to the agent and waits for it; its wait status, -1 if none ran.
  int stopAgent(int sig = SIGTERM);
  pid_t agentPid() const { return agent_; }
  // True once the agent exited on its own (reaped here, not by stopAgent).
  bool agentExited();

  // `kubectl ARGS` with this cluster's kubeconfig; stdout and stderr together.
  std::string kubectl(const std::string& args) const { return server_->kubectl(args); }
  // The shell command `ENV kubectl ARGS` (ENV: variables for kubectl) under
  // `timeout` (--foreground keeps kubectl in a terminal's foreground group).
  std::string kubectlCommand(const std::string& env, const std::string& args, int timeout = 180,
                             bool foreground = false) const;

  struct Polled {
    std::string out;  // the last output (and a note if the agent has exited)
    bool seen = false;
  };
  // Polls `kubectl ARGS` every 300 ms until `ok` holds for its output,
  // `timeout` passes, or the agent has exited on its own.
  Polled poll(const std::string& args, const std::function<bool(const std::string&)>& ok,
              std::chrono::seconds timeout = std::chrono::seconds(240));
  // poll() that fails the case when `ok` never held, naming `what`, with the
  // last output and the agent's log; the last output.
  std::string waitKubectl(const std::string& args,
                          const std::function<bool(const std::string&)>& ok,
                          const std::string& what,
                          std::chrono::seconds timeout = std::chrono::seconds(90));
  // Writes NAME.yaml and `kubectl apply`s it; an error with kubectl's
  // output unless it says "created".
  Result<void> apply(const std::string& name, const std::string& yaml);
  // poll() for each pod's phase Running; an error naming the first that is
  // not, with the agent's log.
  Result<void> waitRunning(const std::vector<std::string>& pods);
  // Writes a static pod manifest into the watched dir in one step (a hidden
  // file renamed in: the agent never reads half of it).
  void writeManifest(const std::string& file, const std::string& yaml);
  void removeManifest(const std::string& file);

  // What the pod's containers (namespace default) wrote, from the CRI log files of every run.
  std::string containerOutput(const std::string& pod) const;
  // containerOutput() once it holds `needle`; fails the case after `timeout`.
  std::string waitOutput(const std::string& pod, const std::string& needle,
                         std::chrono::seconds timeout) const;

  // Every agent's log, each headed by "--- agent N"; the latest one alone.
  std::string agentLog() const;
  std::string lastAgentLog() const;
  // The API server's record of what the agent sent that the schemas refuse ("[]": nothing).
  std::string violations();

  ApiServer& server() { return *server_; }
  const std::string& base() const { return base_; }
  const std::string& root() const { return root_; }
  const std::string& manifests() const { return manifests_; }
  const std::string& logDir() const { return logs_; }
  const std::string& binary() const { return options_.binary; }

 private:
  explicit E2eCluster(Options options);
  std::string agentLogPath(int n) const;

  Options options_;
  std::string base_, root_, manifests_, logs_, run_, cgroup_root_;
  std::unique_ptr<ApiServer> server_;
  pid_t agent_ = -1;
  int agents_ = 0;
  bool exited_ = false;
};

// An e2e case needs the tools it runs: without them it skips on a developer's
// machine, and fails in CI or the test VM, where a skip would hide a gap.
#define KERNELET_REQUIRE_TOOLS(...)                                          \
  do {                                                                       \
    std::string missing = ::kernelet::testing::missingTool({__VA_ARGS__});   \
    if (!missing.empty()) {                                                  \
      if (std::getenv("CI") != nullptr || ::kernelet::testing::inTestVm()) { \
        FAIL() << missing << " is not installed";                            \
      }                                                                      \
      GTEST_SKIP() << missing << " is not installed";                        \
    }                                                                        \
  } while (0)

// A fixture whose every case has a cluster of its own, made with options()
// (the agent not started yet); TearDown stops the agent, and so its pods,
// then fails the case if the agent sent anything the schemas refuse. A suite
// that shares one cluster overrides SetUp and TearDown and points `c_` at it.
class E2eClusterTest : public ::testing::Test {
 protected:
  virtual E2eCluster::Options options() const = 0;

  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    KERNELET_REQUIRE_TOOLS("/usr/bin/kubectl");
    auto c = E2eCluster::start(options());
    ASSERT_TRUE(c) << c.error().message();
    own_ = std::move(*c);
    c_ = own_.get();
  }

  void TearDown() override {
    if (!own_) {
      return;
    }
    own_->stopAgent();
    EXPECT_EQ(own_->violations(), "[]") << "the agent sent what the schema refuses";
    c_ = nullptr;
    own_.reset();
  }

  std::string kubectl(const std::string& args) { return c_->kubectl(args); }
  std::string waitKubectl(const std::string& args,
                          const std::function<bool(const std::string&)>& ok,
                          const std::string& what,
                          std::chrono::seconds timeout = std::chrono::seconds(90)) {
    return c_->waitKubectl(args, ok, what, timeout);
  }
  // E2eCluster::apply that fails the case unless created; the names go in `applied_`.
  void apply(const std::string& name, const std::string& yaml) {
    applied_.push_back(name);
    auto r = c_->apply(name, yaml);
    ASSERT_TRUE(r) << r.error().message();
  }

  E2eCluster* c_ = nullptr;
  std::vector<std::string> applied_;

 private:
  std::unique_ptr<E2eCluster> own_;
};

}  // namespace kernelet::testing
